/**
 * The Docker deployment: docker-compose.yml, the Dockerfile it builds and the example approval policy it
 * mounts. No Docker engine runs where these tests run (CI, the development sandbox), but Docker Compose
 * itself does: `docker compose config` needs no engine, and it is what `docker compose up` runs first — it
 * validates the file against the compose-spec schema, resolves interpolation, profiles and references
 * (depends_on, configs, volumes) and prints the normalized model. The binary is Compose v2 built from its
 * Go module by sandbox/toolchain.js (ensureCompose, cached outside the clone; `npm test` builds it first).
 *
 * On that model, the checks below look for what Compose cannot know is wrong — a floating image tag, a
 * worker pointed at the wrong Temporal, a port open beyond localhost, a retention shorter than the audit
 * window, a grace period shorter than the worker's drain, a one-shot that restarts, a CMD that is not the
 * worker. Each check returns the problems it found, so the `catches …` cases can break a copy and show
 * that the check (or Compose) fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseApprovalPolicy } from '../../common/policy';
import { COMPOSE_VERSION, MOTO_VERSION, ensureCompose } from '../../sandbox/toolchain';

const ROOT = path.join(__dirname, '..', '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

/** A service as `docker compose config --format json` prints it (normalized: long forms only). */
interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[] | null;
  entrypoint?: string[] | null;
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  environment?: Record<string, string | null>;
  ports?: { target: number; published?: string; host_ip?: string; protocol?: string }[];
  profiles?: string[];
  volumes?: { type: string; source?: string; target: string; read_only?: boolean }[];
  configs?: { source: string; target?: string }[];
  healthcheck?: { test?: string[] };
  restart?: string;
  stop_grace_period?: string;
}

interface ComposeFile {
  name: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, { content?: string; file?: string }>;
}

const TEMPORAL_IMAGE = 'temporalio/server';
const ADMIN_TOOLS_IMAGE = 'temporalio/admin-tools';
// The bin script itself, not `node bin/…`: its first line starts node with the worker's memory
// settings (see bin/countersign.js), which `node bin/countersign.js` would skip.
const WORKER_CMD = ['bin/countersign.js', 'worker'];
const NODE_IMAGE = 'node:22-bookworm-slim';
const SEARCH_ATTRIBUTES = ['CountersignKind', 'CountersignAccount', 'CountersignPhase', 'CountersignOutcome', 'CountersignRequestedBy'];
const MIN_RETENTION_DAYS = 400;
/** Passed through from the shell running compose (a key with no value in the file). */
const PASSED_THROUGH = [
  'AWS_PROFILE',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
];
const LONG_RUNNING = ['postgres', 'temporal', 'temporal-ui', 'worker'];

// ─── running Docker Compose ──────────────────────────────────────────────────────────────────────────

let composeBinary = '';
let scratch = '';
let home = '';

interface ComposeRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `docker compose … config` on a file, in an environment of our own: no .env, no COMPOSE_* or AWS_* from
 * the shell running the tests, a HOME of our own (where `~` points), only what the case passes.
 */
function runCompose(file: string, args: string[], env: Record<string, string> = {}): ComposeRun {
  const r = spawnSync(composeBinary, ['--project-directory', ROOT, '--env-file', path.join(scratch, 'empty.env'), '-f', file, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: home, DOCKER_CONFIG: path.join(home, '.docker'), ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function loadCompose(options: { profiles?: string[]; env?: Record<string, string>; file?: string } = {}): ComposeFile {
  const profiles = (options.profiles ?? ['sandbox']).flatMap((p) => ['--profile', p]);
  const r = runCompose(options.file ?? COMPOSE_FILE, [...profiles, 'config', '--format', 'json'], options.env);
  if (r.status !== 0) throw new Error(`docker compose config failed (exit ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ComposeFile;
}

/** Compose's verdict on a variant of docker-compose.yml: its error, or undefined if it accepts it. */
function composeRejects(text: string, profiles: string[] = []): string | undefined {
  const file = path.join(scratch, `variant-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, text);
  const r = runCompose(file, [...profiles.flatMap((p) => ['--profile', p]), 'config', '--quiet']);
  return r.status === 0 ? undefined : r.stderr.trim();
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

function environmentOf(svc: ComposeService): Map<string, string | null> {
  return new Map(Object.entries(svc.environment ?? {}));
}

function dependsOnOf(svc: ComposeService): Map<string, string> {
  return new Map(Object.entries(svc.depends_on ?? {}).map(([name, spec]) => [name, spec.condition]));
}

function script(svc: ComposeService): string {
  return [...(svc.entrypoint ?? []), ...(svc.command ?? [])].join(' ');
}

function workerName(compose: ComposeFile): string | undefined {
  return Object.entries(compose.services).find(([, svc]) => svc.build !== undefined)?.[0];
}

function temporalName(compose: ComposeFile): string | undefined {
  return Object.entries(compose.services).find(([, svc]) => svc.image?.startsWith(`${TEMPORAL_IMAGE}:`))?.[0];
}

/** Services running admin-tools whose script contains `marker`. */
function adminToolsRunning(compose: ComposeFile, marker: RegExp): [string, ComposeService][] {
  return Object.entries(compose.services).filter(([, svc]) => svc.image?.startsWith(`${ADMIN_TOOLS_IMAGE}:`) && marker.test(script(svc)));
}

/** Go-style durations as Compose and Temporal write them (`30s`, `1m30s`, `9600h`), plus days (`400d`). */
function durationSeconds(text: string): number | undefined {
  const units: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|d|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (units[unit ?? 's'] ?? 0), 0);
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
    if (svc.image.startsWith('temporalio/auto-setup:')) problems.push(`${name}: ${svc.image} is the deprecated auto-setup image`);
    if (svc.image.includes('@sha256:')) continue;
    const tag = imageTag(svc.image);
    if (tag === undefined) problems.push(`${name}: image ${svc.image} has no tag`);
    else if (tag === 'latest') problems.push(`${name}: image ${svc.image} floats on latest`);
    else if (!/^[\w][\w.-]{0,127}$/.test(tag)) problems.push(`${name}: image ${svc.image} has no literal tag`);
  }
  return problems;
}

// ─── the worker ──────────────────────────────────────────────────────────────────────────────────────

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
  if (dependsOnOf(svc).get(temporal) !== 'service_healthy') problems.push(`${worker}: does not wait for ${temporal} to be healthy`);
  const namespaceSetup = adminToolsRunning(compose, /namespace create/).map(([name]) => name);
  if (!namespaceSetup.some((name) => dependsOnOf(svc).get(name) === 'service_completed_successfully')) {
    problems.push(`${worker}: does not wait for the namespace set-up to complete`);
  }
  if (env.get('TEMPORAL_NAMESPACE') !== 'default') problems.push(`${worker}: TEMPORAL_NAMESPACE is not default`);
  if (env.get('COUNTERSIGN_TASK_QUEUE') !== 'countersign') problems.push(`${worker}: COUNTERSIGN_TASK_QUEUE is not countersign`);

  const policyPath = env.get('COUNTERSIGN_POLICY');
  if (!policyPath) {
    problems.push(`${worker}: COUNTERSIGN_POLICY is unset`);
  } else {
    const mount = (svc.volumes ?? []).find((v) => policyPath.startsWith(`${v.target}/`));
    if (!mount) problems.push(`${worker}: no volume is mounted where COUNTERSIGN_POLICY (${policyPath}) points`);
    else if (!mount.read_only) problems.push(`${worker}: the policy volume ${mount.source} → ${mount.target} is not read-only`);
    else if (mount.type !== 'bind' || !existsSync(mount.source ?? '')) problems.push(`${worker}: the policy volume's source ${mount.source} does not exist`);
  }
  return problems;
}

/** The worker drains for worker/index.ts's shutdownGraceTime on SIGTERM; Docker must wait longer. */
function drainSeconds(): number {
  const source = readFileSync(path.join(ROOT, 'worker', 'index.ts'), 'utf8');
  const match = /shutdownGraceTime:\s*'([^']+)'/.exec(source);
  const seconds = match?.[1] ? durationSeconds(match[1]) : undefined;
  if (seconds === undefined) throw new Error('worker/index.ts sets no shutdownGraceTime this test can read');
  return seconds;
}

function lifecycleProblems(compose: ComposeFile): string[] {
  const problems: string[] = [];
  const worker = workerName(compose);
  const grace = worker ? compose.services[worker]?.stop_grace_period : undefined;
  const graceSeconds = grace === undefined ? 10 : durationSeconds(grace); // Docker's default is 10s
  if (graceSeconds === undefined || graceSeconds <= drainSeconds()) {
    problems.push(`${worker}: stop_grace_period ${grace ?? '(default 10s)'} is not longer than the worker's ${drainSeconds()}s drain`);
  }
  for (const name of LONG_RUNNING) {
    const restart = compose.services[name]?.restart;
    if (restart !== 'unless-stopped') problems.push(`${name}: restart is ${restart ?? 'unset'}, not unless-stopped`);
  }
  // A one-shot that restarts never "completes", and whatever waits on it never starts.
  for (const [name, svc] of Object.entries(compose.services)) {
    const waitedFor = Object.values(compose.services).some((other) => other.depends_on?.[name]?.condition === 'service_completed_successfully');
    if (waitedFor && svc.restart !== undefined && svc.restart !== 'no') problems.push(`${name}: a one-shot with restart ${svc.restart}`);
  }
  return problems;
}

// ─── Temporal: schema, server, namespace ─────────────────────────────────────────────────────────────

function retentionProblems(compose: ComposeFile): string[] {
  const setups = adminToolsRunning(compose, /namespace create/);
  if (setups.length === 0) return ['no admin-tools service creates the namespace'];
  const problems: string[] = [];
  for (const [name, svc] of setups) {
    const retention = environmentOf(svc).get('COUNTERSIGN_RETENTION') ?? '';
    const seconds = durationSeconds(retention);
    if (!/--retention "\$\$COUNTERSIGN_RETENTION"/.test(script(svc))) problems.push(`${name}: the namespace is not created and updated with COUNTERSIGN_RETENTION`);
    if (seconds === undefined) problems.push(`${name}: retention ${retention || '(unset)'} is not a duration`);
    else if (seconds < MIN_RETENTION_DAYS * 86400) problems.push(`${name}: retention ${retention} is under ${MIN_RETENTION_DAYS} days`);
  }
  return problems;
}

function searchAttributeProblems(compose: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, svc] of adminToolsRunning(compose, /namespace create/)) {
    const listed = (environmentOf(svc).get('COUNTERSIGN_SEARCH_ATTRIBUTES') ?? '').split(/\s+/).filter(Boolean);
    if (JSON.stringify([...listed].sort()) !== JSON.stringify([...SEARCH_ATTRIBUTES].sort())) {
      problems.push(`${name}: registers [${listed.join(', ')}], not [${SEARCH_ATTRIBUTES.join(', ')}]`);
    }
    if (!/search-attribute create [^\n]*--name "\$\$name" --type Keyword/.test(script(svc))) problems.push(`${name}: does not create each as a Keyword`);
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

function publishedPorts(compose: ComposeFile): Published[] {
  return Object.entries(compose.services).flatMap(([name, svc]) =>
    (svc.ports ?? []).flatMap((p) =>
      p.published === undefined ? [] : expandRange(p.published).map((port) => ({ service: name, hostIp: p.host_ip ?? '', port, protocol: p.protocol ?? 'tcp' })),
    ),
  );
}

function portProblems(compose: ComposeFile): string[] {
  const all = publishedPorts(compose);
  const problems: string[] = [];
  all.forEach((a, i) => {
    if (a.hostIp !== '127.0.0.1') problems.push(`${a.service} publishes ${a.protocol} port ${a.port} on ${a.hostIp || 'every interface'}, not 127.0.0.1`);
    for (const b of all.slice(i + 1)) {
      if (a.port === b.port && a.protocol === b.protocol) problems.push(`${a.service} and ${b.service} both publish ${a.protocol} port ${a.port}`);
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
  const dockerfile = path.relative(ROOT, path.resolve(ROOT, build?.context ?? '.', build?.dockerfile ?? 'Dockerfile'));
  const text = readFile(dockerfile);
  if (text === undefined) return [`${worker}: builds ${dockerfile}, which does not exist`];

  const instructions = dockerfileInstructions(text);
  const problems: string[] = [];
  const froms = instructions.filter((i) => i.keyword === 'FROM').map((i) => i.args.split(/\s+/)[0]);
  if (froms.length === 0 || froms.some((image) => image !== NODE_IMAGE)) {
    problems.push(`${dockerfile}: stages are FROM ${froms.join(', ') || 'nothing'}, not ${NODE_IMAGE}`);
  }
  if (froms.length < 2) problems.push(`${dockerfile}: one stage, so the build tools ship in the image`);
  const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  if (!runs.some((r) => /\bnpm (ci|install)\b/.test(r))) problems.push(`${dockerfile}: never installs dependencies (npm install)`);
  if (!runs.some((r) => /\bnpm run build\b/.test(r))) problems.push(`${dockerfile}: never runs npm run build`);

  // The user of the final stage: the last USER after the last FROM.
  const lastFrom = instructions.map((i) => i.keyword).lastIndexOf('FROM');
  const user = instructions.slice(lastFrom).filter((i) => i.keyword === 'USER').at(-1)?.args;
  if (user === undefined || /^(root|0)(:|$)/.test(user)) problems.push(`${dockerfile}: the image runs as ${user ?? 'root (no USER)'}`);

  // Docker uses the last CMD. Exec form (a JSON array), so SIGTERM reaches node (env execs it) and the worker drains.
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

describe(`docker-compose.yml, as Docker Compose ${COMPOSE_VERSION} reads it (no Docker engine here)`, () => {
  let compose: ComposeFile;

  beforeAll(() => {
    composeBinary = ensureCompose(); // built by `npm test`'s set-up; built here if that did not run
    scratch = mkdtempSync(path.join(tmpdir(), 'countersign-compose-'));
    home = path.join(scratch, 'home');
    mkdirSync(home);
    writeFileSync(path.join(scratch, 'empty.env'), '');
    compose = loadCompose();
  }, 15 * 60_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('is a valid Compose project with and without the sandbox profile', () => {
    expect(runCompose(COMPOSE_FILE, ['version', '--short']).stdout.trim()).toBe(COMPOSE_VERSION.replace(/^v/, ''));
    for (const profiles of [[], ['--profile', 'sandbox']]) {
      const r = runCompose(COMPOSE_FILE, [...profiles, 'config', '--quiet']);
      expect({ profiles, status: r.status, stderr: r.stderr }).toEqual({ profiles, status: 0, stderr: '' });
    }
  });

  it('starts moto only under the sandbox profile, and everything else by default', () => {
    expect(profileProblems(compose)).toEqual([]);
    const byDefault = Object.keys(loadCompose({ profiles: [] }).services).sort();
    expect(byDefault).toEqual(Object.keys(compose.services).filter((name) => name !== 'moto').sort());
  });

  it('pins every image to a tag (never auto-setup), or builds it from the repository', () => {
    expect(imagePinProblems(compose)).toEqual([]);
  });

  it('sets up the schema with admin-tools once PostgreSQL is healthy, before the server starts', () => {
    const temporalService = temporalName(compose) ?? 'temporal';
    const temporal = service(compose, temporalService);
    const env = environmentOf(temporal);
    expect(env.get('DB')).toBe('postgres12');
    const postgresName = env.get('POSTGRES_SEEDS') ?? '';
    const postgres = service(compose, postgresName);
    expect(postgres.image).toMatch(/^postgres:/);
    expect(postgres.healthcheck?.test?.join(' ')).toMatch(/pg_isready/);
    const dataVolume = (postgres.volumes ?? []).find((v) => v.target === '/var/lib/postgresql/data');
    expect(dataVolume?.type).toBe('volume');
    expect(Object.keys(compose.volumes ?? {})).toContain(dataVolume?.source);

    const schemaSetups = adminToolsRunning(compose, /temporal-sql-tool/);
    expect(schemaSetups).toHaveLength(1);
    const [schemaName, schema] = schemaSetups[0] ?? ['', {}];
    const sql = script(schema);
    for (const step of ['create', 'setup-schema -v 0.0', 'update-schema -d']) expect(sql).toContain(`$$sql ${step}`);
    expect(sql).toContain('--plugin postgres12');
    expect(sql).toMatch(/for db in temporal visibility/);
    expect(sql).toContain('/etc/temporal/schema/postgresql/v12/$$db/versioned');
    expect(dependsOnOf(schema).get(postgresName)).toBe('service_healthy');
    // admin-tools from the same Temporal release as the server, so the schema is the server's.
    expect(imageTag(schema.image ?? '')).toBe(imageTag(temporal.image ?? ''));

    expect(dependsOnOf(temporal).get(postgresName)).toBe('service_healthy');
    expect(dependsOnOf(temporal).get(schemaName)).toBe('service_completed_successfully');
    expect(temporal.healthcheck?.test).toBeDefined();
    // The dynamic config the server is pointed at is mounted there.
    const dynamicConfig = env.get('DYNAMIC_CONFIG_FILE_PATH');
    const mounted = (temporal.configs ?? []).find((c) => c.target === dynamicConfig);
    expect(compose.configs?.[mounted?.source ?? '']?.content).toMatch(/limit\.maxIDLength/);
  });

  it(`creates the namespace with at least ${MIN_RETENTION_DAYS} days' retention once the cluster is SERVING`, () => {
    expect(retentionProblems(compose)).toEqual([]);
    const [[name, setup] = ['', {}]] = adminToolsRunning(compose, /namespace create/);
    expect(script(setup)).toMatch(/until temporal operator cluster health/);
    expect(dependsOnOf(setup).get(temporalName(compose) ?? '')).toBe('service_healthy');
    expect(environmentOf(setup).get('TEMPORAL_ADDRESS')).toBe(`${temporalName(compose)}:7233`);
    expect(environmentOf(setup).get('TEMPORAL_NAMESPACE')).toBe(environmentOf(service(compose, 'worker')).get('TEMPORAL_NAMESPACE'));
    // Interpolated by Compose: a longer retention from the environment reaches the one-shot.
    expect(environmentOf(service(loadCompose({ env: { COUNTERSIGN_RETENTION: '17520h' } }), name)).get('COUNTERSIGN_RETENTION')).toBe('17520h');
  });

  it("registers Countersign's search attributes as Keyword", () => {
    expect(searchAttributeProblems(compose)).toEqual([]);
  });

  it('points the worker at the temporal service, its namespace and task queue, and a read-only policy file', () => {
    expect(workerEnvironmentProblems(compose)).toEqual([]);
  });

  it("gives the worker the host's AWS credential chain: environment, container credentials, or ~/.aws read-only", () => {
    const worker = workerName(compose) ?? 'worker';
    const unset = environmentOf(service(compose, worker));
    for (const key of PASSED_THROUGH) expect([key, unset.has(key), unset.get(key)]).toEqual([key, true, null]);
    const hostEnv = Object.fromEntries(PASSED_THROUGH.map((key) => [key, `from-host-${key}`]));
    const set = environmentOf(service(loadCompose({ env: hostEnv }), worker));
    for (const key of PASSED_THROUGH) expect([key, set.get(key)]).toEqual([key, `from-host-${key}`]);
    const awsDir = (service(compose, worker).volumes ?? []).find((v) => v.target === '/home/node/.aws');
    expect(awsDir).toMatchObject({ type: 'bind', source: path.join(home, '.aws'), read_only: true });
  });

  it("outlasts the worker's drain on stop, restarts the long-running services and not the one-shots", () => {
    expect(lifecycleProblems(compose)).toEqual([]);
  });

  it('publishes each host port once, and only on 127.0.0.1', () => {
    expect(portProblems(compose)).toEqual([]);
  });

  it('runs the same moto version as the embedded sandbox, with the managed policies loaded', () => {
    const moto = service(compose, 'moto');
    const command = (moto.command ?? []).join(' ');
    expect(command).toContain(`moto[server]==${MOTO_VERSION}`);
    expect(command).toMatch(/moto_server -H 0\.0\.0\.0 -p 5000/);
    expect(environmentOf(moto).get('MOTO_IAM_LOAD_MANAGED_POLICIES')).toBe('true');
  });

  it('serves the Temporal Web UI on 127.0.0.1:8080 against the temporal service', () => {
    const ui = Object.entries(compose.services).find(([, svc]) => svc.image?.startsWith('temporalio/ui:'));
    expect(ui).toBeDefined();
    expect(environmentOf(ui?.[1] ?? {}).get('TEMPORAL_ADDRESS')).toBe(`${temporalName(compose)}:7233`);
    expect(publishedPorts(compose).filter((p) => p.service === ui?.[0])).toEqual([{ service: ui?.[0], hostIp: '127.0.0.1', port: 8080, protocol: 'tcp' }]);
  });

  it('builds the worker on Node 22, multi-stage, as a non-root user, with CMD `countersign worker`', () => {
    expect(dockerfileProblems(compose, readFromRoot)).toEqual([]);
    expect(existsSync(path.join(ROOT, 'bin', 'countersign.js'))).toBe(true);
  });

  it('keeps local build output and secrets out of the build context', () => {
    const ignored = (readFromRoot('.dockerignore') ?? '').split('\n').map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.venv', '.git', 'config/policy.json', '.env']));
  });

  describe('catches', () => {
    const text = () => readFileSync(COMPOSE_FILE, 'utf8');
    /** The file with one exact passage replaced (which must be there, once). */
    const variant = (from: string, to: string) => {
      const original = text();
      expect(original.split(from)).toHaveLength(2);
      return original.replace(from, to);
    };

    it('(Compose) a dependency on a service only the sandbox profile starts, or on no service at all', () => {
      const onMoto = variant('      temporal-namespace:\n        condition: service_completed_successfully', '      moto:\n        condition: service_healthy');
      expect(composeRejects(onMoto)).toMatch(/service "worker" depends on undefined service "moto"/);
      expect(composeRejects(onMoto, ['sandbox'])).toBeUndefined();
      expect(composeRejects(variant('      temporal-schema:\n', '      temporal-schemas:\n'))).toMatch(/depends on undefined service "temporal-schemas"/);
    });

    it('(Compose) a condition that does not exist, a misspelt key, a config that is not defined', () => {
      expect(composeRejects(variant('condition: service_completed_successfully\n    environment:\n      TEMPORAL_ADDRESS: temporal:7233\n      TEMPORAL_NAMESPACE: default\n      COUNTERSIGN', 'condition: service_completed\n    environment:\n      TEMPORAL_ADDRESS: temporal:7233\n      TEMPORAL_NAMESPACE: default\n      COUNTERSIGN'))).toMatch(/condition value must be one of/);
      expect(composeRejects(variant('    stop_grace_period: 30s', '    stop_grace_periode: 30s'))).toMatch(/additional properties 'stop_grace_periode' not allowed/);
      expect(composeRejects(variant('      - source: temporal-dynamic-config', '      - source: temporal-dynamic-configuration'))).toMatch(/undefined config temporal-dynamic-configuration/);
    });

    it('an image on latest, an untagged image, auto-setup, and a service with neither image nor build', () => {
      const broken = copyOf(compose);
      service(broken, 'postgres').image = 'postgres:latest';
      service(broken, 'temporal-ui').image = 'temporalio/ui';
      service(broken, 'temporal').image = 'temporalio/auto-setup:1.29.1';
      delete service(broken, 'moto').image;
      expect(imagePinProblems(broken)).toEqual([
        'moto: neither image nor build',
        'postgres: image postgres:latest floats on latest',
        'temporal: temporalio/auto-setup:1.29.1 is the deprecated auto-setup image',
        'temporal-ui: image temporalio/ui has no tag',
      ]);
      expect(imageTag('localhost:5000/countersign')).toBeUndefined();
      expect(imageTag('localhost:5000/countersign:1.2.3')).toBe('1.2.3');
    });

    it('a worker pointed elsewhere, without a queue, not waiting for the namespace, with a writable or missing policy mount', () => {
      const broken = copyOf(compose);
      const worker = service(broken, 'worker');
      worker.environment = { ...worker.environment, TEMPORAL_ADDRESS: 'localhost:7233', COUNTERSIGN_TASK_QUEUE: null };
      delete worker.depends_on?.['temporal-namespace'];
      worker.volumes = [{ type: 'bind', source: path.join(ROOT, 'config'), target: '/config', read_only: false }];
      expect(workerEnvironmentProblems(broken)).toEqual([
        'worker: TEMPORAL_ADDRESS is localhost:7233, not temporal:7233',
        'worker: does not wait for the namespace set-up to complete',
        'worker: COUNTERSIGN_TASK_QUEUE is not countersign',
        `worker: the policy volume ${path.join(ROOT, 'config')} → /config is not read-only`,
      ]);
      worker.volumes = [];
      expect(workerEnvironmentProblems(broken)).toContain('worker: no volume is mounted where COUNTERSIGN_POLICY (/config/policy.json) points');
    });

    it('a retention under 400 days (from the environment, through Compose) or one that is not a duration', () => {
      expect(retentionProblems(loadCompose({ env: { COUNTERSIGN_RETENTION: '720h' } }))).toEqual(['temporal-namespace: retention 720h is under 400 days']);
      expect(retentionProblems(loadCompose({ env: { COUNTERSIGN_RETENTION: 'a year' } }))).toEqual(['temporal-namespace: retention a year is not a duration']);
      expect(durationSeconds('400d')).toBe(400 * 86400);
      expect(durationSeconds('1m30s')).toBe(90);
    });

    it('a missing search attribute, or one registered as Text', () => {
      const broken = copyOf(compose);
      const setup = service(broken, 'temporal-namespace');
      setup.environment = { ...setup.environment, COUNTERSIGN_SEARCH_ATTRIBUTES: 'CountersignKind CountersignAccount' };
      setup.command = (setup.command ?? []).map((line) => line.replace('--type Keyword', '--type Text'));
      expect(searchAttributeProblems(broken)).toEqual([
        `temporal-namespace: registers [CountersignKind, CountersignAccount], not [${SEARCH_ATTRIBUTES.join(', ')}]`,
        'temporal-namespace: does not create each as a Keyword',
      ]);
    });

    it("a grace period within the worker's drain, a service that does not restart, a one-shot that does", () => {
      const broken = copyOf(compose);
      service(broken, 'worker').stop_grace_period = '10s';
      delete service(broken, 'temporal').restart;
      service(broken, 'temporal-schema').restart = 'on-failure';
      expect(lifecycleProblems(broken)).toEqual([
        `worker: stop_grace_period 10s is not longer than the worker's ${drainSeconds()}s drain`,
        'temporal: restart is unset, not unless-stopped',
        'temporal-schema: a one-shot with restart on-failure',
      ]);
      delete service(broken, 'worker').stop_grace_period;
      expect(lifecycleProblems(broken)[0]).toMatch(/stop_grace_period \(default 10s\)/);
    });

    it('two services publishing the same host port, or a port open beyond localhost', () => {
      const broken = copyOf(compose);
      service(broken, 'moto').ports = [{ target: 5000, published: '8080', host_ip: '127.0.0.1', protocol: 'tcp' }];
      expect(portProblems(broken)).toEqual(['moto and temporal-ui both publish tcp port 8080']);
      service(broken, 'moto').ports = [{ target: 5000, published: '7230-7240', host_ip: '127.0.0.1' }];
      expect(portProblems(broken)).toEqual(['moto and temporal both publish tcp port 7233']);
      service(broken, 'moto').ports = [{ target: 5000, published: '5000' }];
      expect(portProblems(broken)).toEqual(['moto publishes tcp port 5000 on every interface, not 127.0.0.1']);
    });

    it('moto starting without the sandbox profile, or a core service hidden behind one', () => {
      const broken = copyOf(compose);
      delete service(broken, 'moto').profiles;
      service(broken, 'worker').profiles = ['sandbox'];
      expect(profileProblems(broken)).toEqual([
        'moto: profiles are [], not [sandbox]',
        'worker: only starts under profile(s) sandbox, but the stack needs it',
      ]);
    });

    it('a missing Dockerfile, one whose CMD is not the worker, another base, one stage, root', () => {
      expect(dockerfileProblems(compose, () => undefined)).toEqual(['worker: builds Dockerfile, which does not exist']);
      const shellForm = `FROM ${NODE_IMAGE} AS build\nRUN npm ci && \\\n  npm run build\nFROM ${NODE_IMAGE}\nUSER node\nCMD ["bin/countersign.js","worker"]\nCMD node bin/countersign.js dev\n`;
      expect(dockerfileProblems(compose, () => shellForm)).toEqual([
        'Dockerfile: CMD is node bin/countersign.js dev, not ["bin/countersign.js","worker"]',
      ]);
      const alpine = 'FROM node:20-alpine\n# RUN npm ci\nUSER node\nFROM node:20-alpine\nCMD ["bin/countersign.js","worker"]\n';
      expect(dockerfileProblems(compose, () => alpine)).toEqual([
        `Dockerfile: stages are FROM node:20-alpine, node:20-alpine, not ${NODE_IMAGE}`,
        'Dockerfile: never installs dependencies (npm install)',
        'Dockerfile: never runs npm run build',
        'Dockerfile: the image runs as root (no USER)',
      ]);
      const oneStage = `FROM ${NODE_IMAGE}\nRUN npm install && npm run build\nUSER root\nCMD ["bin/countersign.js","worker"]\n`;
      expect(dockerfileProblems(compose, () => oneStage)).toEqual([
        'Dockerfile: one stage, so the build tools ship in the image',
        'Dockerfile: the image runs as root',
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
