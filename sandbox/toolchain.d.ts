export declare const TEMPORAL_CLI_VERSION: string;
export declare const MOTO_VERSION: string;
export declare const PROJECT_ROOT: string;
export declare function findTemporalCli(): { path: string; source: string } | undefined;
export declare function ensureTemporalCli(): string;
export declare function findMotoServer(): string | undefined;
export declare function ensureMotoServer(): string;
export declare function temporalCliVersion(binary: string): string;
export declare function temporalCachePath(): string;
