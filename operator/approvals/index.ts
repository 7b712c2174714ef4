// The approvals feature's public surface: the operator plugin, the admission routes, and the pure cores.
export { approvalsPlugin, desiredStatus, DEFAULT_TTL_SECONDS, type ApprovalsPluginOptions } from './controller.ts';
export { approvalRoutes, MUTATE_PATH, VALIDATE_PATH, type ApprovalRoutesOptions } from './routes.ts';
export { approvalPhase, countApprovals, isApprover, isBroadGroup, isRequester, personKey, requesterNames, CREATED_BY_ANNOTATION, FINAL_PHASES, type Phase, type PhaseResult } from './phase.ts';
export { admitReview, validateReview, type ReviewRefusal, type ReviewVerdict } from './review.ts';
export { notificationBody, sendNotification, signBody, summarize, SIGNATURE_HEADER } from './notify.ts';
