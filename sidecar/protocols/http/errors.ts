// The HTTP and Kubernetes gateways' refusals: their own codes (to merge into core/errors.ts) plus the shared ones, rendered as JSON or a Kubernetes Status.
import { ERRORS, formatMessage, type ErrorCode, type ErrorSpec } from '../../core/errors.ts';

function spec(code: string, httpStatus: number, message: string): ErrorSpec {
  // SQLSTATE is meaningless on HTTP; 'HV000' keeps the shape of the shared table.
  return { code, httpStatus, sqlState: 'HV000', message };
}

/** Codes only the HTTP gateways send. Keys equal codes (as in core/errors.ts, where they belong once merged). */
export const HTTP_ERRORS = {
  CHAP_ERR_HTTP_DENIED: spec('CHAP_ERR_HTTP_DENIED', 403, 'Chaperone refused this request: rule {rule} ({reason}): {detail}; nothing was forwarded'),
  CHAP_ERR_HTTP_APPROVAL_DENIED: spec('CHAP_ERR_HTTP_APPROVAL_DENIED', 403, 'Chaperone held this request for approval (rule {rule}, request {request}) and it was not approved: {detail}; nothing was forwarded'),
  CHAP_ERR_HTTP_APPROVAL_EXPIRED: spec('CHAP_ERR_HTTP_APPROVAL_EXPIRED', 504, 'Chaperone held this request for approval (rule {rule}, request {request}) and no decision came in time: {detail}; nothing was forwarded; retry to ask again'),
  CHAP_ERR_HTTP_BAD_REQUEST: spec('CHAP_ERR_HTTP_BAD_REQUEST', 400, 'the request is malformed ({detail}); nothing was forwarded'),
  CHAP_ERR_HTTP_HEADERS_TOO_LARGE: spec('CHAP_ERR_HTTP_HEADERS_TOO_LARGE', 431, 'the request headers are larger than the sidecar accepts ({detail}); send fewer or smaller headers'),
  CHAP_ERR_HTTP_REQUEST_TIMEOUT: spec('CHAP_ERR_HTTP_REQUEST_TIMEOUT', 408, 'the request did not arrive in time ({detail}); the connection is closed'),
  CHAP_ERR_HTTP_BODY_TOO_LARGE: spec('CHAP_ERR_HTTP_BODY_TOO_LARGE', 413, 'the request body is larger than the {limit} bytes the policy can judge ({detail}); nothing was forwarded'),
  CHAP_ERR_HTTP_UPGRADE_REFUSED: spec('CHAP_ERR_HTTP_UPGRADE_REFUSED', 403, 'Chaperone refused this {protocol} upgrade: {detail}'),
  CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE: spec('CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE', 502, 'the sidecar could not reach the upstream of connection {connection} ({detail}); retry when it is back'),
  CHAP_ERR_HTTP_UPSTREAM_TIMEOUT: spec('CHAP_ERR_HTTP_UPSTREAM_TIMEOUT', 504, 'the upstream of connection {connection} did not answer in time ({detail})'),
  CHAP_ERR_HTTP_UNMASKABLE: spec('CHAP_ERR_HTTP_UNMASKABLE', 502, 'the upstream response of connection {connection} cannot be masked ({detail}), so it is not passed on'),
  CHAP_ERR_HTTP_TOO_MANY_REQUESTS: spec('CHAP_ERR_HTTP_TOO_MANY_REQUESTS', 503, 'connection {connection} already has {n} requests in flight (limits.maxSessions); retry shortly'),
} as const satisfies Record<string, ErrorSpec>;

export type HttpErrorCode = keyof typeof HTTP_ERRORS | ErrorCode;

export interface HttpRefusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly rule?: string;
  readonly request?: string;
}

export function refusal(code: HttpErrorCode, params: Readonly<Record<string, string | number>> = {}, extra: { rule?: string; request?: string } = {}): HttpRefusal {
  const s: ErrorSpec = code in HTTP_ERRORS ? HTTP_ERRORS[code as keyof typeof HTTP_ERRORS] : ERRORS[code as ErrorCode];
  return { status: s.httpStatus, code: s.code, message: formatMessage(s.message, params), ...extra };
}

/** Plain HTTP connections: `{"error": {code, message, rule?, request?}}`. */
export function jsonBody(r: HttpRefusal): string {
  return JSON.stringify({ error: { code: r.code, message: r.message, ...(r.rule !== undefined ? { rule: r.rule } : {}), ...(r.request !== undefined ? { request: r.request } : {}) } });
}

const STATUS_REASON: Readonly<Record<number, string>> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 408: 'Timeout', 413: 'RequestEntityTooLarge', 431: 'BadRequest', 500: 'InternalError', 502: 'ServiceUnavailable', 503: 'ServiceUnavailable', 504: 'Timeout' };

/** Kubernetes connections: a metav1.Status, which kubectl prints as `Error from server (Forbidden): <message>`. */
export function statusBody(r: HttpRefusal): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `${r.code}: ${r.message}`,
    reason: STATUS_REASON[r.status] ?? 'Unknown',
    details: { causes: [{ reason: r.code, message: r.rule !== undefined ? `rule ${r.rule}` : r.code }] },
    code: r.status,
  });
}
