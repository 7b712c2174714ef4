// The HTTP and Kubernetes gateways' refusals: a code of the central table (core/errors.ts), rendered as JSON or a Kubernetes Status.
import { ERRORS, formatMessage, type ErrorCode } from '../../core/errors.ts';

/** Every code the HTTP gateways send is in the central table (core/errors.ts, docs/errors.md). */
export type HttpErrorCode = ErrorCode;

export interface HttpRefusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly rule?: string;
  readonly request?: string;
}

export function refusal(code: HttpErrorCode, params: Readonly<Record<string, string | number>> = {}, extra: { rule?: string; request?: string } = {}): HttpRefusal {
  const s = ERRORS[code];
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
