// Every workflow the worker registers. One file per kind; the engine is in lifecycle.ts.
export { removeStaleIamUsers } from './stale-iam-users';
export { createOrgTrail } from './org-trail';
export { retireDefaultTrails } from './retire-default-trails';
export { applyScp } from './scp';
export { applyPermissionBoundaries } from './permission-boundary';
export { organizationRemediation } from './organization';
