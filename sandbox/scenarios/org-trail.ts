/**
 * org-trail in the management account of the sandbox organization: the organization has all
 * features but no CloudTrail trusted access, and the log bucket already exists with a statement of
 * the auditors'. The run enables trusted access, protects the bucket, merges the organization-trail
 * statements into its policy (the auditors' statement stays), creates the organization trail and
 * starts it. Its own trail and bucket names keep it clear of the trails other scenarios seed.
 */
import { CloudTrailClient, GetTrailCommand, GetTrailStatusCommand } from '@aws-sdk/client-cloudtrail';
import { ListAWSServiceAccessForOrganizationCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { CreateBucketCommand, GetBucketPolicyCommand, GetBucketVersioningCommand, GetPublicAccessBlockCommand, PutBucketPolicyCommand, S3Client } from '@aws-sdk/client-s3';
import type { RemediationStatus } from '../../common/messages';
import type { SeededOrganization } from '../organization';
import type { Scenario, ScenarioChecks, ScenarioContext, ScenarioState } from './index';

const REGION = 'us-east-1';
const BUCKET = 'countersign-demo-org-trail-logs';
const TRAIL = 'countersign-org-trail';
const AUDITORS_SID = 'AllowAuditorsRead';

export interface OrgTrailState extends ScenarioState {
  organization: SeededOrganization;
  trailArn: string;
}

function checked(results: [boolean, string][]): ScenarioChecks {
  return { ok: results.every(([ok]) => ok), lines: results.map(([ok, what]) => `${ok ? 'ok    ' : 'FAILED'} ${what}`) };
}

export const orgTrail: Scenario<OrgTrailState> = {
  kind: 'org-trail',
  title: 'the organization CloudTrail trail, from the management account',
  shows: [
    'an organization with all features and no CloudTrail trusted access; the log bucket exists already, with a statement of the auditors\'',
    'the plan: trusted access (never undone), each bucket protection, the bucket policy before and after, the organization trail, start logging',
    'after approval: an organization trail over every region with log-file validation, logging; the auditors\' statement kept',
  ],
  applying: 'trusted access → bucket protections and policy → organization trail → start logging → verify',
  params: { bucket: BUCKET, trailName: TRAIL },

  async seed(context: ScenarioContext): Promise<OrgTrailState> {
    const organization = await context.organization();
    const management = organization.managementAccount;
    context.say(`organization ${organization.organizationId}: management account ${management}; no trusted access for cloudtrail.amazonaws.com yet`);
    const s3 = new S3Client(context.clientConfig(management, REGION));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      const auditors = { Sid: AUDITORS_SID, Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${management}:root` }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${BUCKET}/*` };
      await s3.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: JSON.stringify({ Version: '2012-10-17', Statement: [auditors] }) }));
    } finally {
      s3.destroy();
    }
    context.say(`log bucket ${BUCKET}: unprotected, its policy holds only the statement ${AUDITORS_SID}`);
    return { account: management, organization, trailArn: `arn:aws:cloudtrail:${REGION}:${management}:trail/${TRAIL}` };
  },

  async checks(context: ScenarioContext, state: OrgTrailState, final: RemediationStatus): Promise<ScenarioChecks> {
    const config = context.clientConfig(state.account, REGION);
    const ct = new CloudTrailClient(config);
    const s3 = new S3Client(config);
    const orgs = new OrganizationsClient(config);
    try {
      const trail = (await ct.send(new GetTrailCommand({ Name: state.trailArn })).catch(() => undefined))?.Trail;
      const logging = trail ? (await ct.send(new GetTrailStatusCommand({ Name: state.trailArn }))).IsLogging === true : false;
      const access = (await orgs.send(new ListAWSServiceAccessForOrganizationCommand({}))).EnabledServicePrincipals ?? [];
      const block = (await s3.send(new GetPublicAccessBlockCommand({ Bucket: BUCKET })).catch(() => undefined))?.PublicAccessBlockConfiguration;
      const versioning = (await s3.send(new GetBucketVersioningCommand({ Bucket: BUCKET }))).Status;
      const policy = (await s3.send(new GetBucketPolicyCommand({ Bucket: BUCKET })).catch(() => undefined))?.Policy;
      const sids = policy ? (JSON.parse(policy) as { Statement: { Sid?: string }[] }).Statement.map((s) => s.Sid ?? '') : [];
      return checked([
        [final.outcome === 'completed', `outcome ${final.outcome ?? 'none'}${final.outcomeReason ? ` — ${final.outcomeReason}` : ''}`],
        [access.some((p) => p.ServicePrincipal === 'cloudtrail.amazonaws.com'), 'trusted access for cloudtrail.amazonaws.com is enabled'],
        [
          trail?.IsOrganizationTrail === true && trail.IsMultiRegionTrail === true && trail.LogFileValidationEnabled === true && trail.S3BucketName === BUCKET,
          `${TRAIL}: organization trail, every region, log-file validation, delivering to ${BUCKET}`,
        ],
        [logging, `${TRAIL} is logging`],
        [block?.BlockPublicAcls === true && block.BlockPublicPolicy === true && block.IgnorePublicAcls === true && block.RestrictPublicBuckets === true && versioning === 'Enabled', `${BUCKET}: public access blocked, versioning enabled`],
        [sids.includes(AUDITORS_SID) && sids.some((s) => s.startsWith('CountersignOrgTrail')), `${BUCKET}'s policy holds the organization-trail statements and still the auditors' (${sids.join(', ')})`],
      ]);
    } finally {
      ct.destroy();
      s3.destroy();
      orgs.destroy();
    }
  },
};
