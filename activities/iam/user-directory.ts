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
 * `only`: the users the caller will ask about; the rest of each page is dropped as it is read, so what
 * is kept is the size of a batch, not of the account.
 */
export async function readUserDirectory(iam: IAMClient, only: ReadonlySet<string>): Promise<UserDirectory> {
  const users = new Map<string, DirectoryUser>();
  for await (const page of paginateGetAccountAuthorizationDetails({ client: iam, pageSize: PAGE }, { Filter: ['User'] })) {
    keepAlive();
    for (const u of page.UserDetailList ?? []) {
      if (!u.UserName || !only.has(u.UserName)) continue;
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
  return { users: confirmed };
}
