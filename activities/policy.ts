/** Load the approval policy (COUNTERSIGN_POLICY) at workflow start, so the policy in force is in history. */
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { EffectivePolicy } from '../common/policy';
import { effectivePolicy, parseApprovalPolicy } from '../common/policy';

export interface PolicyActivityDeps {
  /** Path of the policy file; undefined = the built-in default (no approvers: nothing can be approved). */
  policyPath?: string;
}

export function createPolicyActivities(deps: PolicyActivityDeps) {
  return {
    async loadApprovalPolicy(input: { role?: 'policy'; kind: string; dryRun: boolean }): Promise<EffectivePolicy> {
      let policy: EffectivePolicy;
      if (!deps.policyPath) {
        policy = effectivePolicy(parseApprovalPolicy('{}', 'the built-in default policy'), input.kind, 'the built-in default policy');
      } else {
        let text: string;
        try {
          text = await readFile(deps.policyPath, 'utf8');
        } catch (err) {
          throw ApplicationFailure.create({
            type: 'PolicyUnreadable',
            nonRetryable: true,
            message: `cannot read the approval policy ${deps.policyPath} (COUNTERSIGN_POLICY): ${(err as Error).message}`,
          });
        }
        try {
          policy = effectivePolicy(parseApprovalPolicy(text, deps.policyPath), input.kind, deps.policyPath);
        } catch (err) {
          throw ApplicationFailure.create({ type: 'PolicyInvalid', nonRetryable: true, message: (err as Error).message });
        }
      }
      if (!input.dryRun && policy.approvers.length === 0) {
        throw ApplicationFailure.create({
          type: 'NoApprovers',
          nonRetryable: true,
          message: `no approvers are configured for ${input.kind} in ${policy.source}; set COUNTERSIGN_POLICY to a policy file that lists them (see README, "Approval policy")`,
        });
      }
      return policy;
    },
  };
}
