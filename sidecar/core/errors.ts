// The sidecar's one error table: every refusal a client can see, with its HTTP status and SQLSTATE.
// docs/errors.md lists every code; a test checks that each key equals its code and that the doc lists it.

export interface ErrorSpec {
  readonly code: string;
  /** What went wrong and what to do; `{name}` placeholders are filled from `params`. Never a credential. */
  readonly message: string;
  readonly httpStatus: number;
  /** PostgreSQL SQLSTATE sent in ErrorResponse field C. */
  readonly sqlState: string;
}

function spec(code: string, httpStatus: number, sqlState: string, message: string): ErrorSpec {
  return { code, httpStatus, sqlState, message };
}

/** Append entries here; keep keys equal to their codes (a test checks it). */
export const ERRORS = {
  CHAP_ERR_INTERNAL: spec('CHAP_ERR_INTERNAL', 500, 'XX000', 'internal error in the Chaperone sidecar ({detail}); the command was not forwarded; see the sidecar log'),
  CHAP_ERR_CONFIG_INVALID: spec('CHAP_ERR_CONFIG_INVALID', 503, '58000', 'the sidecar configuration is invalid at {path}: {detail}'),
  CHAP_ERR_AUTH_TOKEN_MISSING: spec('CHAP_ERR_AUTH_TOKEN_MISSING', 401, '28000', 'no agent token was sent: {detail}'),
  CHAP_ERR_AUTH_TOKEN_REFUSED: spec('CHAP_ERR_AUTH_TOKEN_REFUSED', 401, '28P01', 'the agent token was refused ({reason}): {detail}'),
  CHAP_ERR_AUTH_KEYS_UNAVAILABLE: spec('CHAP_ERR_AUTH_KEYS_UNAVAILABLE', 503, '28000', 'the agent token cannot be checked because the issuer\'s signing keys are unavailable: {detail}'),
  CHAP_ERR_AUTH_CONNECTION_FORBIDDEN: spec('CHAP_ERR_AUTH_CONNECTION_FORBIDDEN', 403, '28000', 'the agent may not use connection {connection} ({reason}): {detail}'),
  CHAP_ERR_RECORDING_FAILED: spec('CHAP_ERR_RECORDING_FAILED', 503, '58030', 'the command was refused because it could not be recorded first ({detail}); Chaperone records every command before forwarding it; the sidecar reopens the recording on a later command; see the sidecar log'),
  CHAP_ERR_RECORDING_BACKPRESSURE: spec('CHAP_ERR_RECORDING_BACKPRESSURE', 503, '53000', 'the command was refused because the recording queue is full ({detail}); the recording sink is slower than the traffic; retry shortly'),
  CHAP_ERR_RECORDING_CLOSED: spec('CHAP_ERR_RECORDING_CLOSED', 503, '57P01', 'the command was refused because the sidecar is shutting down and its recording is closed; reconnect'),
  // PostgreSQL gateway (sidecar/protocols/postgres).
  CHAP_ERR_SQL_DENIED: spec('CHAP_ERR_SQL_DENIED', 403, '42501', 'Chaperone refused this statement: rule {rule} ({reason}): {detail}; nothing was forwarded'),
  CHAP_ERR_SQL_APPROVAL_DENIED: spec('CHAP_ERR_SQL_APPROVAL_DENIED', 403, '42501', 'Chaperone held this statement for approval (rule {rule}) and it was not approved ({outcome}): {detail}; nothing was forwarded'),
  CHAP_ERR_PG_FUNCTION_CALL: spec('CHAP_ERR_PG_FUNCTION_CALL', 403, '42501', 'the fast-path FunctionCall message is refused by Chaperone: it runs a function by OID without SQL the policy could judge; call the function in a SELECT instead'),
  CHAP_ERR_PG_PROTOCOL: spec('CHAP_ERR_PG_PROTOCOL', 400, '08P01', 'protocol violation: {detail}; the connection is closed'),
  CHAP_ERR_PG_STARTUP_REFUSED: spec('CHAP_ERR_PG_STARTUP_REFUSED', 400, '08P01', 'the connection start-up was refused: {detail}'),
  CHAP_ERR_PG_TLS_REQUIRED: spec('CHAP_ERR_PG_TLS_REQUIRED', 400, '28000', 'connection {connection} requires TLS (listen.tls.required) and this start-up was sent in plaintext; connect with sslmode=require (or verify-full with the listener\'s CA)'),
  CHAP_ERR_PG_IDLE_TIMEOUT: spec('CHAP_ERR_PG_IDLE_TIMEOUT', 408, '57P05', 'the session was closed after {seconds} s without a message from the client (limits.idleTimeoutSeconds); reconnect'),
  CHAP_ERR_PG_IDLE_IN_TRANSACTION_TIMEOUT: spec('CHAP_ERR_PG_IDLE_IN_TRANSACTION_TIMEOUT', 408, '25P03', 'the session was closed after {seconds} s idle inside a transaction (limits.idleInTransactionTimeoutSeconds); the transaction was rolled back; reconnect'),
  CHAP_ERR_PG_SESSION_TOO_LONG: spec('CHAP_ERR_PG_SESSION_TOO_LONG', 408, '57P01', 'the session reached its maximum duration of {seconds} s (limits.maxSessionSeconds) and was closed; an open transaction was rolled back; reconnect'),
  CHAP_ERR_UPSTREAM_UNAVAILABLE: spec('CHAP_ERR_UPSTREAM_UNAVAILABLE', 503, '08006', 'the sidecar could not connect to the upstream database of connection {connection}: {detail}; the sidecar keeps serving, retry when the database is back'),
  CHAP_ERR_UPSTREAM_AUTH: spec('CHAP_ERR_UPSTREAM_AUTH', 502, '08006', 'the upstream database of connection {connection} refused the sidecar\'s credential or TLS: {detail}; check the mounted credential and TLS settings of the connection'),
  CHAP_ERR_UPSTREAM_LOST: spec('CHAP_ERR_UPSTREAM_LOST', 502, '08006', 'the connection to the upstream database was lost ({detail}); reconnect: the next session opens a new upstream connection'),
  CHAP_ERR_APPROVAL_FORBIDDEN: spec('CHAP_ERR_APPROVAL_FORBIDDEN', 403, '42501', 'you may not decide this held command: {detail}'),
  CHAP_ERR_APPROVAL_BACKEND_UNAVAILABLE: spec('CHAP_ERR_APPROVAL_BACKEND_UNAVAILABLE', 503, '58000', 'approvals backend {backend} is not available in this sidecar build; use backend local or none'),
  // HTTP and Kubernetes API gateways (sidecar/protocols/http, sidecar/protocols/kubernetes). They answer over HTTP only;
  // the SQLSTATE is the nearest PostgreSQL class so the table keeps one shape.
  CHAP_ERR_HTTP_DENIED: spec('CHAP_ERR_HTTP_DENIED', 403, '42501', 'Chaperone refused this request: rule {rule} ({reason}): {detail}; nothing was forwarded'),
  CHAP_ERR_HTTP_APPROVAL_DENIED: spec('CHAP_ERR_HTTP_APPROVAL_DENIED', 403, '42501', 'Chaperone held this request for approval (rule {rule}, request {request}) and it was not approved: {detail}; nothing was forwarded'),
  CHAP_ERR_HTTP_APPROVAL_EXPIRED: spec('CHAP_ERR_HTTP_APPROVAL_EXPIRED', 504, '57014', 'Chaperone held this request for approval (rule {rule}, request {request}) and no decision came in time: {detail}; nothing was forwarded; retry to ask again'),
  CHAP_ERR_HTTP_BAD_REQUEST: spec('CHAP_ERR_HTTP_BAD_REQUEST', 400, '08P01', 'the request is malformed ({detail}); nothing was forwarded'),
  CHAP_ERR_HTTP_HEADERS_TOO_LARGE: spec('CHAP_ERR_HTTP_HEADERS_TOO_LARGE', 431, '54000', 'the request headers are larger than the sidecar accepts ({detail}); send fewer or smaller headers'),
  CHAP_ERR_HTTP_REQUEST_TIMEOUT: spec('CHAP_ERR_HTTP_REQUEST_TIMEOUT', 408, '57P05', 'the request did not arrive in time ({detail}); the connection is closed'),
  CHAP_ERR_HTTP_BODY_TOO_LARGE: spec('CHAP_ERR_HTTP_BODY_TOO_LARGE', 413, '54000', 'the request body is larger than the {limit} bytes the policy can judge ({detail}); nothing was forwarded'),
  CHAP_ERR_HTTP_UPGRADE_REFUSED: spec('CHAP_ERR_HTTP_UPGRADE_REFUSED', 403, '42501', 'Chaperone refused this {protocol} upgrade: {detail}'),
  CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE: spec('CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE', 502, '08006', 'the sidecar could not reach the upstream of connection {connection} ({detail}); retry when it is back'),
  CHAP_ERR_HTTP_UPSTREAM_TIMEOUT: spec('CHAP_ERR_HTTP_UPSTREAM_TIMEOUT', 504, '57014', 'the upstream of connection {connection} did not answer in time ({detail})'),
  CHAP_ERR_HTTP_UNMASKABLE: spec('CHAP_ERR_HTTP_UNMASKABLE', 502, '58000', 'the upstream response of connection {connection} cannot be masked ({detail}), so it is not passed on'),
  CHAP_ERR_HTTP_TOO_MANY_REQUESTS: spec('CHAP_ERR_HTTP_TOO_MANY_REQUESTS', 503, '53300', 'connection {connection} already has {n} requests in flight (limits.maxSessions); retry shortly'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error a client may see: carries its table entry and the filled message. */
export class ChaperoneError extends Error {
  readonly spec: ErrorSpec;
  readonly params: Readonly<Record<string, string | number>>;

  constructor(code: ErrorCode, params: Readonly<Record<string, string | number>> = {}, options?: ErrorOptions) {
    super(formatMessage(ERRORS[code].message, params), options);
    this.name = 'ChaperoneError';
    this.spec = ERRORS[code];
    this.params = params;
  }

  get code(): string {
    return this.spec.code;
  }
}

/** Fills `{name}` placeholders; unknown placeholders stay visible so a missing param is noticed. */
export function formatMessage(template: string, params: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}
