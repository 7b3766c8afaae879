/**
 * permission-boundary activities (docs/kinds/permission-boundary.md, docs/aws.md §4): plan the users
 * and roles to bound in waves, create a built-in boundary when it is missing, set each boundary after
 * a re-check, restore the previous one on rollback, verify.
 *
 * Only GetUser/GetRole show a principal's boundary (ListUsers/ListRoles never do, docs/aws.md §4), so
 * the plan reads each selected principal once; the rules themselves are pure (iam/boundary-rules.ts).
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import {
  CreatePolicyCommand,
  DeletePolicyCommand,
  DeleteRolePermissionsBoundaryCommand,
  DeleteUserPermissionsBoundaryCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetUserCommand,
  ListEntitiesForPolicyCommand,
  ListPolicyTagsCommand,
  PutRolePermissionsBoundaryCommand,
  PutUserPermissionsBoundaryCommand,
  paginateListRoles,
  paginateListUsers,
} from '@aws-sdk/client-iam';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { BUILTIN_BOUNDARY_NAMES, BUILTIN_BOUNDARY_PATH, builtinBoundaryArn, builtinBoundaryOf } from '../common/boundaries';
import { canonicalJson } from '../common/digest';
import type { Json, JsonObject } from '../common/json';
import type { KindParams } from '../common/kinds';
import { KINDS } from '../common/kinds';
import type { Change, ChangeOutcome, KindPlan, LeftAlone, Stage, VerifyCheck, VerifyResult } from '../common/plan';
import { iamPrincipalOf, principalMatches } from '../common/policy';
import type { AccountRef, ChangeRequest, PlanRequest, RollbackRequest, VerifyRequest } from '../common/requests';
import type { AwsClients } from './aws/clients';
import { awsErrorName, classifyAwsError, isAwsError } from './aws/errors';
import { keepAlive } from './heartbeat';
import type { BoundaryTarget, ListedPrincipal, LivePrincipal, PrincipalBoundaryState, PrincipalType } from './iam/boundary-rules';
import {
  applyVerdict,
  describeBoundary,
  matchingSelector,
  partitionOf,
  policyAccountOf,
  rollbackVerdict,
  sameBoundary,
  setBoundaryChange,
  skipBeforeRead,
  stableOrder,
  wavesOf,
} from './iam/boundary-rules';
import { decodePolicyDocument } from './iam/user-lifecycle';

type Params = KindParams<'permission-boundary'>;

/** Tag on a built-in boundary this kind creates: the workflow id, so only the run that made it deletes it. */
export const CREATED_BY_TAG = 'countersign:created-by';
/** Left-alone entries listed in the plan; the rest are counted (bounded history, docs/design.md §5). */
const LEFT_ALONE_LISTED = 500;
/** GetUser/GetRole calls in flight while planning: IAM throttles per account. */
const READ_CONCURRENCY = 4;
/**
 * Attempts during which "no such policy" right after this run created the boundary is taken for IAM's
 * eventual consistency and retried (docs/aws.md §4, §6.3) before it is reported for good.
 */
export const PROPAGATION_ATTEMPTS = 3;

export interface PermissionBoundaryDeps {
  aws: AwsClients;
  now?: () => Date;
}

/** What a create-boundary change carries (before: it does not exist; after: this). */
interface BoundaryPolicySpec extends JsonObject {
  name: string;
  path: string;
  arn: string;
  description: string;
  document: JsonObject;
}

interface PolicyFacts {
  arn: string;
  defaultVersionId: string | null;
  attachmentCount: number;
  boundaryUsageCount: number;
  isAttachable: boolean;
}

function refusal(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

function invalidPlan(change: Change, what: string): ApplicationFailure {
  return refusal('InvalidPlan', `change ${change.id} ${what}`);
}

/** The attempt of the running activity (1 outside one, e.g. in unit tests). */
function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

function stateOf(change: Change): PrincipalBoundaryState {
  const before = change.before as Partial<PrincipalBoundaryState> | null;
  if (!before || (before.type !== 'user' && before.type !== 'role') || typeof before.name !== 'string' || typeof before.id !== 'string') {
    throw invalidPlan(change, 'names no user or role');
  }
  return before as PrincipalBoundaryState;
}

function targetOf(change: Change): BoundaryTarget {
  const after = change.after as Partial<BoundaryTarget> | null;
  if (!after || typeof after.boundaryArn !== 'string') throw invalidPlan(change, 'names no boundary to set');
  return after as BoundaryTarget;
}

function policySpecOf(change: Change): BoundaryPolicySpec {
  const after = change.after as Partial<BoundaryPolicySpec> | null;
  if (!after || typeof after.name !== 'string' || typeof after.arn !== 'string' || !after.document || typeof after.document !== 'object') {
    throw invalidPlan(change, 'names no boundary policy');
  }
  return after as BoundaryPolicySpec;
}

const observedOf = (result: { observed?: Json }): JsonObject => (result.observed && typeof result.observed === 'object' && !Array.isArray(result.observed) ? result.observed : {});

// --- AWS reads and writes ---

async function readPrincipal(iam: IAMClient, type: PrincipalType, name: string): Promise<LivePrincipal | null> {
  try {
    if (type === 'user') {
      const u = (await iam.send(new GetUserCommand({ UserName: name }))).User;
      if (!u) return null;
      return { type, name: u.UserName ?? name, path: u.Path ?? '/', arn: u.Arn ?? '', id: u.UserId ?? '', boundaryArn: u.PermissionsBoundary?.PermissionsBoundaryArn ?? null };
    }
    const r = (await iam.send(new GetRoleCommand({ RoleName: name }))).Role;
    if (!r) return null;
    return { type, name: r.RoleName ?? name, path: r.Path ?? '/', arn: r.Arn ?? '', id: r.RoleId ?? '', boundaryArn: r.PermissionsBoundary?.PermissionsBoundaryArn ?? null };
  } catch (err) {
    if (isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) return null;
    throw err;
  }
}

async function readPolicy(iam: IAMClient, arn: string): Promise<PolicyFacts | null> {
  try {
    const p = (await iam.send(new GetPolicyCommand({ PolicyArn: arn }))).Policy;
    if (!p) return null;
    return {
      arn: p.Arn ?? arn,
      defaultVersionId: p.DefaultVersionId ?? null,
      attachmentCount: p.AttachmentCount ?? 0,
      boundaryUsageCount: p.PermissionsBoundaryUsageCount ?? 0,
      isAttachable: p.IsAttachable !== false,
    };
  } catch (err) {
    if (isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) return null;
    throw err;
  }
}

/**
 * A policy version's document. AWS returns it URL-encoded (docs/aws.md §4); the emulator returns it
 * plain for managed policies. Parsed when it is JSON, else kept as text.
 */
async function readPolicyDocument(iam: IAMClient, arn: string, versionId: string): Promise<Json | null> {
  try {
    const raw = (await iam.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: versionId }))).PolicyVersion?.Document;
    if (raw === undefined) return null;
    for (const text of [raw, decodePolicyDocument(raw)]) {
      if (text === undefined) continue;
      try {
        return JSON.parse(text) as Json;
      } catch {
        // not JSON as it stands: try the decoded form
      }
    }
    return raw;
  } catch (err) {
    if (isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) return null;
    throw err;
  }
}

async function taggedBy(iam: IAMClient, arn: string, workflowId: string): Promise<boolean> {
  try {
    const tags = await iam.send(new ListPolicyTagsCommand({ PolicyArn: arn }));
    return (tags.Tags ?? []).some((t) => t.Key === CREATED_BY_TAG && t.Value === workflowId);
  } catch (err) {
    if (isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) return false;
    throw err;
  }
}

const OPERATIONS = {
  put: { user: 'PutUserPermissionsBoundary', role: 'PutRolePermissionsBoundary' },
  delete: { user: 'DeleteUserPermissionsBoundary', role: 'DeleteRolePermissionsBoundary' },
} as const;

/**
 * Errors of a boundary mutation that say more than their name:
 * - UnmodifiableEntityException: AWS itself refuses (a service-linked or Identity Center role, which
 *   the plan skips by path — reaching here means the path rule missed one). Never retried.
 * - an operation the emulator does not implement (moto lacks the user boundary calls, docs/aws.md §9):
 *   never retried, and named, so the run fails at once with the reason instead of looping.
 */
function explainMutationError(err: unknown, op: string, principal: { type: PrincipalType; name: string; arn: string }, emulator: 'moto' | undefined): ApplicationFailure | undefined {
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error ? err : undefined;
  if (isAwsError(err, 'UnmodifiableEntityException', 'UnmodifiableEntity')) {
    return ApplicationFailure.create({
      type: 'AWS.UnmodifiableEntityException',
      nonRetryable: true,
      message: `AWS refuses to change the boundary of ${principal.arn}: only AWS may modify this ${principal.type} (a service-linked or IAM Identity Center role); nothing was changed — leave it out of the selectors (AWS said: ${message})`,
      details: [{ category: 'permanent', operation: op }],
      cause,
    });
  }
  if (classifyAwsError(err, emulator ? { emulator } : {}).category === 'unimplemented') {
    return ApplicationFailure.create({
      type: 'AWS.NotImplemented',
      nonRetryable: true,
      message: `${op} is not implemented by the ${emulator} emulator (it answered HTTP 500 without an AWS error body; docs/aws.md §8.2, §9): the boundary of ${principal.arn} cannot be changed there; not retried`,
      details: [{ category: 'unimplemented', operation: op }],
      cause,
    });
  }
  return undefined;
}

/** Run pending work on at most `limit` lanes, results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T);
  });
  await Promise.all(lanes);
  return results;
}

export function createPermissionBoundaryActivities(deps: PermissionBoundaryDeps) {
  const { aws } = deps;
  const now = deps.now ?? (() => new Date());
  const emulator = aws.settings.emulator;
  /** IAM in the run's account: the worker's own, or through the assumed role (activities/aws/clients.ts). */
  const iamOf = async (ref: AccountRef): Promise<IAMClient> => (await aws.forAccount(ref)).iam();

  /** Documents of previous boundaries by ARN and version, so waves of principals sharing one read it once per worker. */
  const documents = new Map<string, Json | null>();
  async function previousBoundaryEvidence(iam: IAMClient, arn: string): Promise<Json> {
    const policy = await readPolicy(iam, arn);
    if (!policy?.defaultVersionId) return { arn, exists: false };
    const key = `${arn}#${policy.defaultVersionId}`;
    if (!documents.has(key)) {
      if (documents.size >= 64) documents.delete(documents.keys().next().value as string);
      documents.set(key, await readPolicyDocument(iam, arn, policy.defaultVersionId));
    }
    return { arn, defaultVersionId: policy.defaultVersionId, document: documents.get(key) ?? null };
  }

  /**
   * The principal as re-read may differ from the approved one (a user moved to another path): the engine
   * checked the approved ARN; this checks the live one, against the run's principals and the policy's.
   */
  async function refuseProtected(request: { protectedPrincipals: string[] }, arn: string): Promise<void> {
    const caller = iamPrincipalOf((await aws.callerIdentity()).arn);
    const pattern = request.protectedPrincipals.find((p) => principalMatches(p, arn));
    if (principalMatches(caller, arn) || pattern) {
      throw refusal('ProtectedPrincipal', `${arn} is protected (${pattern ? `matches ${pattern}` : "it is the worker's own identity"}); its boundary is never changed`);
    }
  }

  /** Read back after a put or delete: IAM is eventually consistent, so a mismatch is retried (§4). */
  async function confirmBoundary(iam: IAMClient, principal: { type: PrincipalType; name: string; arn: string }, expected: string | null): Promise<void> {
    const live = await readPrincipal(iam, principal.type, principal.name);
    if (!live || !sameBoundary(live.boundaryArn, expected)) {
      throw ApplicationFailure.create({
        type: 'BoundaryNotVisibleYet',
        message: `${principal.arn} reads back with boundary ${live ? describeBoundary(live.boundaryArn) : '(principal gone)'}, not ${describeBoundary(expected)}; retried (IAM is eventually consistent)`,
      });
    }
  }

  async function putBoundary(iam: IAMClient, principal: { type: PrincipalType; name: string; arn: string }, boundaryArn: string): Promise<void> {
    const op = OPERATIONS.put[principal.type];
    try {
      if (principal.type === 'user') await iam.send(new PutUserPermissionsBoundaryCommand({ UserName: principal.name, PermissionsBoundary: boundaryArn }));
      else await iam.send(new PutRolePermissionsBoundaryCommand({ RoleName: principal.name, PermissionsBoundary: boundaryArn }));
    } catch (err) {
      throw explainMutationError(err, op, principal, emulator) ?? err;
    }
  }

  async function deleteBoundary(iam: IAMClient, principal: { type: PrincipalType; name: string; arn: string }): Promise<void> {
    const op = OPERATIONS.delete[principal.type];
    try {
      if (principal.type === 'user') await iam.send(new DeleteUserPermissionsBoundaryCommand({ UserName: principal.name }));
      else await iam.send(new DeleteRolePermissionsBoundaryCommand({ RoleName: principal.name }));
    } catch (err) {
      // Deleting a boundary that is not there is not documented either way (docs/aws.md §9): "no such
      // entity" from a principal that was just read counts as done; the read-back confirms it.
      if (isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) return;
      throw explainMutationError(err, op, principal, emulator) ?? err;
    }
  }

  /** Every user or role whose selector picks it (ListUsers/ListRoles, paged), and how many were not picked. */
  async function listSelected(iam: IAMClient, type: PrincipalType, selectors: string[], matched: Set<string>): Promise<{ picked: ListedPrincipal[]; notPicked: number }> {
    const picked: ListedPrincipal[] = [];
    let notPicked = 0;
    if (selectors.length === 0) return { picked, notPicked };
    const pages =
      type === 'user'
        ? (async function* () {
            for await (const page of paginateListUsers({ client: iam }, {})) yield (page.Users ?? []).map((u) => ({ name: u.UserName, path: u.Path, arn: u.Arn, id: u.UserId }));
          })()
        : (async function* () {
            for await (const page of paginateListRoles({ client: iam }, {})) yield (page.Roles ?? []).map((r) => ({ name: r.RoleName, path: r.Path, arn: r.Arn, id: r.RoleId }));
          })();
    for await (const page of pages) {
      keepAlive({ listing: type, picked: picked.length });
      for (const p of page) {
        if (!p.name || !p.arn || !p.id) continue;
        const principal: ListedPrincipal = { type, name: p.name, path: p.path ?? '/', arn: p.arn, id: p.id };
        const selector = matchingSelector(selectors, principal);
        if (selector === undefined) {
          notPicked++;
          continue;
        }
        matched.add(selector);
        picked.push(principal);
      }
    }
    return { picked, notPicked };
  }

  return {
    async planPermissionBoundaries(request: PlanRequest<Params>): Promise<KindPlan> {
      const { params } = request;
      if (params.users.length === 0 && params.roles.length === 0) {
        throw refusal('InvalidParameters', 'select principals: users=… and/or roles=… (each "*", names, or path prefixes such as /apps/); with neither, there is nothing to bound');
      }
      const iam = await iamOf(request);
      const at = now();
      const notes: string[] = [];
      const leftAlone: LeftAlone[] = [];
      const partition = partitionOf(request.target.actingArn || request.target.workerArn);

      // The boundary: a built-in (created when missing — a change of its own) or an existing policy.
      let boundaryArn: string;
      let createChange: Change | undefined;
      const builtin = builtinBoundaryOf(params.boundary);
      if (params.boundary.startsWith('builtin:')) {
        if (!builtin) throw refusal('UnknownBuiltinBoundary', `${params.boundary} is not a built-in boundary; built-ins: ${BUILTIN_BOUNDARY_NAMES.map((n) => `builtin:${n}`).join(', ')}`);
        const ctx = { partition, account: request.account };
        boundaryArn = builtinBoundaryArn(builtin.name, ctx);
        const document = builtin.document(ctx);
        const existing = await readPolicy(iam, boundaryArn);
        if (!existing) {
          const spec: BoundaryPolicySpec = { name: builtin.name, path: BUILTIN_BOUNDARY_PATH, arn: boundaryArn, description: builtin.description, document };
          createChange = {
            id: `create-boundary/${builtin.name}`,
            stage: 'boundary',
            action: 'create-boundary',
            resource: boundaryArn,
            summary: `create the managed policy ${boundaryArn} (${params.boundary}; its document is in this change); deleted on rollback only if this run created it and nothing uses it`,
            before: { exists: false },
            after: spec,
            reversible: true,
            destructive: false,
          };
        } else {
          const live = existing.defaultVersionId ? await readPolicyDocument(iam, boundaryArn, existing.defaultVersionId) : null;
          if (live === null || canonicalJson(live) !== canonicalJson(document)) {
            throw refusal(
              'BoundaryDiffers',
              `${boundaryArn} exists, but its default version ${existing.defaultVersionId ?? '(none)'} is not the document of ${params.boundary}; make it the built-in's (docs/kinds/permission-boundary.md) or pass boundary=${boundaryArn} to use it as it is`,
            );
          }
          notes.push(`boundary ${boundaryArn} (${params.boundary}) exists already with the built-in document (default version ${existing.defaultVersionId})`);
        }
      } else {
        boundaryArn = params.boundary;
        const owner = policyAccountOf(boundaryArn);
        if (owner !== 'aws' && owner !== request.account) {
          throw refusal('BoundaryInOtherAccount', `${boundaryArn} is a policy of account ${owner ?? '?'}; a boundary must be an AWS managed policy or a policy of account ${request.account}`);
        }
        const policy = await readPolicy(iam, boundaryArn);
        if (!policy) throw refusal('BoundaryNotFound', `the boundary policy ${boundaryArn} does not exist in account ${request.account} (GetPolicy: NoSuchEntity); create it first or use a built-in (${BUILTIN_BOUNDARY_NAMES.map((n) => `builtin:${n}`).join(', ')})`);
        if (!policy.isAttachable) throw refusal('BoundaryNotAttachable', `${boundaryArn} is not attachable (IsAttachable false), so it cannot be a boundary`);
        notes.push(`boundary ${boundaryArn}, default version ${policy.defaultVersionId ?? '?'}, set as it stands`);
      }

      // The principals the selectors pick, then the rules that leave some alone.
      const matched = new Set<string>();
      const users = await listSelected(iam, 'user', params.users, matched);
      const roles = await listSelected(iam, 'role', params.roles, matched);
      const unmatched = [...params.users, ...params.roles].filter((s) => !matched.has(s));
      if (unmatched.length > 0) notes.push(`selectors that matched nothing: ${[...new Set(unmatched)].join(', ')}`);
      notes.push(`${users.picked.length} user(s) and ${roles.picked.length} role(s) selected; ${users.notPicked + roles.notPicked} not selected`);

      const candidates: ListedPrincipal[] = [];
      for (const p of stableOrder([...users.picked, ...roles.picked])) {
        const skip = skipBeforeRead(p, { selfPrincipals: request.target.selfPrincipals, protectedPrincipals: request.protectedPrincipals });
        if (skip) leftAlone.push({ resource: p.arn, reason: skip.reason, detail: skip.detail });
        else candidates.push(p);
      }

      // Each candidate's boundary (only GetUser/GetRole show it), and its previous boundary's version.
      const versions = new Map<string, string | null>();
      const states = await mapLimit(candidates, READ_CONCURRENCY, async (p) => {
        keepAlive({ reading: p.arn });
        return readPrincipal(iam, p.type, p.name);
      });
      const toChange: PrincipalBoundaryState[] = [];
      for (const [i, p] of candidates.entries()) {
        const live = states[i];
        if (!live || live.id !== p.id) {
          notes.push(`${p.arn} was deleted or recreated while planning; not planned`);
          continue;
        }
        if (sameBoundary(live.boundaryArn, boundaryArn)) {
          leftAlone.push({ resource: p.arn, reason: 'already-compliant', detail: `its boundary is already ${boundaryArn}` });
          continue;
        }
        let versionId: string | null = null;
        if (live.boundaryArn) {
          if (!versions.has(live.boundaryArn)) versions.set(live.boundaryArn, (await readPolicy(iam, live.boundaryArn))?.defaultVersionId ?? null);
          versionId = versions.get(live.boundaryArn) ?? null;
        }
        toChange.push({ type: p.type, name: live.name, path: live.path, arn: live.arn, id: live.id, boundaryArn: live.boundaryArn, boundaryVersionId: versionId });
      }

      const waves = wavesOf(toChange, params.batch, params.soak);
      const stages: Stage[] = [];
      const changes: Change[] = [];
      if (createChange && toChange.length > 0) {
        stages.push({ name: 'boundary', description: `create the built-in boundary ${params.boundary}`, concurrency: 1 });
        changes.push(createChange);
      }
      for (const wave of waves) {
        stages.push(wave.stage);
        for (const state of wave.items) changes.push(setBoundaryChange(state, boundaryArn, wave.stage.name, createChange && toChange.length > 0 ? [createChange.id] : []));
      }
      if (emulator === 'moto' && toChange.some((s) => s.type === 'user')) {
        notes.push('the moto emulator does not implement PutUserPermissionsBoundary: user changes fail at once there, unretried (docs/aws.md §9)');
      }
      if (waves.length > 1) notes.push(`${waves.length} waves of up to ${params.batch}, each after the first following a ${params.soak} soak; a reject during a soak rolls back what was set`);
      if (aws.settings.emulator) notes.push(`AWS is the ${aws.settings.emulator} emulator at ${aws.settings.endpoint ?? 'the default endpoint'}`);

      const listed = leftAlone.slice(0, LEFT_ALONE_LISTED);
      log.info('planned permission boundaries', { workflowId: request.workflowId, account: request.account, changes: changes.length, leftAlone: leftAlone.length });
      return {
        createdAt: at.toISOString(),
        stages,
        changes,
        leftAlone: listed,
        leftAloneNotListed: leftAlone.length - listed.length,
        notes: [...notes, `controls: ${KINDS['permission-boundary'].controls.join(', ')}`],
      };
    },

    async createBuiltinBoundary(request: ChangeRequest): Promise<ChangeOutcome> {
      const spec = policySpecOf(request.change);
      const iam = await iamOf(request);
      /** A policy of this name already there: ours from an earlier attempt, or one to adopt only when it is the approved document. */
      const adoptOrRefuse = async (existing: PolicyFacts): Promise<ChangeOutcome> => {
        if (await taggedBy(iam, spec.arn, request.workflowId)) return { status: 'already-done', detail: 'created by an earlier attempt of this run', observed: { createdByThisRun: true } };
        const live = existing.defaultVersionId ? await readPolicyDocument(iam, spec.arn, existing.defaultVersionId) : null;
        if (live !== null && canonicalJson(live) === canonicalJson(spec.document)) {
          return { status: 'already-done', detail: `${spec.arn} appeared since the plan with the approved document: used, and kept on rollback`, observed: { createdByThisRun: false } };
        }
        return { status: 'left-alone', detail: `left alone: ${spec.arn} appeared since the plan with another document; run again to plan from the current state` };
      };
      const existing = await readPolicy(iam, spec.arn);
      if (existing) return adoptOrRefuse(existing);
      try {
        await iam.send(
          new CreatePolicyCommand({
            PolicyName: spec.name,
            Path: spec.path,
            PolicyDocument: JSON.stringify(spec.document),
            Description: spec.description.slice(0, 1000),
            Tags: [{ Key: CREATED_BY_TAG, Value: request.workflowId.slice(0, 256) }],
          }),
        );
      } catch (err) {
        if (isAwsError(err, 'EntityAlreadyExistsException', 'EntityAlreadyExists')) {
          const found = await readPolicy(iam, spec.arn);
          if (found) return adoptOrRefuse(found);
        }
        throw err;
      }
      log.info('created boundary policy', { workflowId: request.workflowId, change: request.change.id, policy: spec.arn });
      return { status: 'applied', detail: `created ${spec.arn}`, observed: { createdByThisRun: true } };
    },

    async deleteCreatedBoundary(request: RollbackRequest): Promise<ChangeOutcome> {
      const spec = policySpecOf(request.change);
      const iam = await iamOf(request);
      const existing = await readPolicy(iam, spec.arn);
      if (!existing) return { status: 'already-done', detail: 'the boundary policy is already gone' };
      const ours = observedOf(request.result).createdByThisRun === true || (await taggedBy(iam, spec.arn, request.workflowId));
      if (!ours) return { status: 'left-alone', detail: 'the boundary policy existed before this run; kept' };
      // Used by anything — attached, or a boundary of any user or role, this run's rolled-back ones
      // excepted — it stays: deleting a boundary in use is refused by AWS, and would be wrong anyway.
      const entities = await iam.send(new ListEntitiesForPolicyCommand({ PolicyArn: spec.arn, MaxItems: 10 }));
      const users = (entities.PolicyUsers ?? []).map((u) => `user ${u.UserName}`);
      const roles = (entities.PolicyRoles ?? []).map((r) => `role ${r.RoleName}`);
      const groups = (entities.PolicyGroups ?? []).map((g) => `group ${g.GroupName}`);
      const inUse = [...users, ...roles, ...groups];
      if (existing.attachmentCount > 0 || existing.boundaryUsageCount > 0 || inUse.length > 0) {
        const what = inUse.length > 0 ? inUse.join(', ') : `${existing.attachmentCount} attachment(s), ${existing.boundaryUsageCount} boundary use(s)`;
        return { status: 'left-alone', detail: `the boundary policy this run created is in use (${what}); kept — delete it by hand once unused` };
      }
      try {
        await iam.send(new DeletePolicyCommand({ PolicyArn: spec.arn }));
      } catch (err) {
        if (isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) return { status: 'already-done', detail: 'the boundary policy is already gone' };
        if (isAwsError(err, 'DeleteConflictException', 'DeleteConflict')) {
          return { status: 'left-alone', detail: `the boundary policy this run created cannot be deleted (${awsErrorName(err)}: ${(err as Error).message}); kept` };
        }
        throw err;
      }
      log.info('deleted the boundary policy this run created', { workflowId: request.workflowId, change: request.change.id, policy: spec.arn });
      return { status: 'applied', detail: `deleted ${spec.arn}, which this run created` };
    },

    async setPermissionsBoundary(request: ChangeRequest): Promise<ChangeOutcome> {
      const before = stateOf(request.change);
      const { boundaryArn } = targetOf(request.change);
      const iam = await iamOf(request);
      keepAlive({ change: request.change.id });
      const live = await readPrincipal(iam, before.type, before.name);
      if (live) await refuseProtected(request, live.arn);
      const verdict = applyVerdict(before, live, boundaryArn);
      if (verdict.action === 'left-alone') return { status: 'left-alone', detail: verdict.detail };
      // Evidence of what is replaced: the previous boundary's document as it stands just before the put.
      const previous = before.boundaryArn ? await previousBoundaryEvidence(iam, before.boundaryArn) : null;
      const observed = { previousBoundary: previous, boundaryArn };
      if (verdict.action === 'already-done') return { status: 'already-done', detail: verdict.detail, observed };
      const principal = { type: before.type, name: before.name, arn: (live as LivePrincipal).arn };
      try {
        await putBoundary(iam, principal, boundaryArn);
      } catch (err) {
        if (!isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) throw err;
        // Either the principal went away since the read, or the boundary policy does not exist (yet).
        if (!(await readPrincipal(iam, before.type, before.name))) return { status: 'left-alone', detail: `left alone: ${before.type} ${before.name} no longer exists` };
        const propagating = (request.change.dependsOn ?? []).length > 0 && currentAttempt() < PROPAGATION_ATTEMPTS;
        throw ApplicationFailure.create({
          type: 'BoundaryNotFound',
          nonRetryable: !propagating,
          message: `the boundary policy ${boundaryArn} was not found when setting it on ${principal.arn}${propagating ? '; it was just created, so this is retried while IAM propagates it' : ''} (AWS said: ${(err as Error).message})`,
          cause: err as Error,
        });
      }
      await confirmBoundary(iam, principal, boundaryArn);
      log.info('set permissions boundary', { workflowId: request.workflowId, change: request.change.id, principal: principal.arn, boundary: boundaryArn });
      return { status: 'applied', detail: `boundary ${boundaryArn} set (was ${describeBoundary(before.boundaryArn)})`, observed };
    },

    async restorePermissionsBoundary(request: RollbackRequest): Promise<ChangeOutcome> {
      const before = stateOf(request.change);
      const { boundaryArn } = targetOf(request.change);
      const iam = await iamOf(request);
      const live = await readPrincipal(iam, before.type, before.name);
      if (live) await refuseProtected(request, live.arn);
      const verdict = rollbackVerdict(before, live, boundaryArn);
      if (verdict.action === 'already-done' || verdict.action === 'left-alone') return { status: verdict.action, detail: verdict.detail };
      const principal = { type: before.type, name: before.name, arn: (live as LivePrincipal).arn };
      if (verdict.action === 'delete') {
        await deleteBoundary(iam, principal);
        await confirmBoundary(iam, principal, null);
        log.info('removed the boundary this run added', { workflowId: request.workflowId, change: request.change.id, principal: principal.arn });
        return { status: 'applied', detail: `removed the boundary ${boundaryArn} this run added; ${before.type} ${before.name} has none, as before` };
      }
      try {
        await putBoundary(iam, principal, verdict.boundaryArn);
      } catch (err) {
        if (isAwsError(err, 'NoSuchEntityException', 'NoSuchEntity')) {
          throw refusal(
            'PreviousBoundaryMissing',
            `the previous boundary ${verdict.boundaryArn} of ${principal.arn} no longer exists, so it cannot be put back; ${boundaryArn} stays (its document is in this change's apply result) (AWS said: ${(err as Error).message})`,
          );
        }
        throw err;
      }
      await confirmBoundary(iam, principal, verdict.boundaryArn);
      log.info('restored the previous boundary', { workflowId: request.workflowId, change: request.change.id, principal: principal.arn, boundary: verdict.boundaryArn });
      return { status: 'applied', detail: `restored the previous boundary ${verdict.boundaryArn}` };
    },

    async verifyPermissionBoundaries(request: VerifyRequest): Promise<VerifyResult> {
      const iam = await iamOf(request);
      const checks: VerifyCheck[] = [];
      for (const { change, result } of request.applied) {
        keepAlive({ verifying: change.id });
        if (change.action === 'create-boundary') {
          const spec = policySpecOf(change);
          const exists = (await readPolicy(iam, spec.arn)) !== null;
          checks.push({ changeId: change.id, ok: exists, detail: exists ? `${spec.arn} exists` : `${spec.arn} does not exist` });
          continue;
        }
        if (result.status !== 'applied' && result.status !== 'already-done') continue;
        const before = stateOf(change);
        const { boundaryArn } = targetOf(change);
        const live = await readPrincipal(iam, before.type, before.name);
        const ok = live !== null && live.id === before.id && sameBoundary(live.boundaryArn, boundaryArn);
        checks.push({
          changeId: change.id,
          ok,
          detail: ok ? `${live.arn} has boundary ${boundaryArn}` : live ? `${live.arn} has boundary ${describeBoundary(live.boundaryArn)}, not ${boundaryArn}` : `${before.arn} no longer exists`,
        });
      }
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}
