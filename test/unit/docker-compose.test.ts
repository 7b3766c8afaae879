/**
 * Static checks of the Docker deployment: docker-compose.yml, the Dockerfile it builds and the example
 * approval policy it mounts. No Docker engine runs where these tests run (CI, the development sandbox),
 * so nothing is started here: the files are parsed and checked for the mistakes that would otherwise only
 * show up on a user's machine — a floating image tag, a dangling depends_on, a worker pointed at the wrong
 * Temporal, two services on one host port, the moto sandbox starting by default, a CMD that is not the worker.
 *
 * Each check returns the problems it found, so the `catches …` cases below can break a copy of the file
 * and show that the check fails.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseApprovalPolicy } from '../../common/policy';
import { MOTO_VERSION } from '../../sandbox/toolchain';

const ROOT = path.join(__dirname, '..', '..');

type EnvValue = string | number | boolean | null;
type PortSpec = string | number | { target: number; published?: string | number; host_ip?: string; protocol?: string };

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  environment?: string[] | Record<string, EnvValue>;
  ports?: PortSpec[];
  profiles?: string[];
  volumes?: (string | { type?: string; source?: string; target: string; read_only?: boolean })[];
  healthcheck?: { test?: string | string[] };
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const TEMPORAL_IMAGE = 'temporalio/auto-setup';
const WORKER_CMD = ['node', 'dist/cli/index.js', 'worker'];

function loadCompose(): ComposeFile {
  return parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile;
}

/** A deep copy to break in a `catches …` case without touching the others. */
function copyOf(compose: ComposeFile): ComposeFile {
  return structuredClone(compose);
}

function service(compose: ComposeFile, name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no "${name}" service`);
  return found;
}

/** Environment in either compose form; a key with no value passes the host's through (undefined here). */
function environmentOf(svc: ComposeService): Map<string, string | undefined> {
  const env = new Map<string, string | undefined>();
  if (Array.isArray(svc.environment)) {
    for (const entry of svc.environment) {
      const eq = entry.indexOf('=');
      if (eq < 0) env.set(entry, undefined);
      else env.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
  } else {
    for (const [key, value] of Object.entries(svc.environment ?? {})) {
      env.set(key, value === null ? undefined : String(value));
    }
  }
  return env;
}

function dependsOnOf(svc: ComposeService): Map<string, string | undefined> {
  if (Array.isArray(svc.depends_on)) return new Map(svc.depends_on.map((name) => [name, undefined]));
  return new Map(Object.entries(svc.depends_on ?? {}).map(([name, spec]) => [name, spec.condition]));
}

function workerName(compose: ComposeFile): string | undefined {
  return Object.entries(compose.services).find(([, svc]) => svc.build !== undefined)?.[0];
}

function temporalName(compose: ComposeFile): string | undefined {
  return Object.entries(compose.services).find(([, svc]) => svc.image?.startsWith(`${TEMPORAL_IMAGE}:`))?.[0];
}

// ─── image pins ──────────────────────────────────────────────────────────────────────────────────────

/** The tag of an image reference (`registry:5000/name:tag@digest` → `tag`), or undefined if it has none. */
function imageTag(image: string): string | undefined {
  const withoutDigest = image.split('@')[0] ?? '';
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  return colon < 0 ? undefined : withoutDigest.slice(colon + 1);
}

function imagePinProblems(compose: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    if (svc.build !== undefined) continue;
    if (!svc.image) {
      problems.push(`${name}: neither image nor build`);
      continue;
    }
    if (svc.image.includes('@sha256:')) continue;
    const tag = imageTag(svc.image);
    if (tag === undefined) problems.push(`${name}: image ${svc.image} has no tag`);
    else if (tag === 'latest') problems.push(`${name}: image ${svc.image} floats on latest`);
    else if (!/^[\w][\w.-]{0,127}$/.test(tag)) problems.push(`${name}: image ${svc.image} has no literal tag`);
  }
  return problems;
}

// ─── depends_on ──────────────────────────────────────────────────────────────────────────────────────

function dependencyProblems(compose: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const target of dependsOnOf(svc).keys()) {
      const dependency = compose.services[target];
      if (!dependency) {
        problems.push(`${name}: depends_on ${target}, which is not a service`);
        continue;
      }
      // `docker compose up` without the profile would refuse to start the dependent service.
      const profiles = dependency.profiles ?? [];
      if (profiles.length > 0 && !profiles.some((p) => svc.profiles?.includes(p))) {
        problems.push(`${name}: depends_on ${target}, which only runs under profile(s) ${profiles.join(', ')}`);
      }
    }
  }
  return problems;
}

// ─── the worker's environment ────────────────────────────────────────────────────────────────────────

function workerEnvironmentProblems(compose: ComposeFile): string[] {
  const worker = workerName(compose);
  const temporal = temporalName(compose);
  if (!worker) return ['no service is built from the repository (the worker)'];
  if (!temporal) return [`no service runs ${TEMPORAL_IMAGE}`];
  const svc = service(compose, worker);
  const env = environmentOf(svc);
  const problems: string[] = [];

  const address = env.get('TEMPORAL_ADDRESS');
  if (address !== `${temporal}:7233`) problems.push(`${worker}: TEMPORAL_ADDRESS is ${address ?? 'unset'}, not ${temporal}:7233`);
  if (dependsOnOf(svc).get(temporal) !== 'service_healthy') {
    problems.push(`${worker}: does not wait for ${temporal} to be healthy`);
  }
  if (env.get('TEMPORAL_NAMESPACE') !== 'default') problems.push(`${worker}: TEMPORAL_NAMESPACE is not default`);
  if (env.get('COUNTERSIGN_TASK_QUEUE') !== 'countersign') problems.push(`${worker}: COUNTERSIGN_TASK_QUEUE is not countersign`);

  const policyPath = env.get('COUNTERSIGN_POLICY');
  if (!policyPath) {
    problems.push(`${worker}: COUNTERSIGN_POLICY is unset`);
  } else {
    const mount = (svc.volumes ?? [])
      .map((v) => (typeof v === 'string' ? v.split(':') : [v.source ?? '', v.target, v.read_only ? 'ro' : 'rw']))
      .find(([, target]) => target !== undefined && policyPath.startsWith(`${target}/`));
    if (!mount) problems.push(`${worker}: no volume is mounted where COUNTERSIGN_POLICY (${policyPath}) points`);
    else if (mount[2] !== 'ro') problems.push(`${worker}: the policy volume ${mount.join(':')} is not read-only`);
    else if (!existsSync(path.join(ROOT, mount[0] ?? ''))) problems.push(`${worker}: the policy volume's source ${mount[0]} does not exist`);
  }

  for (const key of ['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
    if (env.get(key) !== undefined || !env.has(key)) problems.push(`${worker}: ${key} is not passed through from the host`);
  }
  return problems;
}

// ─── published ports ─────────────────────────────────────────────────────────────────────────────────

interface Published {
  service: string;
  hostIp: string;
  port: number;
  protocol: string;
}

function expandRange(range: string): number[] {
  const [from, to] = range.split('-').map(Number);
  if (from === undefined || Number.isNaN(from)) return [];
  const last = to ?? from;
  return Array.from({ length: last - from + 1 }, (_, i) => from + i);
}

/** Host-side ports of one `ports:` entry; a bare container port gets an ephemeral host port (none here). */
function publishedPorts(serviceName: string, spec: PortSpec): Published[] {
  if (typeof spec === 'object') {
    if (spec.published === undefined) return [];
    return expandRange(String(spec.published)).map((port) => ({
      service: serviceName,
      hostIp: spec.host_ip ?? '',
      port,
      protocol: spec.protocol ?? 'tcp',
    }));
  }
  const [mapping = '', protocol = 'tcp'] = String(spec).split('/');
  const match = /^(?:(\[[^\]]+\]|[^:]+):)?([\d-]+):([\d-]+)$/.exec(mapping);
  if (!match) return [];
  const [, hostIp = '', hostPorts = ''] = match;
  return expandRange(hostPorts).map((port) => ({ service: serviceName, hostIp, port, protocol }));
}

function portProblems(compose: ComposeFile): string[] {
  const all = Object.entries(compose.services).flatMap(([name, svc]) => (svc.ports ?? []).flatMap((p) => publishedPorts(name, p)));
  const wildcard = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '[::]';
  const problems: string[] = [];
  all.forEach((a, i) => {
    for (const b of all.slice(i + 1)) {
      const sameIp = a.hostIp === b.hostIp || wildcard(a.hostIp) || wildcard(b.hostIp);
      if (a.port === b.port && a.protocol === b.protocol && sameIp) {
        problems.push(`${a.service} and ${b.service} both publish ${a.protocol} port ${a.port}`);
      }
    }
  });
  return problems;
}

// ─── profiles ────────────────────────────────────────────────────────────────────────────────────────

function profileProblems(compose: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    const profiles = svc.profiles ?? [];
    if (name === 'moto') {
      if (profiles.length !== 1 || profiles[0] !== 'sandbox') problems.push(`moto: profiles are [${profiles.join(', ')}], not [sandbox]`);
    } else if (profiles.length > 0) {
      problems.push(`${name}: only starts under profile(s) ${profiles.join(', ')}, but the stack needs it`);
    }
  }
  if (!compose.services.moto) problems.push('no moto service');
  return problems;
}

// ─── the Dockerfile ──────────────────────────────────────────────────────────────────────────────────

interface Instruction {
  keyword: string;
  args: string;
}

/** Instructions in order, with `\` continuations joined and comments dropped. */
function dockerfileInstructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const space = line.search(/\s/);
      return space < 0
        ? { keyword: line.toUpperCase(), args: '' }
        : { keyword: line.slice(0, space).toUpperCase(), args: line.slice(space).trim() };
    });
}

function dockerfileProblems(compose: ComposeFile, readFile: (relative: string) => string | undefined): string[] {
  const worker = workerName(compose);
  if (!worker) return ['no service is built from the repository (the worker)'];
  const build = service(compose, worker).build;
  const context = typeof build === 'string' ? build : (build?.context ?? '.');
  const dockerfile = path.join(context, (typeof build === 'object' && build.dockerfile) || 'Dockerfile');
  const text = readFile(dockerfile);
  if (text === undefined) return [`${worker}: builds ${dockerfile}, which does not exist`];

  const instructions = dockerfileInstructions(text);
  const problems: string[] = [];
  const froms = instructions.filter((i) => i.keyword === 'FROM').map((i) => i.args.split(/\s+/)[0]);
  if (froms.length === 0 || froms.some((image) => image !== 'node:20-slim')) {
    problems.push(`${dockerfile}: stages are FROM ${froms.join(', ') || 'nothing'}, not node:20-slim`);
  }
  const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  if (!runs.some((r) => /\bnpm (ci|install)\b/.test(r))) problems.push(`${dockerfile}: never installs dependencies (npm install)`);
  if (!runs.some((r) => /\bnpm run build\b/.test(r))) problems.push(`${dockerfile}: never runs npm run build`);

  // Docker uses the last CMD. Exec form (a JSON array), so SIGTERM reaches node and the worker drains.
  const cmd = instructions.filter((i) => i.keyword === 'CMD').at(-1);
  let argv: unknown;
  try {
    argv = cmd ? JSON.parse(cmd.args) : undefined;
  } catch {
    argv = cmd?.args;
  }
  if (JSON.stringify(argv) !== JSON.stringify(WORKER_CMD)) {
    problems.push(`${dockerfile}: CMD is ${cmd ? cmd.args : 'missing'}, not ${JSON.stringify(WORKER_CMD)}`);
  }
  return problems;
}

function readFromRoot(relative: string): string | undefined {
  const file = path.join(ROOT, relative);
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

// ─── the tests ───────────────────────────────────────────────────────────────────────────────────────

describe('docker-compose.yml (static: no Docker engine here)', () => {
  const compose = loadCompose();

  it('pins every image to a tag, or builds it from the repository', () => {
    expect(imagePinProblems(compose)).toEqual([]);
  });

  it('depends only on services that exist and start without a profile', () => {
    expect(dependencyProblems(compose)).toEqual([]);
  });

  it('points the worker at the temporal service, its task queue and a read-only policy file', () => {
    expect(workerEnvironmentProblems(compose)).toEqual([]);
  });

  it('publishes no host port twice', () => {
    expect(portProblems(compose)).toEqual([]);
  });

  it('starts moto only under the sandbox profile, and everything else by default', () => {
    expect(profileProblems(compose)).toEqual([]);
  });

  it('runs the same moto version as the embedded sandbox, with the managed policies loaded', () => {
    const moto = service(compose, 'moto');
    const command = Array.isArray(moto.command) ? moto.command.join(' ') : (moto.command ?? '');
    expect(command).toContain(`moto[server]==${MOTO_VERSION}`);
    expect(command).toMatch(/moto_server -H 0\.0\.0\.0 -p 5000/);
    expect(environmentOf(moto).get('MOTO_IAM_LOAD_MANAGED_POLICIES')).toBe('true');
  });

  it('runs Temporal on PostgreSQL once PostgreSQL is healthy, with its data on a named volume', () => {
    const temporal = service(compose, temporalName(compose) ?? 'temporal');
    const env = environmentOf(temporal);
    expect(env.get('DB')).toBe('postgres12');
    const postgresName = env.get('POSTGRES_SEEDS') ?? '';
    const postgres = service(compose, postgresName);
    expect(postgres.image).toMatch(/^postgres:/);
    expect(postgres.healthcheck?.test).toBeDefined();
    expect(dependsOnOf(temporal).get(postgresName)).toBe('service_healthy');
    const dataVolume = (postgres.volumes ?? []).find((v) => typeof v === 'string' && v.endsWith(':/var/lib/postgresql/data'));
    expect(typeof dataVolume).toBe('string');
    expect(Object.keys(compose.volumes ?? {})).toContain(String(dataVolume).split(':')[0]);
  });

  it('serves the Temporal Web UI on port 8080 against the temporal service', () => {
    const ui = Object.values(compose.services).find((svc) => svc.image?.startsWith('temporalio/ui:'));
    expect(ui).toBeDefined();
    expect(environmentOf(ui ?? {}).get('TEMPORAL_ADDRESS')).toBe(`${temporalName(compose)}:7233`);
    expect((ui?.ports ?? []).flatMap((p) => publishedPorts('temporal-ui', p)).map((p) => p.port)).toEqual([8080]);
  });

  it('builds the worker from a Dockerfile whose CMD runs `countersign worker`', () => {
    expect(dockerfileProblems(compose, readFromRoot)).toEqual([]);
    expect(existsSync(path.join(ROOT, 'cli', 'index.ts'))).toBe(true);
  });

  it('keeps local build output and secrets out of the build context', () => {
    const ignored = (readFromRoot('.dockerignore') ?? '').split('\n').map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.venv', '.git']));
  });

  describe('catches', () => {
    it('an image on latest, an untagged image, and a service with neither image nor build', () => {
      const broken = copyOf(compose);
      service(broken, 'postgres').image = 'postgres:latest';
      service(broken, 'temporal-ui').image = 'temporalio/ui';
      delete service(broken, 'moto').image;
      expect(imagePinProblems(broken)).toEqual([
        'postgres: image postgres:latest floats on latest',
        'temporal-ui: image temporalio/ui has no tag',
        'moto: neither image nor build',
      ]);
      expect(imageTag('localhost:5000/countersign')).toBeUndefined();
      expect(imageTag('localhost:5000/countersign:1.2.3')).toBe('1.2.3');
    });

    it('a depends_on naming no service, or a service only the sandbox profile starts', () => {
      const broken = copyOf(compose);
      service(broken, 'temporal').depends_on = { postgresql: { condition: 'service_healthy' } };
      service(broken, 'worker').depends_on = ['temporal', 'moto'];
      expect(dependencyProblems(broken)).toEqual([
        'temporal: depends_on postgresql, which is not a service',
        'worker: depends_on moto, which only runs under profile(s) sandbox',
      ]);
    });

    it('a worker pointed elsewhere, without a queue, with a writable or missing policy mount', () => {
      const broken = copyOf(compose);
      const worker = service(broken, 'worker');
      worker.environment = { ...(worker.environment as Record<string, EnvValue>), TEMPORAL_ADDRESS: 'localhost:7233', COUNTERSIGN_TASK_QUEUE: null };
      worker.volumes = ['./config:/config'];
      expect(workerEnvironmentProblems(broken)).toEqual([
        'worker: TEMPORAL_ADDRESS is localhost:7233, not temporal:7233',
        'worker: COUNTERSIGN_TASK_QUEUE is not countersign',
        'worker: the policy volume ./config:/config is not read-only',
      ]);
      worker.volumes = [];
      expect(workerEnvironmentProblems(broken)).toContain('worker: no volume is mounted where COUNTERSIGN_POLICY (/config/policy.json) points');
    });

    it('two services publishing the same host port', () => {
      const broken = copyOf(compose);
      service(broken, 'moto').ports = ['8080:5000'];
      expect(portProblems(broken)).toEqual(['temporal-ui and moto both publish tcp port 8080']);
      service(broken, 'moto').ports = [{ target: 5000, published: '7230-7240' }];
      expect(portProblems(broken)).toEqual(['temporal and moto both publish tcp port 7233']);
      service(broken, 'moto').ports = ['8080:5000/udp', '5000'];
      expect(portProblems(broken)).toEqual([]);
    });

    it('moto starting without the sandbox profile, or a core service hidden behind one', () => {
      const broken = copyOf(compose);
      delete service(broken, 'moto').profiles;
      service(broken, 'worker').profiles = ['sandbox'];
      expect(profileProblems(broken)).toEqual([
        'worker: only starts under profile(s) sandbox, but the stack needs it',
        'moto: profiles are [], not [sandbox]',
      ]);
    });

    it('a missing Dockerfile, or one whose CMD is not the worker', () => {
      expect(dockerfileProblems(compose, () => undefined)).toEqual(['worker: builds Dockerfile, which does not exist']);
      const shellForm = 'FROM node:20-slim\nRUN npm ci && \\\n  npm run build\nCMD ["node","dist/cli/index.js","worker"]\nCMD node dist/cli/index.js dev\n';
      expect(dockerfileProblems(compose, () => shellForm)).toEqual([
        'Dockerfile: CMD is node dist/cli/index.js dev, not ["node","dist/cli/index.js","worker"]',
      ]);
      const alpine = 'FROM node:20-alpine\n# RUN npm ci\nCMD ["node","dist/cli/index.js","worker"]\n';
      expect(dockerfileProblems(compose, () => alpine)).toEqual([
        'Dockerfile: stages are FROM node:20-alpine, not node:20-slim',
        'Dockerfile: never installs dependencies (npm install)',
        'Dockerfile: never runs npm run build',
      ]);
    });
  });
});

describe('config/policy.example.json', () => {
  const text = readFileSync(path.join(ROOT, 'config', 'policy.example.json'), 'utf8');

  it('is JSON with every field of the approval policy (docs/design.md §4)', () => {
    const policy = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(policy).sort()).toEqual(['approvalTimeout', 'approvers', 'maxChanges', 'protectedPrincipals', 'quorum']);
    expect(policy.approvers).toHaveProperty('*');
    expect(policy.quorum).toHaveProperty('*');
  });

  it('is accepted by the policy parser the worker uses', () => {
    expect(() => parseApprovalPolicy(text, 'config/policy.example.json')).not.toThrow();
  });
});
