/**
 * Demo scenarios, one per remediation kind: what a kind's run shows, how the sandbox is seeded for
 * it, which account it targets with which parameters, and how its result is checked in AWS
 * afterwards. `countersign demo` runs every scenario of SCENARIOS in turn (`--kind K` picks one);
 * `countersign dev --seed` seeds them all into one sandbox. A new kind adds one module here and one
 * entry in SCENARIOS.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import type { KindName } from '../../common/kinds';
import type { RemediationStatus } from '../../common/messages';
import type { SandboxClientConfig, SeededOrganization } from '../organization';
import { SANDBOX_ORGANIZATION, iamForAccount, sandboxClientConfig, seedOrganization } from '../organization';
import { staleIamUsers } from './stale-iam-users';
import { orgTrail } from './org-trail';
import { retireDefaultTrails } from './retire-default-trails';
import { permissionBoundary } from './permission-boundary';
import { scp } from './scp';

/** What a scenario may use while seeding and checking the sandbox. */
export interface ScenarioContext {
  /** The moto endpoint. */
  endpoint: string;
  /** Progress for people (the demo indents and prints it). */
  say(line: string): void;
  /** The sandbox organization (SANDBOX_ORGANIZATION), created on first use and shared by the scenarios of this context. */
  organization(): Promise<SeededOrganization>;
  /** An IAM client acting in `account` (a member account through OrganizationAccountAccessRole), kept until `close`. */
  iam(account: string): IAMClient;
  /** Config for any other SDK client (`new CloudTrailClient(context.clientConfig(account, region))`) acting in `account`. */
  clientConfig(account: string, region?: string): SandboxClientConfig;
}

/** What a scenario's seed leaves behind for the run and the checks: at least the account the run targets. */
export interface ScenarioState {
  account: string;
}

export interface ScenarioChecks {
  ok: boolean;
  /** One line per check, "ok" or "FAILED" first. */
  lines: string[];
}

export interface Scenario<S extends ScenarioState = ScenarioState> {
  kind: KindName;
  title: string;
  /** What the run demonstrates, a line each. */
  shows: string[];
  /** How the approved plan is carried out, in a few words ("disable → soak → delete → verify"). */
  applying: string;
  /** The kind's parameters for the run (sandbox-sized durations). */
  params: Record<string, string>;
  /** Seed the sandbox; ready to start the run when it resolves. */
  seed(context: ScenarioContext): Promise<S>;
  /** After the run: what AWS and the run's final status say, checked against what the scenario expects. */
  checks(context: ScenarioContext, state: S, final: RemediationStatus): Promise<ScenarioChecks>;
}

/** Every kind's demo scenario, keyed by kind. */
export const SCENARIOS: Partial<Record<KindName, Scenario>> = {
  'stale-iam-users': staleIamUsers,
  'org-trail': orgTrail,
  'retire-default-trails': retireDefaultTrails,
  'permission-boundary': permissionBoundary,
  scp,
};

export function scenarioKinds(): KindName[] {
  return Object.keys(SCENARIOS) as KindName[];
}

/** A context over the sandbox at `endpoint`. `close` destroys the clients it made. */
export function createScenarioContext(endpoint: string, say: (line: string) => void = () => undefined): ScenarioContext & { close(): void } {
  let organization: Promise<SeededOrganization> | undefined;
  const clients = new Map<string, IAMClient>();
  return {
    endpoint,
    say,
    organization() {
      organization ??= seedOrganization(endpoint, SANDBOX_ORGANIZATION);
      return organization;
    },
    clientConfig(account, region) {
      return sandboxClientConfig(endpoint, account, region);
    },
    iam(account) {
      let client = clients.get(account);
      if (!client) {
        client = iamForAccount(endpoint, account);
        clients.set(account, client);
      }
      return client;
    },
    close() {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  };
}

