/** --help text: what each command does, with examples, so the CLI teaches its own use. */
import type { KindName } from '../common/kinds';
import { kindNames, kindSpec } from '../common/kinds';

/** One kind's parameters, from their declarations (common/kinds.ts): the help cannot drift from the checks. */
export function kindParamsHelp(kind: KindName, indent = '      '): string {
  return Object.entries(kindSpec(kind).params)
    .map(([name, p]) => {
      const when = p.default !== undefined ? `default ${p.default || 'none'}` : p.optional ? 'optional' : 'required';
      const file = p.fromFile ? '; give a path, the CLI reads the file' : '';
      return `${indent}${`${name}=${p.label}`.padEnd(22)} ${p.description} (${when}${file})`;
    })
    .join('\n');
}

function kindsHelp(): string {
  return kindNames()
    .map((name) => {
      const k = kindSpec(name);
      const where = k.scope === 'management' ? 'runs in the management account' : 'runs in any account of the organization (--account)';
      return `  ${name.padEnd(18)} ${k.summary}\n    controls ${k.controls.join(', ')}; ${where}; parameters:\n${kindParamsHelp(name)}`;
    })
    .join('\n');
}

/** `countersign start <kind> --help`: that kind alone, with an example. */
export function kindHelp(kind: KindName): string {
  const k = kindSpec(kind);
  const example = Object.entries(k.params)
    .filter(([, p]) => p.default === undefined && !p.optional)
    .map(([name, p]) => ` --param ${name}=${p.label}`)
    .join('');
  return `countersign start ${kind} [--param key=value]... [--account ID] [--dry-run]

${k.summary}
Controls: ${k.controls.join(', ')}. Workflow type: ${k.workflowType}.
Parameters:
${kindParamsHelp(kind, '  ')}

Example:
  countersign start ${kind}${example} --dry-run`;
}

export const COMMAND_HELP: Record<string, string> = {
  main: `countersign — approval-gated AWS remediations for SOC 2, run as Temporal workflows.
Every remediation discovers live state, plans exact changes, waits for an authorised approver to
approve that plan's digest, applies it with soaks and drift re-checks, verifies, and leaves the
workflow history as the change evidence.

Usage: countersign <command> [options]

Try it:
  countersign demo                      everything on this machine: Temporal dev server, AWS sandbox
                                        (moto), a worker, a seeded estate, a remediation end to end

Operate:
  countersign worker                    run a worker for TEMPORAL_ADDRESS (task queue COUNTERSIGN_TASK_QUEUE)
  countersign dev                       the embedded stack until Ctrl-C (prints the environment to use it)
  countersign start <kind> [options]    plan a remediation and wait for approval (prints the workflow id)
  countersign status <workflowId> [--run-id R]   phase, plan, decisions, refusals, progress, outcome (--watch follows it)
  countersign list [--kind K] [--phase P] [--account A] [--outcome O] [--requested-by WHO]
  countersign approve <workflowId> --as WHO --plan DIGEST [--comment TEXT] [--sign [--profile P]]
  countersign reject <workflowId> --as WHO [--comment TEXT] [--sign [--profile P]]
  countersign evidence <workflowId> [--run-id R] [--format json|md] [--out PATH]

Every command takes --json (one JSON document on stdout; logs on stderr) and --help;
countersign --version prints the version.
Exit codes: 0 success, 2 bad input (nothing was started or changed), 1 any other failure
(a refused decision included).

Remediations (kinds):
${kindsHelp()}

Environment:
  TEMPORAL_ADDRESS (127.0.0.1:7233), TEMPORAL_NAMESPACE (default), TEMPORAL_API_KEY, TLS and profiles
  exactly as the temporal CLI reads them; COUNTERSIGN_TASK_QUEUE (countersign); COUNTERSIGN_POLICY
  (approval policy file, read by the worker); AWS: the SDK's default credentials and region;
  AWS_ENDPOINT_URL to point at an emulator.`,
  start: `countersign start <kind> [--param key=value]... [--params FILE] [--account ID] [--dry-run]
                  [--as WHO] [--id-suffix S] [--no-wait] [--json]

Starts a remediation. It plans against live AWS state and waits for approval; the plan, its digest
and the approve command are printed once the plan is ready (unless --no-wait).
  --param key=value   a parameter of the kind (repeatable); see \`countersign --help\` for each kind's
  --params FILE       parameters from a JSON object file ({"maxIdle": "90d"}); --param wins
  --account ID        the target account: any account of your organization, reached by the worker
                      through a role it assumes there (default: the account of your AWS credentials).
                      An id that is not 12 digits, or not in the organization, is refused (exit 2).
  --dry-run           plan only: the run ends "planned" and nothing can be approved or changed
  --as WHO            who is requesting (default: $COUNTERSIGN_USER or your login); they cannot approve
  --id-suffix S       run a separate scope concurrently: workflow id <kind>/<account>/<S>
One remediation of a kind per account runs at a time: a second start fails and names the running one.
\`countersign start <kind> --help\` shows that kind's parameters.

Example:
  countersign start stale-iam-users --param maxIdle=90d --param soak=14d --param exempt=ci-bot,backup`,
  status: `countersign status <workflowId> [--run-id R] [--watch] [--json]
Shows the phase, the plan (with its digest), decisions and refusals with their reasons, the current
stage or soak, progress per change, verification and outcome, and the run id. Works on finished runs too.
  --run-id R   that run of the workflow id (an id is reused once its run has ended; \`countersign list\`
               shows every run with its run id); default: the latest run
  --watch   follow the run until it ends, printing each phase and change result as it happens and the
            time left of a soak or approval window; exits 0 when it ends completed, no-op or planned,
            1 otherwise`,
  approve: `countersign approve <workflowId> [--as WHO] --plan DIGEST [--sign] [--profile P] [--comment TEXT] [--json]
Approves the plan with that digest. The digest must be the one shown by \`countersign status\`:
a decision on any other plan is refused. Sent as the workflow's \`decide\` update, which answers at
once whether the decision was accepted; a refusal (requester approving their own run, approver not in the policy, wrong digest,
expired, duplicate, missing or invalid proof of identity) prints its reason and exits 1.
  --sign       prove who you are: sign (never send) an sts:GetCallerIdentity request with your own AWS
               credentials (the SDK's default chain), bound to this run and plan; the worker has STS
               verify it and the ARN STS answers is the approver. Automatic when the run's policy has
               "identity": "aws-sts"; --as is then optional (the verified ARN is recorded)
  --profile P  sign with that AWS shared-config profile (implies --sign)`,
  reject: `countersign reject <workflowId> [--as WHO] [--comment TEXT] [--plan DIGEST] [--sign] [--profile P] [--json]
Rejects the plan awaiting approval (the run ends "rejected", nothing changes), or halts a run during
a soak or apply (reversible changes are rolled back; the run ends "rolled-back"). Approvers and the
requester may reject. --plan defaults to the current plan's digest. --sign and --profile prove your
AWS identity as for approve (automatic when the policy requires it).`,
  list: `countersign list [--kind K] [--phase P] [--account A] [--outcome O] [--requested-by WHO]
                 [--limit N] [--json]
Lists remediations, running and finished — every run, with its run id — newest first, with their
phase and outcome. The filters are evaluated by the Temporal server on Countersign's search attributes
(registered by \`countersign dev\`; on a cluster, see README "Running it for real"); a namespace without
them is filtered client-side, with a note. Runs started before the attributes existed match --kind only.
  --kind K            a kind (see \`countersign --help\`)
  --phase P           starting, planning, awaiting-approval, applying, soaking, verifying, rolling-back, done
  --account A         the target account (12 digits)
  --outcome O         completed, no-op, planned, rejected, expired, failed, rolled-back, cancelled
  --requested-by WHO  who started the run
  --limit N           at most N runs (default 100)`,
  evidence: `countersign evidence <workflowId> [--run-id R] [--format json|md] [--out PATH]
The change evidence from the workflow history: who requested, the policy in force, the plan and its
verified digest, every decision signal as received, refusals with reasons, each change's result with
the snapshot taken before destructive changes, verification and outcome. --out writes a file.
--run-id R takes that run of the workflow id (\`countersign list\` shows each run's id); default: the latest.`,
  worker: `countersign worker
Runs a worker on COUNTERSIGN_TASK_QUEUE for TEMPORAL_ADDRESS until SIGINT/SIGTERM. Reads
COUNTERSIGN_POLICY (the approval policy) and AWS credentials from the environment.`,
  dev: `countersign dev [--seed]
Starts the embedded stack — Temporal dev server with its Web UI, the moto AWS sandbox and a worker
with the demo approval policy — prints the environment to use it from another shell, and runs until
Ctrl-C. --seed creates the demo organization in the sandbox (its management account is the sandbox
credentials' account; member accounts in OUs Workloads and Sandbox) and each demo's estate, and prints
the member account ids with a \`countersign start <kind> --account ID\` to try on them.`,
  demo: `countersign demo [--kind K] [--keep] [--json]
Builds or finds what it needs, starts the embedded stack, and runs each kind's demo in turn: an
organization is seeded in the sandbox with an estate in a member account, and the run targets that
account through the role the worker assumes there (OrganizationAccountAccessRole). Each run shows the
plan, refused approvals (the requester; someone outside the policy), an approval by the demo
approver, its stages (for stale-iam-users: disable, soak, re-check, delete, verify), what AWS holds
afterwards in the member and the management account, and the evidence, naming the account and role
session acted through. Exits 0 when every run checks out.
  --kind K   run only that kind's demo (an unknown K is refused, listing the kinds that have one)
  --keep     leave the stack running afterwards and print the Temporal Web UI address to browse the history`,
};
