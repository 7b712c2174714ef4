// The gateway session's states and pure transitions: next(state, event) → { state, actions }; session.ts runs the actions.
import { FrontendCode } from './codes.ts';
import type { ErrorCode } from '../../core/errors.ts';

/**
 * - `startup`: untagged packets (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage).
 * - `awaiting-password`: we sent AuthenticationCleartextPassword; the next message is the token.
 * - `authenticating`: verifying the token, authorizing, recording session.start.
 * - `connecting`: logging in upstream with the real credential.
 * - `ready`: relaying; each tagged message is routed by `route()`.
 * - `closed`: nothing more is read.
 */
export const enum SessionState {
  Startup = 'startup',
  AwaitingPassword = 'awaiting-password',
  Authenticating = 'authenticating',
  Connecting = 'connecting',
  Ready = 'ready',
  Closed = 'closed',
}

export type SessionEvent =
  /** `offer`: the listener has TLS and the connection is not encrypted yet. */
  | { readonly type: 'ssl-request'; readonly offer: boolean }
  | { readonly type: 'gssenc-request' }
  | { readonly type: 'cancel-request' }
  /** `tlsRequiredBy`: the connection (named) requires TLS and this start-up came in plaintext. */
  | { readonly type: 'startup'; readonly refusal: string | null; readonly tlsRequiredBy?: string }
  | { readonly type: 'password'; readonly token: string }
  | { readonly type: 'tagged-early'; readonly code: number }
  | { readonly type: 'auth-ok' }
  | { readonly type: 'auth-refused'; readonly code: ErrorCode; readonly params: Readonly<Record<string, string>> }
  | { readonly type: 'upstream-ready' }
  | { readonly type: 'upstream-failed'; readonly code: ErrorCode; readonly params: Readonly<Record<string, string>> }
  | { readonly type: 'closed' };

export type SessionAction =
  /** Answer SSLRequest/GSSENCRequest with 'N' and expect another start-up packet. */
  | { readonly type: 'refuse-encryption' }
  /** Answer SSLRequest with 'S', run the TLS handshake, then expect another start-up packet inside TLS. */
  | { readonly type: 'accept-tls' }
  | { readonly type: 'forward-cancel' }
  | { readonly type: 'ask-password' }
  | { readonly type: 'verify'; readonly token: string }
  | { readonly type: 'connect-upstream' }
  | { readonly type: 'send-welcome' }
  /** FATAL ErrorResponse with this table entry, then close. */
  | { readonly type: 'fatal'; readonly code: ErrorCode; readonly params: Readonly<Record<string, string>> }
  | { readonly type: 'close' };

export interface Transition {
  readonly state: SessionState;
  readonly actions: readonly SessionAction[];
}

function fatal(code: ErrorCode, params: Readonly<Record<string, string>>): Transition {
  return { state: SessionState.Closed, actions: [{ type: 'fatal', code, params }] };
}

function unexpected(state: SessionState, what: string): Transition {
  return fatal('CHAP_ERR_PG_PROTOCOL', { detail: `${what} is not expected in state ${state}` });
}

function fromStartup(e: SessionEvent): Transition {
  switch (e.type) {
    case 'ssl-request':
      if (e.offer) return { state: SessionState.Startup, actions: [{ type: 'accept-tls' }] };
      // No listener TLS (or already inside TLS): 'N', as PostgreSQL answers without ssl.
      return { state: SessionState.Startup, actions: [{ type: 'refuse-encryption' }] };
    case 'gssenc-request':
      // No GSSAPI: 'N'; libpq then tries SSLRequest or plaintext, as with PostgreSQL built without GSSAPI.
      return { state: SessionState.Startup, actions: [{ type: 'refuse-encryption' }] };
    case 'cancel-request':
      return { state: SessionState.Closed, actions: [{ type: 'forward-cancel' }, { type: 'close' }] };
    case 'startup':
      if (e.tlsRequiredBy !== undefined) return fatal('CHAP_ERR_PG_TLS_REQUIRED', { connection: e.tlsRequiredBy });
      if (e.refusal !== null) return fatal('CHAP_ERR_PG_STARTUP_REFUSED', { detail: e.refusal });
      return { state: SessionState.AwaitingPassword, actions: [{ type: 'ask-password' }] };
    default:
      return unexpected(SessionState.Startup, e.type);
  }
}

/** The lifecycle up to `ready`; after that route() decides per message. Pure. */
export function next(state: SessionState, e: SessionEvent): Transition {
  if (e.type === 'closed') return { state: SessionState.Closed, actions: [{ type: 'close' }] };
  switch (state) {
    case SessionState.Startup:
      return fromStartup(e);
    case SessionState.AwaitingPassword:
      if (e.type === 'password') return { state: SessionState.Authenticating, actions: [{ type: 'verify', token: e.token }] };
      return unexpected(state, e.type === 'tagged-early' ? `message type 0x${e.code.toString(16)} before the password` : e.type);
    case SessionState.Authenticating:
      if (e.type === 'auth-ok') return { state: SessionState.Connecting, actions: [{ type: 'connect-upstream' }] };
      if (e.type === 'auth-refused') return fatal(e.code, e.params);
      return unexpected(state, e.type);
    case SessionState.Connecting:
      if (e.type === 'upstream-ready') return { state: SessionState.Ready, actions: [{ type: 'send-welcome' }] };
      if (e.type === 'upstream-failed') return fatal(e.code, e.params);
      return unexpected(state, e.type);
    case SessionState.Ready:
    case SessionState.Closed:
      return unexpected(state, e.type);
  }
}

/** What to do with one tagged client message once the session is ready. */
export type Route =
  | 'judge-query'
  | 'judge-parse'
  | 'forward'
  /** Forwarded, and ends the extended-protocol batch (Sync). */
  | 'sync'
  /** Skipped: an earlier message of this batch was refused, so (like PostgreSQL) everything up to Sync is discarded. */
  | 'discard'
  | 'refuse-function-call'
  | 'protocol-violation'
  | 'terminate';

/** Pure routing of a tagged message, given whether the batch is being discarded after a refused Parse. */
export function route(byte: number, discarding: boolean): Route {
  const code = byte as FrontendCode;
  if (code === FrontendCode.Terminate) return 'terminate';
  // 'p' is only meaningful during authentication; later it is a protocol violation.
  if (code === FrontendCode.Password) return 'protocol-violation';
  if (code === FrontendCode.Sync) return 'sync';
  if (discarding) return 'discard';
  switch (code) {
    case FrontendCode.Query:
      return 'judge-query';
    case FrontendCode.Parse:
      return 'judge-parse';
    case FrontendCode.FunctionCall:
      return 'refuse-function-call';
    default:
      return 'forward';
  }
}
