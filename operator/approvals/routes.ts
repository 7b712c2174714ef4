// The ApprovalRequest admission routes: decode nothing, decide with review.ts, encode the AdmissionResponse.
import { deny, patchResponse, type AdmissionOutcome, type AdmissionRequest, type WebhookRoute } from '../server/admission.ts';
import { admitReview, validateReview, type ReviewVerdict } from './review.ts';

export const MUTATE_PATH = '/mutate/approvalrequests';
export const VALIDATE_PATH = '/validate/approvalrequests';

export interface ApprovalRoutesOptions {
  /** The clock (tests). */
  readonly now?: () => number;
}

function outcome(uid: string, v: ReviewVerdict): AdmissionOutcome {
  if (!v.allowed) return { response: deny(uid, v.code, v.message), outcome: v.outcome };
  return { response: patchResponse(uid, v.patch), outcome: v.outcome };
}

/** `/mutate/approvalrequests` stamps reviews and refuses; `/validate/approvalrequests` re-checks the stored result. */
export function approvalRoutes(options: ApprovalRoutesOptions = {}): WebhookRoute[] {
  const now = options.now ?? Date.now;
  return [
    { path: MUTATE_PATH, name: 'approvalrequest-mutate', handle: (req: AdmissionRequest) => outcome(req.uid, admitReview(req, now())) },
    { path: VALIDATE_PATH, name: 'approvalrequest-validate', handle: (req: AdmissionRequest) => outcome(req.uid, validateReview(req)) },
  ];
}
