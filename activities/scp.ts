/**
 * scp activities: from the management account, validate the document, plan the policy (created,
 * adopted, or a new version beside an old one), the SCP policy type on the root, and one wave per
 * target in the operator's order; apply each change with one AWS mutation and a read-back; undo what
 * this run attached, detached or created; verify (docs/kinds/scp.md).
 *
 * Undo follows one rule: an activity undoes only what its apply reported doing itself (`observed`).
 * An attachment found in place, a policy that existed before the run, and the policy type (never
 * disabled: that would detach every SCP of the organization) are kept. FullAWSAccess is never
 * detached, whatever a change says.
 */
import { createHash } from 'node:crypto';
import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import { AttachPolicyCommand, CreatePolicyCommand, DeletePolicyCommand, DescribeOrganizationCommand, DetachPolicyCommand, EnablePolicyTypeCommand } from '@aws-sdk/client-organizations';
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Json, JsonObject } from '../common/json';
import type { KindParams } from '../common/kinds';
import { KINDS } from '../common/kinds';
import type { Change, ChangeOutcome, KindPlan, LeftAlone, Stage, VerifyCheck, VerifyResult } from '../common/plan';
import { principalMatches } from '../common/policy';
import type { ChangeRequest, PlanRequest, RollbackRequest, VerifyRequest } from '../common/requests';
import { canonicalScpContent, minifiedScp, selectScp } from '../common/scp-document';
import type { AwsClients } from './aws/clients';
import { awsErrorName, isAwsError } from './aws/errors';
import { keepAlive } from './heartbeat';
import type { PolicyRef, RootFacts } from './organizations/scp-estate';
import {
  CREATED_BY_TAG,
  FULL_AWS_ACCESS_ID,
  MAX_SCPS_PER_TARGET,
  SCP_TYPE,
  describeTarget,
  findScpByName,
  inspectScpRollout,
  policyContent,
  policyCreatedBy,
  readRoot,
  scpsOnTarget,
  targetKindOf,
  targetsOfPolicy,
} from './organizations/scp-estate';

export interface ScpDeps {
  aws: AwsClients;
  now?: () => Date;
  /** How the policy-type wait sleeps between reads (tests pass one that does not wait). */
  sleep?: (ms: number) => Promise<void>;
}

type Params = KindParams<'scp'>;

/**
 * EnablePolicyType is asynchronous on AWS: the root shows PENDING_ENABLE for a while, and attaching
 * before ENABLED is refused (docs/aws.md §3.1). The apply reads ListRoots about this many times, with
 * growing pauses (about two minutes in all), heartbeating; still pending after that, it fails retryably
 * and Temporal's retry waits on.
 */
export const POLICY_TYPE_POLLS = 15;
const pollDelayMs = (poll: number): number => Math.min(1_000 * 2 ** poll, 10_000);

/** A refusal a human must resolve: the run ends failed with this message. */
function precondition(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

function invalidPlan(change: Change, what: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidPlan', nonRetryable: true, message: `change ${change.id} ${what}` });
}

/** The attempt of the running activity (1 outside one, e.g. in unit tests). */
function currentAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

/** What identifies a document whatever its spelling: SHA-256 of its canonical JSON. */
export function scpContentSha256(content: string): string {
  return createHash('sha256').update(canonicalScpContent(content)).digest('hex');
}

const reasonOf = (err: unknown): string | undefined => (err && typeof err === 'object' ? ((err as { Reason?: unknown }).Reason as string | undefined) : undefined);

// --- what changes carry in before/after (plain JSON in history) ---

function side(change: Change, which: 'before' | 'after'): JsonObject {
  const doc = change[which];
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalidPlan(change, `has no ${which} state`);
  return doc;
}

function text(change: Change, which: 'before' | 'after', key: string): string {
  const value = side(change, which)[key];
  if (typeof value !== 'string' || !value) throw invalidPlan(change, `has no ${key} ${which}`);
  return value;
}

const observedOf = (result: { observed?: Json }): JsonObject => (result.observed && typeof result.observed === 'object' && !Array.isArray(result.observed) ? result.observed : {});

/** The target a change acts on, as the plan recorded it. */
function targetOf(change: Change): { id: string; kind: ReturnType<typeof targetKindOf>; name: string } {
  const id = text(change, 'after', 'target');
  const name = side(change, 'after').targetName;
  return { id, kind: targetKindOf(id), name: typeof name === 'string' ? name : '' };
}

/** FullAWSAccess, or any AWS-managed SCP: this kind never detaches one (docs/aws.md §3.2). */
const neverDetached = (policy: { id: string; awsManaged?: boolean }): boolean => policy.id === FULL_AWS_ACCESS_ID || policy.awsManaged === true;

// --- AWS facts shared by plan and apply ---

interface OrganizationFacts {
  id: string;
  arn: string;
}

/** The organization, refusing unless it has all features and the account is its management account. */
async function managementOrganization(orgs: OrganizationsClient, account: string): Promise<OrganizationFacts> {
  let org;
  try {
    org = (await orgs.send(new DescribeOrganizationCommand({}))).Organization;
  } catch (err) {
    if (isAwsError(err, 'AWSOrganizationsNotInUseException')) throw precondition('NotInOrganization', `account ${account} is in no AWS organization; service control policies need one with all features`);
    if (isAwsError(err, 'AccessDeniedException', 'AccessDenied')) {
      throw precondition('OrganizationNotReadable', `account ${account} may not describe its organization (${awsErrorName(err)}); run the worker with the management account's credentials`);
    }
    throw err;
  }
  if (!org?.Id || !org.Arn || !org.MasterAccountId) throw precondition('OrganizationNotReadable', 'DescribeOrganization answered without the organization id, ARN or management account');
  if (org.FeatureSet !== 'ALL') {
    throw precondition('OrganizationNotAllFeatures', `organization ${org.Id} has only consolidated-billing features; SCPs need all features: \`aws organizations enable-all-features\` from the management account ${org.MasterAccountId}`);
  }
  if (org.MasterAccountId !== account) {
    throw precondition(
      'NotManagementAccount',
      `account ${account} is a member of organization ${org.Id}; SCPs are created and attached from the management account ${org.MasterAccountId} (--account ${org.MasterAccountId}, with the worker on its credentials)`,
    );
  }
  return { id: org.Id, arn: org.Arn };
}

/** The approved policy as it is now: its id, when it still exists with the approved content. */
async function approvedPolicy(orgs: OrganizationsClient, change: Change): Promise<{ policy?: PolicyRef; why?: string }> {
  const name = text(change, 'after', 'policy');
  const digest = text(change, 'after', 'contentSha256');
  const policy = await findScpByName(orgs, name);
  if (!policy) return { why: `the policy ${name} does not exist (its creation did not happen, or it was deleted since)` };
  const content = await policyContent(orgs, policy.id);
  if (content === undefined) return { why: `the policy ${name} was deleted just now` };
  if (scpContentSha256(content) !== digest) return { why: `the policy ${name} (${policy.id}) no longer has the approved content; run again to plan from what it holds now` };
  return { policy };
}

export function createScpActivities(deps: ScpDeps) {
  const { aws } = deps;
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const orgsOf = async (ref: { account: string; workflowId: string }): Promise<OrganizationsClient> => (await aws.forAccount(ref)).organizations();

  /** A policy type refused an attach: retried while the root is still enabling it, refused otherwise. */
  async function policyTypeNotEnabled(orgs: OrganizationsClient, change: Change): Promise<ApplicationFailure> {
    const root = await readRoot(orgs);
    if (root.scpStatus === 'PENDING_ENABLE') {
      return ApplicationFailure.create({ type: 'PolicyTypePendingEnable', nonRetryable: false, message: `SCPs are still being enabled on ${root.id} (PENDING_ENABLE); ${change.id} is retried` });
    }
    return precondition('PolicyTypeNotEnabled', `SCPs are ${root.scpStatus} on ${root.id}, so AWS refused ${change.id}; run again to plan enabling them`);
  }

  return {
    async planScp(request: PlanRequest<Params>): Promise<KindPlan> {
      const { params, account } = request;
      // The same refusals as `countersign start` (cli/preflight.ts): a run started another way gets them here.
      const { selection, problems } = selectScp(params);
      if (!selection) throw precondition('InvalidParameters', `nothing was planned: ${problems.join('; ')}`);
      const orgs = await orgsOf(request);
      const org = await managementOrganization(orgs, account);
      const inspection = await inspectScpRollout(orgs, { policyName: selection.policyName, content: selection.content, targets: params.targets }, (what) => keepAlive({ reading: what }));
      const { root, targets, choice, attached } = inspection;
      if (inspection.problems.length > 0 || !choice) throw precondition('ScpRolloutRefused', `nothing was planned: ${inspection.problems.join('; ')}`);
      if (root.scpStatus === 'PENDING_DISABLE') {
        throw precondition('PolicyTypeBeingDisabled', `SCPs are being disabled on ${root.id} (PENDING_DISABLE), which detaches every SCP; run again once that has finished`);
      }

      const contentSha256 = scpContentSha256(selection.content);
      const changes: Change[] = [];
      const leftAlone: LeftAlone[] = [];
      const notes: string[] = [
        `policy ${choice.name}${selection.guardrail ? ` (built-in guardrail ${selection.guardrail})` : ''}, ${selection.content.length.toLocaleString('en-US')} of 5,120 characters, attached in ${targets.length} wave(s): ${targets.map((t) => describeTarget(t)).join(' → ')}`,
        // docs/aws.md §3.3: what an SCP can and cannot restrict.
        'SCPs never restrict the management account (its root user included) nor service-linked roles; they restrict member accounts, their root users included',
        ...choice.notes,
      ];
      // The worker acts in member accounts through an assumed role (docs/aws.md §7): a guardrail binds
      // that role like any other principal there unless it is exempted.
      const memberRole = `arn:aws:iam::000000000000:role/${aws.settings.accountRole}`;
      if (selection.guardrail && selection.guardrail !== 'deny-root-user' && !params.exemptPrincipals.some((p) => principalMatches(p, memberRole))) {
        notes.push(
          `Countersign acts in member accounts as the role ${aws.settings.accountRole}, which ${selection.guardrail} restricts too unless exempted (exemptPrincipals=arn:aws:iam::*:role/${aws.settings.accountRole})${selection.guardrail === 'protect-cloudtrail' ? ': retire-default-trails could no longer stop or delete trails in these accounts' : ''}`,
        );
      }

      // 1. The policy type on the root. Never undone: disabling it detaches every SCP under the root
      //    for good (docs/aws.md §3.1).
      // moto lists no policy type on a new organization's root although FullAWSAccess is attached
      // everywhere (docs/aws.md §9): there the plan enables the type, and the enable is instant.
      const enableId = `enable-policy-type/${root.id}`;
      if (root.scpStatus !== 'ENABLED') {
        changes.push({
          id: enableId,
          stage: 'policy',
          action: 'enable-policy-type',
          resource: root.arn,
          summary: `enable the SERVICE_CONTROL_POLICY type on the root ${root.id} (now ${root.scpStatus}) and wait until ENABLED; never undone: disabling it would detach every SCP of the organization`,
          before: { root: root.id, scpPolicyType: root.scpStatus },
          after: { root: root.id, scpPolicyType: 'ENABLED' },
          reversible: false,
          destructive: false,
        });
      } else {
        leftAlone.push({ resource: root.arn, reason: 'already-compliant', detail: `the SERVICE_CONTROL_POLICY type is enabled on ${root.id}` });
      }

      // 2. The policy: adopted when one of its family has this content, else created (a new version
      //    beside an old one that has other content; the old one is never edited in place).
      const createId = `create-policy/${choice.name}`;
      if (choice.existing) {
        leftAlone.push({ resource: choice.existing.arn, reason: 'already-compliant', detail: `${choice.name} (${choice.existing.id}) exists with this content and is adopted as it is` });
      } else {
        const replaces = choice.superseded.map((p) => p.name);
        changes.push({
          id: createId,
          stage: 'policy',
          action: 'create-policy',
          resource: org.arn,
          summary: `create the SCP ${choice.name}${replaces.length > 0 ? `, a new version beside ${replaces.join(', ')} (whose content differs; never edited in place)` : ''}; deleted on rollback if it is attached nowhere`,
          before: { policy: choice.name, exists: false },
          after: { policy: choice.name, description: selection.description, content: selection.document, contentSha256 },
          reversible: true,
          destructive: false,
        });
      }
      const policyDeps = changes.map((c) => c.id);

      // 3. One wave per target, in the operator's order: attach, read back, then detach the versions it
      //    replaces there; a soak before each later wave.
      const stages: Stage[] = [{ name: 'policy', description: 'enable SCPs on the root if needed, create the policy if needed', concurrency: 1 }];
      for (const target of targets) {
        const on = attached[target.id] ?? [];
        const targetFields = { target: target.id, targetKind: target.kind, targetName: target.name };
        const stage = `wave-${stages.length}/${target.id}`;
        const waveChanges: Change[] = [];
        const alreadyOn = on.some((p) => p.name === choice.name);
        const attachId = `attach-policy/${target.id}`;
        if (!alreadyOn) {
          waveChanges.push({
            id: attachId,
            stage,
            action: 'attach-policy',
            resource: target.arn,
            summary: `attach ${choice.name} to ${describeTarget(target)} and read it back from both sides; detached on rollback`,
            before: { ...targetFields, attached: on.map((p) => p.name) },
            after: { ...targetFields, policy: choice.name, contentSha256, attached: [...on.map((p) => p.name), choice.name] },
            reversible: true,
            destructive: false,
            ...(policyDeps.length > 0 ? { dependsOn: policyDeps } : {}),
          });
        }
        for (const old of on.filter((p) => choice.superseded.some((s) => s.id === p.id) && !neverDetached(p))) {
          waveChanges.push({
            id: `detach-policy/${target.id}/${old.name}`,
            stage,
            action: 'detach-superseded-policy',
            resource: target.arn,
            summary: `detach ${old.name} (${old.id}) from ${describeTarget(target)}, now that ${choice.name} replaces it there; re-attached on rollback`,
            before: { ...targetFields, policy: old.name, policyId: old.id, attached: true },
            after: { ...targetFields, policy: old.name, policyId: old.id, attached: false, replacedBy: choice.name },
            reversible: true,
            destructive: false,
            ...(alreadyOn ? {} : { dependsOn: [attachId] }),
          });
        }
        if (waveChanges.length === 0) {
          leftAlone.push({ resource: target.arn, reason: 'already-compliant', detail: `${choice.name} is already attached to ${describeTarget(target)}` });
          continue;
        }
        const firstWave = stages.length === 1;
        stages.push({
          name: stage,
          description: `${describeTarget(target)}: attach ${choice.name}${waveChanges.length > 1 ? ', detach the version(s) it replaces' : ''}`,
          ...(firstWave ? {} : { soakBefore: params.soak }),
          // AWS refuses concurrent changes to one target (ConcurrentModificationException).
          concurrency: 1,
        });
        changes.push(...waveChanges);
        if (target.kind === 'root') notes.push(`${describeTarget(target)} is the organization root: ${choice.name} restricts every member account from that wave on (allowRoot=true)`);
        if (target.id === account) notes.push(`${describeTarget(target)} is the management account, which SCPs never restrict: the attachment has no effect there`);
      }
      if (aws.settings.emulator) notes.push(`AWS is the ${aws.settings.emulator} emulator at ${aws.settings.endpoint ?? 'the default endpoint'}: it never enforces SCPs, nor their limits`);

      log.info('planned SCP rollout', { workflowId: request.workflowId, account, policy: choice.name, changes: changes.length, waves: stages.length - 1 });
      return {
        createdAt: now().toISOString(),
        stages,
        changes,
        leftAlone,
        notes: [...notes, `watch each soak for AccessDenied errors whose message cites "an explicit deny in a service control policy"; controls: ${KINDS.scp.controls.join(', ')}`],
      };
    },

    async enableScpPolicyType(request: ChangeRequest): Promise<ChangeOutcome> {
      const orgs = await orgsOf(request);
      let root: RootFacts = await readRoot(orgs);
      if (root.scpStatus === 'ENABLED') return { status: 'already-done', detail: `SCPs were already enabled on ${root.id}` };
      if (root.scpStatus === 'PENDING_DISABLE') throw precondition('PolicyTypeBeingDisabled', `SCPs are being disabled on ${root.id} (PENDING_DISABLE); not re-enabled under it — run again once that has finished`);
      if (root.scpStatus === 'NOT_ENABLED') {
        try {
          await orgs.send(new EnablePolicyTypeCommand({ RootId: root.id, PolicyType: SCP_TYPE }));
          log.info('enabled the SCP policy type', { workflowId: request.workflowId, change: request.change.id, root: root.id });
        } catch (err) {
          if (isAwsError(err, 'PolicyTypeNotAvailableForOrganizationException')) throw precondition('PolicyTypeNotAvailable', 'the organization has only consolidated-billing features, which have no SCPs; enable all features first');
          if (!isAwsError(err, 'PolicyTypeAlreadyEnabledException')) throw err;
        }
      }
      for (let poll = 0; poll < POLICY_TYPE_POLLS; poll++) {
        root = await readRoot(orgs);
        keepAlive({ root: root.id, scpPolicyType: root.scpStatus, poll });
        if (root.scpStatus === 'ENABLED') return { status: 'applied', detail: `SCPs are ENABLED on ${root.id}${poll > 0 ? ` (after ${poll} read(s) of PENDING_ENABLE)` : ''}`, observed: { pendingReads: poll } };
        if (root.scpStatus !== 'PENDING_ENABLE') break;
        await sleep(pollDelayMs(poll));
      }
      throw ApplicationFailure.create({ type: 'PolicyTypeNotYetEnabled', nonRetryable: false, message: `SCPs are still ${root.scpStatus} on ${root.id} after ${POLICY_TYPE_POLLS} reads; retried` });
    },

    async createScp(request: ChangeRequest): Promise<ChangeOutcome> {
      const { change, workflowId } = request;
      const name = text(change, 'after', 'policy');
      const digest = text(change, 'after', 'contentSha256');
      const document = side(change, 'after').content;
      if (!document || typeof document !== 'object') throw invalidPlan(change, 'has no policy content');
      const content = minifiedScp(document);
      if (scpContentSha256(content) !== digest) throw invalidPlan(change, 'carries content that does not match its digest');
      const orgs = await orgsOf(request);
      /** A policy of this name already there: ours from an earlier attempt, one to adopt, or one to leave alone. */
      const adoptOrRefuse = async (existing: PolicyRef): Promise<ChangeOutcome> => {
        const live = await policyContent(orgs, existing.id);
        if (live === undefined || scpContentSha256(live) !== digest) {
          return { status: 'left-alone', detail: `left alone: a policy named ${name} (${existing.id}) appeared after approval with other content; run again to plan a new version beside it` };
        }
        const createdByThisRun = await policyCreatedBy(orgs, existing.id, workflowId);
        return {
          status: 'already-done',
          detail: createdByThisRun ? `created by an earlier attempt of this run (${existing.id})` : `a policy ${name} with this content appeared after approval (${existing.id}): adopted, and kept on rollback`,
          observed: { policyId: existing.id, policyArn: existing.arn, createdByThisRun },
        };
      };
      const existing = await findScpByName(orgs, name);
      if (existing) return adoptOrRefuse(existing);
      let created;
      try {
        created = await orgs.send(
          new CreatePolicyCommand({ Name: name, Description: text(change, 'after', 'description'), Type: SCP_TYPE, Content: content, Tags: [{ Key: CREATED_BY_TAG, Value: workflowId }] }),
        );
      } catch (err) {
        // Created in between (or by an attempt whose answer was lost): compare, as for one found first.
        if (isAwsError(err, 'DuplicatePolicyException')) {
          const found = await findScpByName(orgs, name);
          if (found) return adoptOrRefuse(found);
        }
        if (isAwsError(err, 'ConstraintViolationException')) {
          throw precondition(`AWS.ConstraintViolationException`, `AWS refused to create ${name}: ${reasonOf(err) ?? 'constraint violation'} (${(err as Error).message}); POLICY_CONTENT_LIMIT_EXCEEDED means over 5,120 characters, POLICY_NUMBER_LIMIT_EXCEEDED the organization's quota of SCPs`);
        }
        throw err;
      }
      const summary = created.Policy?.PolicySummary;
      if (!summary?.Id) throw ApplicationFailure.create({ type: 'PolicyNotCreated', message: `CreatePolicy for ${name} answered without a policy id` });
      log.info('created SCP', { workflowId, change: change.id, policy: summary.Id });
      return { status: 'applied', detail: `created ${name} (${summary.Id})`, observed: { policyId: summary.Id, policyArn: summary.Arn ?? '', createdByThisRun: true } };
    },

    async deleteCreatedScp(request: RollbackRequest): Promise<ChangeOutcome> {
      const { change, workflowId } = request;
      const name = text(change, 'after', 'policy');
      const observed = observedOf(request.result);
      if (observed.createdByThisRun !== true) return { status: 'left-alone', detail: `${name} existed before this run; kept` };
      const orgs = await orgsOf(request);
      const existing = await findScpByName(orgs, name);
      if (!existing) return { status: 'already-done', detail: `${name} is already gone` };
      if (existing.id !== observed.policyId && !(await policyCreatedBy(orgs, existing.id, workflowId))) return { status: 'left-alone', detail: `${name} is now another policy (${existing.id}); kept` };
      const still = await targetsOfPolicy(orgs, existing.id);
      if (still.length > 0) return { status: 'left-alone', detail: `${name} is still attached to ${still.join(', ')}; kept — detach it there first if it is not wanted` };
      try {
        await orgs.send(new DeletePolicyCommand({ PolicyId: existing.id }));
      } catch (err) {
        if (isAwsError(err, 'PolicyNotFoundException')) return { status: 'already-done', detail: `${name} is already gone` };
        if (isAwsError(err, 'PolicyInUseException')) return { status: 'left-alone', detail: `${name} was attached somewhere just now; kept` };
        throw err;
      }
      log.info('deleted the SCP this run created', { workflowId, change: change.id, policy: existing.id });
      return { status: 'applied', detail: `deleted ${name} (${existing.id}), which this run created and which is attached nowhere` };
    },

    async attachScp(request: ChangeRequest): Promise<ChangeOutcome> {
      const { change, workflowId } = request;
      const target = targetOf(change);
      const orgs = await orgsOf(request);
      const { policy, why } = await approvedPolicy(orgs, change);
      if (!policy) return { status: 'left-alone', detail: `left alone: ${why}` };
      // Found attached on a retry: an earlier attempt attached it and its answer was lost, so it is
      // this run's to undo. Found on the first attempt: someone attached it after approval; kept.
      const found = (): ChangeOutcome => {
        const attachedByThisRun = currentAttempt() > 1;
        return {
          status: 'already-done',
          detail: attachedByThisRun ? `attached by an earlier attempt of this change` : `${policy.name} was attached to ${describeTarget(target)} after approval; kept on rollback`,
          observed: { policyId: policy.id, attachedByThisRun },
        };
      };
      let on: PolicyRef[];
      try {
        on = await scpsOnTarget(orgs, target.id);
      } catch (err) {
        if (isAwsError(err, 'TargetNotFoundException', 'OrganizationalUnitNotFoundException', 'AccountNotFoundException')) return { status: 'left-alone', detail: `left alone: ${describeTarget(target)} no longer exists` };
        throw err;
      }
      if (on.some((p) => p.id === policy.id)) return found();
      if (on.length + 1 > MAX_SCPS_PER_TARGET) {
        throw precondition('MaxPoliciesOnTarget', `${describeTarget(target)} has ${on.length} SCPs attached now (${on.map((p) => p.name).join(', ')}); AWS allows ${MAX_SCPS_PER_TARGET}, so ${policy.name} cannot be attached — detach or merge one, then run again`);
      }
      try {
        await orgs.send(new AttachPolicyCommand({ PolicyId: policy.id, TargetId: target.id }));
      } catch (err) {
        if (isAwsError(err, 'DuplicatePolicyAttachmentException')) return found();
        if (isAwsError(err, 'PolicyTypeNotEnabledException')) throw await policyTypeNotEnabled(orgs, change);
        if (isAwsError(err, 'ConstraintViolationException') && reasonOf(err) === 'MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED') {
          throw precondition('MaxPoliciesOnTarget', `AWS refused to attach ${policy.name} to ${describeTarget(target)}: it already holds ${MAX_SCPS_PER_TARGET} SCPs (MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED); detach or merge one, then run again`);
        }
        throw err;
      }
      log.info('attached SCP', { workflowId, change: change.id, policy: policy.id, target: target.id });
      // Read back from both sides before the wave counts as done (and before any soak starts).
      const listed = (await scpsOnTarget(orgs, target.id)).some((p) => p.id === policy.id) && (await targetsOfPolicy(orgs, policy.id)).includes(target.id);
      if (!listed) throw ApplicationFailure.create({ type: 'AttachmentNotVisible', nonRetryable: false, message: `AttachPolicy answered success but ${policy.name} is not yet listed on ${target.id}; read again` });
      return { status: 'applied', detail: `attached ${policy.name} (${policy.id}) to ${describeTarget(target)}; listed by ListPoliciesForTarget and ListTargetsForPolicy`, observed: { policyId: policy.id, attachedByThisRun: true } };
    },

    async detachAttachedScp(request: RollbackRequest): Promise<ChangeOutcome> {
      const { change, workflowId } = request;
      const target = targetOf(change);
      const observed = observedOf(request.result);
      const policyId = observed.policyId;
      if (observed.attachedByThisRun !== true || typeof policyId !== 'string') return { status: 'left-alone', detail: 'the policy was attached before this change ran; kept' };
      if (neverDetached({ id: policyId })) return { status: 'left-alone', detail: `${policyId} is FullAWSAccess, which this kind never detaches` };
      const orgs = await orgsOf(request);
      const on = await scpsOnTarget(orgs, target.id);
      const ours = on.find((p) => p.id === policyId);
      if (!ours) return { status: 'already-done', detail: `${policyId} is no longer attached to ${describeTarget(target)}` };
      if (neverDetached(ours)) return { status: 'left-alone', detail: `${ours.name} is AWS-managed, which this kind never detaches` };
      // AWS keeps at least one SCP on every target (docs/aws.md §3.2): detaching the only one is refused.
      if (on.length <= 1) return { status: 'left-alone', detail: `${ours.name} is the only SCP on ${describeTarget(target)} (FullAWSAccess was detached since); AWS refuses to leave a target without one — attach FullAWSAccess there, then detach it by hand` };
      try {
        await orgs.send(new DetachPolicyCommand({ PolicyId: policyId, TargetId: target.id }));
      } catch (err) {
        if (isAwsError(err, 'PolicyNotAttachedException')) return { status: 'already-done', detail: `${ours.name} was already detached from ${describeTarget(target)}` };
        if (isAwsError(err, 'ConstraintViolationException') && reasonOf(err) === 'MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED') {
          return { status: 'left-alone', detail: `AWS refused: ${ours.name} is the last SCP on ${describeTarget(target)} (MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED); attach FullAWSAccess there, then detach it by hand` };
        }
        throw err;
      }
      log.info('detached the SCP this run attached', { workflowId, change: change.id, policy: policyId, target: target.id });
      return { status: 'applied', detail: `detached ${ours.name} from ${describeTarget(target)}` };
    },

    async detachSupersededScp(request: ChangeRequest): Promise<ChangeOutcome> {
      const { change, workflowId } = request;
      const target = targetOf(change);
      const oldId = text(change, 'before', 'policyId');
      const oldName = text(change, 'before', 'policy');
      const newName = text(change, 'after', 'replacedBy');
      if (neverDetached({ id: oldId })) return { status: 'left-alone', detail: `${oldId} is FullAWSAccess, which this kind never detaches` };
      const orgs = await orgsOf(request);
      const on = await scpsOnTarget(orgs, target.id);
      const old = on.find((p) => p.id === oldId);
      if (!old) return { status: 'already-done', detail: `${oldName} was no longer attached to ${describeTarget(target)}; nothing to re-attach on rollback`, observed: { detachedByThisRun: currentAttempt() > 1 } };
      if (neverDetached(old)) return { status: 'left-alone', detail: `${old.name} is AWS-managed, which this kind never detaches` };
      // The old version comes off only while the new one is on: the target is never without either.
      if (!on.some((p) => p.name === newName)) return { status: 'left-alone', detail: `left alone: ${newName} is not attached to ${describeTarget(target)}, so ${oldName} stays` };
      try {
        await orgs.send(new DetachPolicyCommand({ PolicyId: oldId, TargetId: target.id }));
      } catch (err) {
        if (isAwsError(err, 'PolicyNotAttachedException')) return { status: 'already-done', detail: `${oldName} was already detached`, observed: { detachedByThisRun: currentAttempt() > 1 } };
        throw err;
      }
      log.info('detached the superseded SCP', { workflowId, change: change.id, policy: oldId, target: target.id });
      return { status: 'applied', detail: `detached ${oldName} (${oldId}) from ${describeTarget(target)}; ${newName} replaces it`, observed: { detachedByThisRun: true } };
    },

    async reattachSupersededScp(request: RollbackRequest): Promise<ChangeOutcome> {
      const { change, workflowId } = request;
      const target = targetOf(change);
      const oldId = text(change, 'before', 'policyId');
      const oldName = text(change, 'before', 'policy');
      if (observedOf(request.result).detachedByThisRun !== true) return { status: 'left-alone', detail: `${oldName} was not detached by this run; not re-attached` };
      const orgs = await orgsOf(request);
      if ((await policyContent(orgs, oldId)) === undefined) return { status: 'left-alone', detail: `${oldName} (${oldId}) was deleted since; it cannot be re-attached` };
      const on = await scpsOnTarget(orgs, target.id);
      if (on.some((p) => p.id === oldId)) return { status: 'already-done', detail: `${oldName} is attached to ${describeTarget(target)} again` };
      if (on.length + 1 > MAX_SCPS_PER_TARGET) return { status: 'left-alone', detail: `${describeTarget(target)} holds ${on.length} SCPs now; AWS allows ${MAX_SCPS_PER_TARGET}, so ${oldName} cannot be re-attached — make room, then attach it by hand` };
      try {
        await orgs.send(new AttachPolicyCommand({ PolicyId: oldId, TargetId: target.id }));
      } catch (err) {
        if (isAwsError(err, 'DuplicatePolicyAttachmentException')) return { status: 'already-done', detail: `${oldName} is attached to ${describeTarget(target)} again` };
        throw err;
      }
      log.info('re-attached the superseded SCP', { workflowId, change: change.id, policy: oldId, target: target.id });
      return { status: 'applied', detail: `re-attached ${oldName} (${oldId}) to ${describeTarget(target)}` };
    },

    async verifyScp(request: VerifyRequest): Promise<VerifyResult> {
      const orgs = await orgsOf(request);
      const checks: VerifyCheck[] = [];
      for (const { change, result } of request.applied) {
        keepAlive({ verifying: change.id });
        checks.push({ changeId: change.id, ...(await verifyChange(orgs, change, observedOf(result))) });
      }
      return { ok: checks.every((c) => c.ok), checks };
    },
  };
}

/** Whether what the change promised holds now. */
async function verifyChange(orgs: OrganizationsClient, change: Change, observed: JsonObject): Promise<{ ok: boolean; detail: string }> {
  switch (change.action) {
    case 'enable-policy-type': {
      const root = await readRoot(orgs);
      return { ok: root.scpStatus === 'ENABLED', detail: `SCPs are ${root.scpStatus} on ${root.id}` };
    }
    case 'create-policy': {
      const { policy, why } = await approvedPolicy(orgs, change);
      return policy ? { ok: true, detail: `${policy.name} (${policy.id}) exists with the approved content` } : { ok: false, detail: why ?? 'missing' };
    }
    case 'attach-policy': {
      const target = targetOf(change);
      const name = text(change, 'after', 'policy');
      const policyId = typeof observed.policyId === 'string' ? observed.policyId : (await findScpByName(orgs, name))?.id;
      if (!policyId) return { ok: false, detail: `${name} does not exist` };
      const onTarget = (await scpsOnTarget(orgs, target.id)).some((p) => p.id === policyId);
      const onPolicy = (await targetsOfPolicy(orgs, policyId)).includes(target.id);
      return { ok: onTarget && onPolicy, detail: onTarget && onPolicy ? `${name} is attached to ${describeTarget(target)}` : `${name} is not listed on ${describeTarget(target)} (ListPoliciesForTarget ${onTarget}, ListTargetsForPolicy ${onPolicy})` };
    }
    case 'detach-superseded-policy': {
      const target = targetOf(change);
      const oldId = text(change, 'before', 'policyId');
      const still = (await scpsOnTarget(orgs, target.id)).some((p) => p.id === oldId);
      return { ok: !still, detail: still ? `${text(change, 'before', 'policy')} is still attached to ${describeTarget(target)}` : `${text(change, 'before', 'policy')} is detached from ${describeTarget(target)}` };
    }
    default:
      return { ok: false, detail: `no check for action ${change.action}` };
  }
}
