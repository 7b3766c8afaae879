/**
 * Service control policy documents: the grammar and size AWS Organizations accepts, and which
 * document a run of the `scp` kind asks for. The emulator accepts any text as an SCP — broken JSON,
 * oversize documents (docs/aws.md §9) — so these checks are ours. They run at the edge (the catalogue
 * wires `scpDocumentProblem` into the `policyFile` parameter, and the CLI refuses with exit 2) and
 * again in the plan activity, before anything is created.
 *
 * Pure: imported by the catalogue, the CLI and activities alike.
 */
import type { GuardrailName } from './guardrails';
import { guardrailDocument, isGuardrailName } from './guardrails';
import type { Json, JsonObject } from './json';

/** AWS counts every character of the stored document, whitespace included (docs/aws.md §3.2). */
export const SCP_MAX_CHARS = 5_120;
export const SCP_VERSION = '2012-10-17';

const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);

const BASE_OPERATORS = new Set([
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'NumericEquals',
  'NumericNotEquals',
  'NumericLessThan',
  'NumericLessThanEquals',
  'NumericGreaterThan',
  'NumericGreaterThanEquals',
  'DateEquals',
  'DateNotEquals',
  'DateLessThan',
  'DateLessThanEquals',
  'DateGreaterThan',
  'DateGreaterThanEquals',
  'Bool',
  'BinaryEquals',
  'IpAddress',
  'NotIpAddress',
  'ArnEquals',
  'ArnLike',
  'ArnNotEquals',
  'ArnNotLike',
  'Null',
]);

/** A condition operator IAM knows: a base name, optionally `ForAllValues:`/`ForAnyValue:` before and `IfExists` after (never on Null). */
export function isConditionOperator(name: string): boolean {
  const unqualified = name.replace(/^(ForAllValues|ForAnyValue):/, '');
  if (BASE_OPERATORS.has(unqualified)) return true;
  const base = unqualified.replace(/IfExists$/, '');
  return base !== unqualified && base !== 'Null' && BASE_OPERATORS.has(base);
}

const ACTION = /^(\*|[A-Za-z0-9-]+:[A-Za-z0-9*?]+)$/;
const RESOURCE = /^(\*|arn:\S+)$/;
const SID = /^[A-Za-z0-9]*$/;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const describe = (v: unknown): string => (v === undefined ? 'nothing' : Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : JSON.stringify(v));

/** A string or a non-empty array of strings, each matching `shape`; the first reason it is not. */
function stringListProblem(where: string, value: Json | undefined, shape: RegExp, expected: string): string | undefined {
  const items = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
  if (!items) return `${where} must be a string or an array of strings (got ${describe(value)})`;
  if (items.length === 0) return `${where} is an empty array`;
  for (const item of items) {
    if (typeof item !== 'string') return `${where} holds ${describe(item)}, not a string`;
    if (!shape.test(item)) return `${where} holds ${JSON.stringify(item)}, which is not ${expected}`;
  }
  return undefined;
}

function conditionProblem(where: string, condition: Json): string | undefined {
  if (!isObject(condition)) return `${where} must be an object of condition operators (got ${describe(condition)})`;
  const operators = Object.entries(condition);
  if (operators.length === 0) return `${where} is empty`;
  for (const [operator, block] of operators) {
    if (!isConditionOperator(operator)) return `${where} uses ${JSON.stringify(operator)}, which is no IAM condition operator (StringEquals, ArnNotLike, Bool, …, with optional ForAnyValue:/ForAllValues: and IfExists)`;
    if (!isObject(block) || Object.keys(block).length === 0) return `${where}.${operator} must be a non-empty object of condition keys to values`;
    for (const [key, values] of Object.entries(block)) {
      if (!key.trim()) return `${where}.${operator} has an empty condition key`;
      const items = Array.isArray(values) ? values : [values];
      if (items.length === 0) return `${where}.${operator}["${key}"] is an empty array`;
      if (items.some((v) => typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')) {
        return `${where}.${operator}["${key}"] must be a string, number or boolean, or an array of them`;
      }
    }
  }
  return undefined;
}

function statementProblem(where: string, statement: Json): string | undefined {
  if (!isObject(statement)) return `${where} must be an object (got ${describe(statement)})`;
  if ('Principal' in statement || 'NotPrincipal' in statement) return `${where} has a ${'Principal' in statement ? 'Principal' : 'NotPrincipal'}: an SCP applies to every principal of the accounts it is attached to, so it takes none`;
  const unknown = Object.keys(statement).find((k) => !STATEMENT_KEYS.has(k));
  if (unknown !== undefined) return `${where} has the element ${JSON.stringify(unknown)}, which an SCP statement does not take (Sid, Effect, Action or NotAction, Resource or NotResource, Condition)`;
  const { Sid, Effect, Action, NotAction, Resource, NotResource, Condition } = statement;
  if (Sid !== undefined && (typeof Sid !== 'string' || !SID.test(Sid))) return `${where}.Sid must be letters and digits only (got ${describe(Sid)})`;
  if (Effect !== 'Allow' && Effect !== 'Deny') return `${where}.Effect must be "Allow" or "Deny" (got ${describe(Effect)})`;
  if (Action !== undefined && NotAction !== undefined) return `${where} has both Action and NotAction; give one`;
  if (Action === undefined && NotAction === undefined) return `${where} has neither Action nor NotAction; give one`;
  const actionKey = Action !== undefined ? 'Action' : 'NotAction';
  const actions = stringListProblem(`${where}.${actionKey}`, Action ?? NotAction, ACTION, 'an action such as s3:PutObject, s3:Get* or *');
  if (actions) return actions;
  if (Resource !== undefined && NotResource !== undefined) return `${where} has both Resource and NotResource; give at most one`;
  if (Resource !== undefined || NotResource !== undefined) {
    const resourceKey = Resource !== undefined ? 'Resource' : 'NotResource';
    const resources = stringListProblem(`${where}.${resourceKey}`, Resource ?? NotResource, RESOURCE, 'an ARN or *');
    if (resources) return resources;
  }
  if (Condition !== undefined) return conditionProblem(`${where}.Condition`, Condition);
  return undefined;
}

/** Every reason `doc` is not an SCP AWS accepts: grammar first, then size. Empty when it is fine. */
export function scpDocumentProblems(doc: Json): string[] {
  if (!isObject(doc)) return [`an SCP is a JSON object (got ${describe(doc)})`];
  const problems: string[] = [];
  const unknown = Object.keys(doc).filter((k) => k !== 'Version' && k !== 'Statement');
  if (unknown.length > 0) problems.push(`the document has ${unknown.map((k) => JSON.stringify(k)).join(', ')}; an SCP has only Version and Statement`);
  if (doc.Version !== SCP_VERSION) problems.push(`Version must be "${SCP_VERSION}" (got ${describe(doc.Version)})`);
  const statement = doc.Statement;
  if (statement === undefined) problems.push('the document has no Statement');
  else if (Array.isArray(statement)) {
    if (statement.length === 0) problems.push('Statement is an empty array');
    const sids = new Set<string>();
    statement.forEach((s, i) => {
      const problem = statementProblem(`Statement[${i}]`, s);
      if (problem) problems.push(problem);
      const sid = isObject(s) && typeof s.Sid === 'string' && s.Sid !== '' ? s.Sid : undefined;
      if (sid !== undefined && sids.has(sid)) problems.push(`Statement[${i}].Sid ${sid} is used twice; each statement's Sid is unique`);
      if (sid !== undefined) sids.add(sid);
    });
  } else {
    const problem = statementProblem('Statement', statement);
    if (problem) problems.push(problem);
  }
  const size = minifiedScp(doc).length;
  if (size > SCP_MAX_CHARS) problems.push(`the document is ${size.toLocaleString('en-US')} characters minified, over AWS's limit of ${SCP_MAX_CHARS.toLocaleString('en-US')} for an SCP`);
  return problems;
}

/**
 * The catalogue's `check` for the policyFile parameter: the first reason, as the rest of
 * "policyFile …" (ParamError prefixes the parameter's name), or undefined when the document is fine.
 */
export function scpDocumentProblem(doc: Json): string | undefined {
  const [first] = scpDocumentProblems(doc);
  return first === undefined ? undefined : `is not a valid SCP: ${first}`;
}

/** The text sent to CreatePolicy: no whitespace outside strings, every character counting towards the limit. */
export function minifiedScp(doc: Json): string {
  return JSON.stringify(doc);
}

/** Canonical JSON (keys sorted), so two spellings of one document compare equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The canonical form of a policy's content as AWS returns it; unparseable text stays as it is. */
export function canonicalScpContent(content: string): string {
  try {
    return canonical(JSON.parse(content));
  } catch {
    return content;
  }
}

/** True when two SCP contents are the same document, whatever their whitespace and key order. */
export function sameScpContent(a: string, b: string): boolean {
  return canonicalScpContent(a) === canonicalScpContent(b);
}

// --- which policy a run of `scp` asks for ---

/** The `scp` kind's parameters, as typed by the catalogue (optional ones absent when not given). */
export interface ScpParams {
  guardrail?: string;
  policyFile?: Json;
  name?: string;
  targets: readonly string[];
  exemptPrincipals: readonly string[];
  allowRoot: boolean;
}

export interface ScpSelection {
  /** The built-in guardrail, or undefined for the operator's document. */
  guardrail?: GuardrailName;
  /** The policy's name (before any `-v<N>` a changed content gets). */
  policyName: string;
  document: JsonObject;
  /** The minified document: what CreatePolicy receives. */
  content: string;
  description: string;
}

export const ROOT_ID = /^r-[0-9a-z]{4,32}$/;

/**
 * Which document the run asks for, or every reason the parameters do not make one: exactly one of
 * guardrail and policyFile; a name with a file; exemptions only with a built-in; the SCP grammar and
 * size (a built-in included, once its exemptions are written in); the root only with allowRoot.
 */
export function selectScp(params: ScpParams): { selection?: ScpSelection; problems: string[] } {
  const problems: string[] = [];
  const { guardrail, policyFile, name } = params;
  if (guardrail !== undefined && policyFile !== undefined) problems.push('give guardrail or policyFile, not both');
  if (guardrail === undefined && policyFile === undefined) problems.push('give guardrail=<built-in> or policyFile=<file>: the policy to attach');
  if (guardrail !== undefined && !isGuardrailName(guardrail)) problems.push(`guardrail ${JSON.stringify(guardrail)} is not a built-in guardrail`);
  if (policyFile !== undefined && name === undefined) problems.push('policyFile needs name=<policy name>: a run finds the policy it created (or one to version) by its name');
  if (policyFile !== undefined && params.exemptPrincipals.length > 0) problems.push('exemptPrincipals is written into the built-in guardrails only; write the exemption into your document (ArnNotLike aws:PrincipalArn)');
  const roots = params.targets.filter((t) => ROOT_ID.test(t));
  if (roots.length > 0 && !params.allowRoot) {
    problems.push(`${roots.join(', ')} is the organization root: attaching there restricts every member account at once; pass allowRoot=true to mean it, or list OUs and accounts`);
  }
  if (problems.length > 0) return { problems };

  const document = guardrail !== undefined ? guardrailDocument(guardrail as GuardrailName, params.exemptPrincipals) : (policyFile as JsonObject);
  const documentProblems = scpDocumentProblems(document);
  if (documentProblems.length > 0) {
    const what = guardrail !== undefined ? `the built-in guardrail ${guardrail}${params.exemptPrincipals.length > 0 ? ` with ${params.exemptPrincipals.length} exemption(s)` : ''}` : 'policyFile';
    return { problems: documentProblems.map((p) => `${what} is not a valid SCP: ${p}`) };
  }
  const policyName = name ?? `countersign-${guardrail as string}`;
  return {
    problems: [],
    selection: {
      ...(guardrail !== undefined ? { guardrail: guardrail as GuardrailName } : {}),
      policyName,
      document,
      content: minifiedScp(document),
      description: guardrail !== undefined ? `Countersign built-in guardrail ${guardrail}` : 'Countersign: service control policy from an operator-supplied document',
    },
  };
}
