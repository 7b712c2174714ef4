// The session's pure transitions and message routing: given a state and an event, the next state and actions.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { next, route, SessionState, type SessionEvent } from './session-state.ts';

const R = (c: string): number => c.charCodeAt(0);

describe('next(state, event)', () => {
  const cases: [string, SessionState, SessionEvent, SessionState, string[]][] = [
    ['SSLRequest without listener TLS is refused with N and start-up goes on', SessionState.Startup, { type: 'ssl-request', offer: false }, SessionState.Startup, ['refuse-encryption']],
    ['SSLRequest with listener TLS is accepted (S, handshake) and start-up goes on inside TLS', SessionState.Startup, { type: 'ssl-request', offer: true }, SessionState.Startup, ['accept-tls']],
    ['GSSENCRequest is refused with N too', SessionState.Startup, { type: 'gssenc-request' }, SessionState.Startup, ['refuse-encryption']],
    ['a CancelRequest is forwarded and the socket closed', SessionState.Startup, { type: 'cancel-request' }, SessionState.Closed, ['forward-cancel', 'close']],
    ['a good StartupMessage asks for the token', SessionState.Startup, { type: 'startup', refusal: null }, SessionState.AwaitingPassword, ['ask-password']],
    ['a plaintext StartupMessage on a TLS-required listener is FATAL', SessionState.Startup, { type: 'startup', refusal: null, tlsRequiredBy: 'db' }, SessionState.Closed, ['fatal']],
    ['a refused StartupMessage is FATAL', SessionState.Startup, { type: 'startup', refusal: 'replication' }, SessionState.Closed, ['fatal']],
    ['the password is verified', SessionState.AwaitingPassword, { type: 'password', token: 't' }, SessionState.Authenticating, ['verify']],
    ['a query before the password is a protocol violation', SessionState.AwaitingPassword, { type: 'tagged-early', code: R('Q') }, SessionState.Closed, ['fatal']],
    ['a verified agent connects upstream', SessionState.Authenticating, { type: 'auth-ok' }, SessionState.Connecting, ['connect-upstream']],
    ['a refused agent gets FATAL', SessionState.Authenticating, { type: 'auth-refused', code: 'CHAP_ERR_AUTH_TOKEN_REFUSED', params: {} }, SessionState.Closed, ['fatal']],
    ['an upstream login sends the welcome', SessionState.Connecting, { type: 'upstream-ready' }, SessionState.Ready, ['send-welcome']],
    ['an upstream failure is FATAL', SessionState.Connecting, { type: 'upstream-failed', code: 'CHAP_ERR_UPSTREAM_UNAVAILABLE', params: {} }, SessionState.Closed, ['fatal']],
    ['close from anywhere closes', SessionState.Ready, { type: 'closed' }, SessionState.Closed, ['close']],
    ['a password in startup state is unexpected', SessionState.Startup, { type: 'password', token: 't' }, SessionState.Closed, ['fatal']],
  ];
  for (const [name, state, ev, want, actions] of cases) {
    it(name, () => {
      const t = next(state, ev);
      assert.equal(t.state, want);
      assert.deepEqual(t.actions.map((a) => a.type), actions);
    });
  }
  it('never echoes the token in a fatal action', () => {
    const t = next(SessionState.Startup, { type: 'password', token: 'secret-token-value' });
    assert.ok(!JSON.stringify(t).includes('secret-token-value'));
  });
});

describe('route(code, discarding)', () => {
  const cases: [string, string, boolean, string][] = [
    ['Query is judged', 'Q', false, 'judge-query'],
    ['Parse is judged', 'P', false, 'judge-parse'],
    ['Bind is forwarded', 'B', false, 'forward'],
    ['Execute is forwarded', 'E', false, 'forward'],
    ['Describe is forwarded', 'D', false, 'forward'],
    ['CopyData is forwarded', 'd', false, 'forward'],
    ['Sync ends a batch', 'S', false, 'sync'],
    ['Sync ends a discarded batch too', 'S', true, 'sync'],
    ['after a refused Parse, Bind is discarded', 'B', true, 'discard'],
    ['after a refused Parse, Query is discarded (PostgreSQL skips it until Sync)', 'Q', true, 'discard'],
    ['FunctionCall is refused', 'F', false, 'refuse-function-call'],
    ["'p' after start-up is a violation", 'p', false, 'protocol-violation'],
    ['Terminate terminates', 'X', true, 'terminate'],
  ];
  for (const [name, code, discarding, want] of cases) it(name, () => assert.equal(route(R(code), discarding), want));
});
