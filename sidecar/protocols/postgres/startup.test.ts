// Start-up decisions: which parameters reach the upstream and which start-ups are refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StartupMessage } from './messages.ts';
import { lexingDivergence, planStartup, startupRefusal } from './startup.ts';

function startup(params: Record<string, string>, minor = 0, major = 3): StartupMessage {
  return { name: 'startupMessage', protocolVersion: (major << 16) | minor, major, minor, parameters: new Map(Object.entries(params)) };
}

const id = { user: 'svc', database: 'app', readOnly: false };

describe('startup', () => {
  it('the sidecar sets user, database and client_encoding; the agent cannot pick them', () => {
    const p = planStartup(startup({ user: 'postgres', database: 'other', client_encoding: 'LATIN1', application_name: 'psql' }), id);
    assert.deepEqual([...p.upstream], [['user', 'svc'], ['database', 'app'], ['client_encoding', 'UTF8'], ['standard_conforming_strings', 'on'], ['application_name', 'psql']]);
    assert.deepEqual(p.dropped, []);
  });
  it('settings that could widen the session are dropped (options, role, search_path, replication)', () => {
    const p = planStartup(startup({ user: 'a', options: '-c default_transaction_read_only=off', role: 'postgres', search_path: 'evil', replication: 'database' }), id);
    assert.deepEqual(p.dropped, ['options', 'role', 'search_path', 'replication']);
    assert.ok(![...p.upstream.keys()].some((k) => ['options', 'role', 'search_path', 'replication'].includes(k)));
  });
  it('standard_conforming_strings is pinned on (a start-up setting outranks ALTER ROLE … SET); the client cannot turn it off', () => {
    const p = planStartup(startup({ standard_conforming_strings: 'off' }), id);
    assert.equal(p.upstream.get('standard_conforming_strings'), 'on');
  });
  it('lexingDivergence: a non-UTF-8 client_encoding or standard_conforming_strings off', () => {
    assert.equal(lexingDivergence('client_encoding', 'UTF8'), null);
    assert.equal(lexingDivergence('client_encoding', 'unicode'), null);
    assert.equal(lexingDivergence('standard_conforming_strings', 'on'), null);
    assert.equal(lexingDivergence('application_name', 'SJIS'), null);
    assert.equal(lexingDivergence('client_encoding', 'SJIS'), 'client_encoding=SJIS');
    assert.equal(lexingDivergence('standard_conforming_strings', 'off'), 'standard_conforming_strings=off');
  });
  it('read-only connections start upstream with default_transaction_read_only=on', () => {
    assert.equal(planStartup(startup({}), { ...id, readOnly: true }).upstream.get('default_transaction_read_only'), 'on');
  });
  it('a configured statement timeout overrides the client', () => {
    const p = planStartup(startup({ statement_timeout: '0' }), { ...id, statementTimeoutSeconds: 5 });
    assert.equal(p.upstream.get('statement_timeout'), '5000');
    assert.deepEqual(p.dropped, ['statement_timeout']);
  });
  it('protocol 3.2 and _pq_ options get NegotiateProtocolVersion', () => {
    const p = planStartup(startup({ '_pq_.x': '1' }, 2), id);
    assert.equal(p.negotiate, true);
    assert.deepEqual(p.unrecognizedOptions, ['_pq_.x']);
    assert.equal(planStartup(startup({}), id).negotiate, false);
  });
  it('refuses replication and non-3 protocols', () => {
    assert.match(startupRefusal(startup({ replication: 'true' })) ?? '', /replication/);
    assert.equal(startupRefusal(startup({ replication: 'false' })), null);
    assert.match(startupRefusal(startup({}, 0, 2)) ?? '', /protocol 2/);
    assert.equal(startupRefusal(startup({ user: 'x' })), null);
  });
});
