// admission.k8s.io/v1 AdmissionReview types and response helpers shared by every webhook route (pure).

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface GroupVersionResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

export interface AdmissionUserInfo {
  readonly username?: string;
  readonly uid?: string;
  readonly groups?: string[];
  readonly extra?: Record<string, string[]>;
}

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** AdmissionReview.request as the API server sends it (only the fields the routes read are typed). */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly resource: GroupVersionResource;
  readonly subResource?: string;
  readonly requestKind?: GroupVersionKind;
  readonly requestResource?: GroupVersionResource;
  readonly requestSubResource?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly operation: AdmissionOperation;
  readonly userInfo: AdmissionUserInfo;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
  readonly options?: unknown;
}

export interface AdmissionStatus {
  readonly code: number;
  readonly reason?: string;
  readonly message: string;
}

/** AdmissionReview.response. `patch` is the base64 of a JSON array of RFC 6902 operations. */
export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly patchType?: 'JSONPatch';
  readonly patch?: string;
  readonly status?: AdmissionStatus;
  readonly warnings?: string[];
}

/** What a handler returns: the response, plus a short label for logs and the latency metric. */
export interface AdmissionOutcome {
  readonly response: AdmissionResponse;
  readonly outcome: string;
}

export type AdmissionHandler = (req: AdmissionRequest) => AdmissionOutcome | Promise<AdmissionOutcome>;

/** One webhook endpoint: `path` as in the webhook configuration's clientConfig, `name` the metric label. */
export interface WebhookRoute {
  readonly path: string;
  readonly name: string;
  readonly handle: AdmissionHandler;
}

/** One RFC 6902 operation (what `patchResponse` encodes). */
export interface PatchOperation {
  readonly op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  readonly path: string;
  readonly value?: unknown;
  readonly from?: string;
}

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const ADMISSION_KIND = 'AdmissionReview';

/** Allowed, no patch. */
export function allow(uid: string, warnings?: string[]): AdmissionResponse {
  return warnings && warnings.length > 0 ? { uid, allowed: true, warnings } : { uid, allowed: true };
}

const REASONS: Readonly<Record<number, string>> = { 400: 'BadRequest', 403: 'Forbidden', 409: 'Conflict', 422: 'Invalid', 500: 'InternalError', 503: 'ServiceUnavailable' };

/** Refused with an HTTP-like code (403 for policy, 500 for our own failure) and a message the user sees in kubectl. */
export function deny(uid: string, code: number, message: string): AdmissionResponse {
  const reason = REASONS[code];
  return { uid, allowed: false, status: reason ? { code, reason, message } : { code, message } };
}

/** Allowed with a JSONPatch; an empty list is a plain allow (the API server rejects an empty patch of length 0 anyway). */
export function patchResponse(uid: string, ops: readonly PatchOperation[], warnings?: string[]): AdmissionResponse {
  if (ops.length === 0) return allow(uid, warnings);
  const patch = Buffer.from(JSON.stringify(ops)).toString('base64');
  const base = { uid, allowed: true, patchType: 'JSONPatch' as const, patch };
  return warnings && warnings.length > 0 ? { ...base, warnings } : base;
}

/** The full AdmissionReview the server writes back (apiVersion and kind echo the request's). */
export function reviewResponse(response: AdmissionResponse, apiVersion = ADMISSION_API_VERSION): { apiVersion: string; kind: string; response: AdmissionResponse } {
  return { apiVersion, kind: ADMISSION_KIND, response };
}
