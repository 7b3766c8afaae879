/**
 * The custom search attributes every run carries, so `countersign list` filters on the server: the
 * client sets kind, account, requester and phase when it starts a run, and the engine
 * (workflows/lifecycle.ts) upserts the phase as it moves and the outcome when it ends.
 *
 * A Temporal server only accepts attributes registered on its namespace: the sandbox's dev server
 * registers them at start (sandbox/temporal.ts); on a real cluster, register them once per namespace
 * with `temporal operator search-attribute create` (README, "Running it for real").
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

/** The catalogue kind (`stale-iam-users`, …). */
export const KIND_ATTRIBUTE = defineSearchAttributeKey('CountersignKind', SearchAttributeType.KEYWORD);
/** The target account (12 digits). */
export const ACCOUNT_ATTRIBUTE = defineSearchAttributeKey('CountersignAccount', SearchAttributeType.KEYWORD);
/** The engine's phase (`planning`, `awaiting-approval`, …, `done`). */
export const PHASE_ATTRIBUTE = defineSearchAttributeKey('CountersignPhase', SearchAttributeType.KEYWORD);
/** The outcome, once the run is done (`completed`, `planned`, `rejected`, …). */
export const OUTCOME_ATTRIBUTE = defineSearchAttributeKey('CountersignOutcome', SearchAttributeType.KEYWORD);
/** Who started the run. */
export const REQUESTED_BY_ATTRIBUTE = defineSearchAttributeKey('CountersignRequestedBy', SearchAttributeType.KEYWORD);

export const COUNTERSIGN_SEARCH_ATTRIBUTES = [KIND_ATTRIBUTE, ACCOUNT_ATTRIBUTE, PHASE_ATTRIBUTE, OUTCOME_ATTRIBUTE, REQUESTED_BY_ATTRIBUTE] as const;

/** How the temporal CLI names an attribute type (`--search-attribute Name=Keyword`). */
const CLI_TYPE: Record<string, string> = { KEYWORD: 'Keyword' };

/** `Name=Keyword` for each attribute, as `temporal server start-dev --search-attribute` takes them. */
export function searchAttributeDevServerFlags(): string[] {
  return COUNTERSIGN_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=${CLI_TYPE[key.type]}`]);
}

/** A string literal of a visibility query (`CountersignRequestedBy = '…'`), quotes and backslashes escaped. */
export function queryLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
