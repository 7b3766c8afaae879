/**
 * The account's virtual MFA devices, listed for the verification of deleted users. Other work may
 * delete devices in the same account while the listing pages: the parts of an organization-wide run
 * that split one large account apply side by side, so one part verifies while another deletes. IAM
 * pages by `Marker`, and moto's Marker is an index into the current list: once deletions shrink the
 * list below it, moto answers ValidationError "Invalid Marker." (measured: a 10,000-user account in
 * three parts, where the last part's verification failed that way after every user was gone).
 */
import { paginateListVirtualMFADevices } from '@aws-sdk/client-iam';
import type { IAMClient } from '@aws-sdk/client-iam';
import { ApplicationFailure } from '@temporalio/activity';
import { isAwsError } from '../aws/errors';
import { keepAlive } from '../heartbeat';

/** Listings started afresh before the activity gives up and leaves the rest to its retry policy. */
export const MFA_LISTING_ATTEMPTS = 3;

function isLostMarker(err: unknown): boolean {
  return isAwsError(err, 'ValidationError', 'ValidationException') && /marker/i.test(err instanceof Error ? err.message : '');
}

/**
 * Serial numbers of every virtual MFA device (assigned or not). A listing whose marker was lost starts
 * again from the first page, since a page read before the change says nothing about the pages after
 * it; after MFA_LISTING_ATTEMPTS lost markers the activity fails retryably, so Temporal's retry policy
 * (with its backoff) reads again later instead of failing the run over a listing that was busy.
 */
export async function listVirtualMfaSerials(iam: IAMClient): Promise<Set<string>> {
  for (let attempt = 1; ; attempt++) {
    const serials = new Set<string>();
    try {
      for await (const page of paginateListVirtualMFADevices({ client: iam }, { AssignmentStatus: 'Any' })) {
        keepAlive({ verifying: 'listing virtual MFA devices' });
        for (const d of page.VirtualMFADevices ?? []) if (d.SerialNumber) serials.add(d.SerialNumber);
      }
      return serials;
    } catch (err) {
      if (!isLostMarker(err)) throw err;
      if (attempt >= MFA_LISTING_ATTEMPTS) {
        throw ApplicationFailure.create({
          type: 'ListingChanged',
          nonRetryable: false,
          message: `the account's virtual MFA devices changed while they were listed ${attempt} times (IAM: ${err instanceof Error ? err.message : String(err)}); the verification is retried`,
        });
      }
    }
  }
}
