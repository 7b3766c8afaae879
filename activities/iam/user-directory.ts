/**
 * The users of an account read in bulk: GetAccountAuthorizationDetails (Filter User) gives every user
 * with its tags, permissions boundary, groups, managed policies and inline policy documents; ListUsers
 * adds the console password's last use, which the former leaves out. Two paginated listings of up to
 * 1,000 users a page stand in for five reads per user (GetUser, ListGroupsForUser,
 * ListAttachedUserPolicies, ListUserPolicies, GetUserPolicy) when a batch snapshots or a plan page
 * assesses many users of one account: the same facts, read in the same activity just before they are
 * used, in a few calls instead of hundreds.
 *
 * The cost is in pages of the whole account, not in the users asked about, so a caller uses it only
 * for enough users (DIRECTORY_MIN_USERS): an account holds at most a few thousand IAM users (a quota
 * of 5,000 by default), ten pages at most, against five reads per user saved.
 */
import { paginateGetAccountAuthorizationDetails, paginateListUsers } from '@aws-sdk/client-iam';
import type { IAMClient } from '@aws-sdk/client-iam';
import { keepAlive } from '../heartbeat';

/** Below this many users a per-user read is cheaper than reading the whole account. */
export const DIRECTORY_MIN_USERS = 20;

export interface DirectoryUser {
  userName: string;
  userId: string;
  arn: string;
  path: string;
  createDate: Date | undefined;
  passwordLastUsed: Date | undefined;
  permissionsBoundary: string | null;
  tags: { key: string; value: string }[];
  groups: string[];
  attachedPolicies: { name: string; arn: string }[];
  /** As AWS returns them: URL-encoded, like GetUserPolicy's. */
  inlinePolicies: { name: string; document: string }[];
}

/** The account's users by name, as both listings agreed on them. */
export interface UserDirectory {
  users: Map<string, DirectoryUser>;
}

const PAGE = 1000;

/**
 * One bulk read per account at a time in this worker: callers that pass the same `shareKey` while a
 * read is under way wait for it and take their users from it, instead of reading the whole account
 * again beside it. Hand-written because what is shared is Countersign's own (an account's directory,
 * filtered per caller, dropped when the read settles); there is no cache past the read.
 */
const inFlight = new Map<string, Promise<Map<string, DirectoryUser>>>();

/**
 * `only`: the users the caller will ask about; the rest of each page is dropped as it is read, so what
 * is kept is the size of a batch, not of the account.
 *
 * `shareKey` (the account): the parts and batches of one account that read at the same moment share
 * one read (above). Each page of the whole account is parsed at once, and an emulator may answer all
 * of it in one page (moto ignores MaxItems here: 10,000 users with policies are up to 9 MB of XML and
 * about 80 MB while the SDK parses them), so three parts planning together would otherwise hold three. A caller joining
 * gets facts read at most one read's duration before it asked, the same age as a read it started
 * itself would have by the time its last page came; the per-user reads and the drift checks that
 * follow are unchanged.
 */
export async function readUserDirectory(iam: IAMClient, only: ReadonlySet<string>, shareKey?: string): Promise<UserDirectory> {
  if (shareKey === undefined) return { users: await readAll(iam, only) };
  let read = inFlight.get(shareKey);
  if (!read) {
    read = readAll(iam, undefined).finally(() => inFlight.delete(shareKey));
    inFlight.set(shareKey, read);
  }
  const all = await read;
  const users = new Map<string, DirectoryUser>();
  for (const name of only) {
    const user = all.get(name);
    if (user) users.set(name, user);
  }
  return { users };
}

/** Bulk reads under way in this worker (for tests). */
export function directoryReadsInFlight(): number {
  return inFlight.size;
}

/** Both listings, keeping the users in `only` (every user when undefined). */
async function readAll(iam: IAMClient, only: ReadonlySet<string> | undefined): Promise<Map<string, DirectoryUser>> {
  const users = new Map<string, DirectoryUser>();
  for await (const page of paginateGetAccountAuthorizationDetails({ client: iam, pageSize: PAGE }, { Filter: ['User'] })) {
    keepAlive();
    for (const u of page.UserDetailList ?? []) {
      if (!u.UserName || (only && !only.has(u.UserName))) continue;
      users.set(u.UserName, {
        userName: u.UserName,
        userId: u.UserId ?? '',
        arn: u.Arn ?? '',
        path: u.Path ?? '/',
        createDate: u.CreateDate,
        passwordLastUsed: undefined,
        permissionsBoundary: u.PermissionsBoundary?.PermissionsBoundaryArn ?? null,
        tags: (u.Tags ?? []).filter((t) => t.Key !== undefined).map((t) => ({ key: t.Key ?? '', value: t.Value ?? '' })),
        groups: (u.GroupList ?? []).filter((g): g is string => typeof g === 'string'),
        attachedPolicies: (u.AttachedManagedPolicies ?? []).filter((p) => p.PolicyArn !== undefined).map((p) => ({ name: p.PolicyName ?? '', arn: p.PolicyArn ?? '' })),
        inlinePolicies: (u.UserPolicyList ?? []).filter((p) => p.PolicyName !== undefined).map((p) => ({ name: p.PolicyName ?? '', document: p.PolicyDocument ?? '' })),
      });
    }
  }
  const confirmed = new Map<string, DirectoryUser>();
  for await (const page of paginateListUsers({ client: iam, pageSize: PAGE }, {})) {
    keepAlive();
    for (const u of page.Users ?? []) {
      const known = u.UserName ? users.get(u.UserName) : undefined;
      if (!known || known.userId !== u.UserId) continue;
      known.passwordLastUsed = u.PasswordLastUsed;
      confirmed.set(known.userName, known);
    }
  }
  // A user in one listing and not the other (created, deleted or recreated between them) is left out:
  // callers read a user the directory does not hold one by one, as they would without it.
  return confirmed;
}
