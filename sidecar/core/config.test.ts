// Config loader: valid examples load with their defaults; each class of invalid input is refused with the field's path.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfig, formatErrors, loadConfig, parseConfig, toFieldPath } from './config.ts';
import { DEFAULT_ADMIN_PORT, DEFAULT_MAX_MESSAGE_BYTES, type ConfigError, type LoadResult } from './config-types.ts';

let dir = '';
const f = (name: string): string => join(dir, name);

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'chap-config-'));
  for (const n of ['user', 'pass', 'token', 'hmac']) writeFileSync(f(n), `synthetic-${n}-${Math.random().toString(36).slice(2)}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

type Json = Record<string, unknown>;

function base(): Json {
  return {
    version: 1,
    identity: { issuers: [{ issuer: 'https://idp.example.test', audiences: ['chaperone'] }] },
    connections: [
      {
        name: 'db',
        protocol: 'postgres',
        listen: { port: 15432 },
        upstream: { host: '127.0.0.1', database: 'app', tls: { mode: 'disable' } },
        credentials: { usernameFile: f('user'), passwordFile: f('pass') },
        access: { allowedGroups: ['agents'] },
      },
    ],
  };
}

function conn(c: Json, i = 0): Json {
  return (c.connections as Json[])[i]!;
}

function errorsOf(r: LoadResult): readonly ConfigError[] {
  assert.equal(r.ok, false, 'expected the config to be refused');
  return r.ok ? [] : r.errors;
}

function check(v: unknown): LoadResult {
  return checkConfig(v, 'test-hash');
}

describe('valid configs', () => {
  it('given the minimal postgres config, fills every default', () => {
    const r = check(base());
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors).join('\n'));
    const c = r.config.connections[0]!;
    assert.equal(c.protocol, 'postgres');
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 15432 });
    assert.equal(c.limits.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
    assert.deepEqual(c.access, { allowedGroups: ['agents'], allowedSubjects: [], anyAuthenticated: false });
    assert.deepEqual(c.masking, {});
    if (c.protocol === 'postgres') {
      assert.equal(c.upstream.port, 5432);
      assert.deepEqual(c.policy.sql, { default: 'allow' });
    }
    assert.equal(r.config.admin.port, DEFAULT_ADMIN_PORT);
    assert.equal(r.config.approvals.backend, 'none');
    assert.equal(r.config.recording.stdout, true);
    assert.equal(r.config.log.level, 'info');
    assert.ok(r.sqlPolicies.has('db'));
    assert.ok(Object.isFrozen(r.config.connections[0]), 'the loaded config is immutable');
  });

  it('given readOnly, adds the read-only pack to the SQL policy', () => {
    const c = base();
    conn(c).readOnly = true;
    conn(c).policy = { sql: { packs: ['no-ddl'] } };
    const r = check(c);
    assert.ok(r.ok);
    const pg = r.config.connections[0]!;
    assert.ok(pg.protocol === 'postgres' && pg.policy.sql.packs?.includes('read-only') && pg.policy.sql.packs.includes('no-ddl'));
  });

  it('given the same config as YAML and as JSON, loads both alike', () => {
    const json = JSON.stringify(base());
    const yaml = `version: 1
identity:
  issuers:
    - issuer: https://idp.example.test
      audiences: [chaperone]
connections:
  - name: db
    protocol: postgres
    listen: { port: 15432 }
    upstream: { host: 127.0.0.1, database: app, tls: { mode: disable } }
    credentials: { usernameFile: ${f('user')}, passwordFile: ${f('pass')} }
    access: { allowedGroups: [agents] }
`;
    const a = parseConfig(json);
    const b = parseConfig(yaml);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(a.config, b.config);
    assert.notEqual(a.hash, b.hash, 'the hash is of the file bytes');
  });

  it('given http and kubernetes connections with every credential kind, accepts them', () => {
    const c = base();
    const conns = c.connections as Json[];
    conns.push(
      { name: 'gh', protocol: 'http', listen: { port: 18080 }, upstream: { url: 'https://api.example.test' }, credentials: { type: 'bearer', tokenFile: f('token') }, access: { anyAuthenticated: true } },
      { name: 'hdr', protocol: 'http', listen: { port: 18081 }, upstream: { url: 'http://127.0.0.1:9' }, credentials: { type: 'header', headerName: 'X-Api-Key', tokenFile: f('token') } },
      { name: 'basic', protocol: 'http', listen: { port: 18082 }, upstream: { url: 'http://127.0.0.1:9' }, credentials: { type: 'basic', usernameFile: f('user'), passwordFile: f('pass') } },
      { name: 'kube', protocol: 'kubernetes', listen: { port: 16443 }, credentials: { tokenFile: f('token') }, readOnly: true },
    );
    const r = check(c);
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors).join('\n'));
    const kube = r.config.connections[4]!;
    assert.ok(kube.protocol === 'kubernetes' && kube.upstream.url === 'https://kubernetes.default.svc');
  });

  it('given an hmac replacement with a key file, compiles the masking options without reading the key', () => {
    const c = base();
    conn(c).masking = { hmacKeyFile: f('hmac'), replacement: { kind: 'hmac', length: 16 }, fieldRules: [{ id: 'pw', names: ['*password*'] }] };
    const r = check(c);
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors).join('\n'));
  });

  it('given checkFiles false (the operator, without the Secrets), skips file checks only', () => {
    const c = base();
    conn(c).credentials = { usernameFile: '/nonexistent/u', passwordFile: '/nonexistent/p' };
    assert.ok(checkConfig(c, 'h', { checkFiles: false }).ok);
    assert.equal(check(c).ok, false);
  });
});

interface Case {
  readonly name: string;
  readonly edit: (c: Json) => void;
  readonly path: string;
  readonly message: RegExp;
}

const CASES: readonly Case[] = [
  { name: 'a port out of range', edit: (c) => ((conn(c).listen as Json).port = 70000), path: 'connections[0].listen.port', message: /must be <= 65535/ },
  { name: 'a port of the wrong type', edit: (c) => ((conn(c).listen as Json).port = '5432'), path: 'connections[0].listen.port', message: /must be integer/ },
  { name: 'an unknown top-level field (typo)', edit: (c) => (c.conections = []), path: 'conections', message: /unknown field; expected one of version, identity, connections/ },
  { name: 'an unknown nested field', edit: (c) => ((conn(c).upstream as Json).hots = 'x'), path: 'connections[0].upstream.hots', message: /unknown field; expected one of host, port, database, tls/ },
  { name: 'a misspelled access field', edit: (c) => (conn(c).access = { allowedGroup: ['agents'] }), path: 'connections[0].access.allowedGroup', message: /unknown field/ },
  { name: 'a missing required block', edit: (c) => delete c.identity, path: 'identity', message: /is required/ },
  { name: 'a missing required field', edit: (c) => delete (conn(c).upstream as Json).database, path: 'connections[0].upstream.database', message: /is required/ },
  { name: 'the wrong version', edit: (c) => (c.version = 2), path: 'version', message: /must be 1/ },
  { name: 'an unknown protocol', edit: (c) => (conn(c).protocol = 'ftp'), path: 'connections[0].protocol', message: /postgres.*http.*kubernetes/ },
  { name: 'an unknown TLS mode', edit: (c) => ((conn(c).upstream as Json).tls = { mode: 'prefer' }), path: 'connections[0].upstream.tls.mode', message: /must be one of "disable", "require", "verify-full"/ },
  { name: 'a refused algorithm', edit: (c) => (c.identity = { issuers: [{ issuer: 'https://idp.example.test', audiences: ['a'], algorithms: ['HS256'] }] }), path: 'identity.issuers[0].algorithms[0]', message: /must be one of/ },
  { name: 'an issuer without audiences', edit: (c) => (c.identity = { issuers: [{ issuer: 'https://idp.example.test', audiences: [] }] }), path: 'identity.issuers[0].audiences', message: /must NOT have fewer than 1 items/ },
  { name: 'an issuer that is not a URL', edit: (c) => (c.identity = { issuers: [{ issuer: 'idp', audiences: ['a'] }] }), path: 'identity.issuers[0].issuer', message: /not an absolute URL/ },
  { name: 'duplicate connection names', edit: (c) => (c.connections as Json[]).push({ ...conn(c), listen: { port: 15433 } }), path: 'connections[1].name', message: /already the name of connections\[0\]/ },
  { name: 'duplicate listen ports', edit: (c) => (c.connections as Json[]).push({ ...conn(c), name: 'db2' }), path: 'connections[1].listen.port', message: /already used by connections\[0\]\.listen\.port/ },
  { name: 'a listen port equal to the admin port', edit: (c) => (c.admin = { port: 15432 }), path: 'connections[0].listen.port', message: /already used by admin\.port/ },
  { name: 'a missing credential file', edit: (c) => ((conn(c).credentials as Json).passwordFile = f('nope')), path: 'connections[0].credentials.passwordFile', message: /does not exist; mount the Secret/ },
  { name: 'a directory instead of a file', edit: (c) => ((conn(c).credentials as Json).passwordFile = dir), path: 'connections[0].credentials.passwordFile', message: /not a regular file/ },
  { name: 'both credential forms', edit: (c) => ((conn(c).credentials as Json).urlFile = f('pass')), path: 'connections[0].credentials', message: /either urlFile or usernameFile/ },
  { name: 'half a credential pair', edit: (c) => delete (conn(c).credentials as Json).passwordFile, path: 'connections[0].credentials', message: /needs usernameFile and passwordFile/ },
  { name: 'a credential value instead of a file', edit: (c) => ((conn(c).credentials as Json).password = 'x'), path: 'connections[0].credentials.password', message: /unknown field; expected one of usernameFile, passwordFile, urlFile/ },
  { name: 'an unknown SQL pack', edit: (c) => (conn(c).policy = { sql: { packs: ['read-olny'] } }), path: 'connections[0].policy.sql.packs[0]', message: /unknown pack "read-olny"/ },
  { name: 'a misspelled SQL policy field', edit: (c) => (conn(c).policy = { sql: { defualt: 'deny' } }), path: 'connections[0].policy.sql.defualt', message: /unknown field/ },
  { name: 'a bad SQL rule action', edit: (c) => (conn(c).policy = { sql: { rules: [{ id: 'r', action: 'block' }] } }), path: 'connections[0].policy.sql.rules[0].action', message: /must be one of allow, deny, require-approval/ },
  { name: 'an unknown masking detector', edit: (c) => (conn(c).masking = { detectors: ['no-such-detector'] }), path: 'connections[0].masking.detectors[0]', message: /unknown detector/ },
  { name: 'a non-RE2 masking pattern', edit: (c) => (conn(c).masking = { customPatterns: [{ id: 'p', pattern: '(a)\\1' }] }), path: 'connections[0].masking.customPatterns[0]', message: /not valid RE2/ },
  { name: 'an hmac replacement without a key file', edit: (c) => (conn(c).masking = { replacement: { kind: 'hmac' } }), path: 'connections[0].masking.replacement', message: /needs hmacKey/ },
  { name: 'a misspelled masking field', edit: (c) => (conn(c).masking = { detector: ['all'] }), path: 'connections[0].masking.detector', message: /unknown field/ },
  { name: 'an http bearer credential without its file', edit: (c) => (c.connections = [{ name: 'api', protocol: 'http', listen: { port: 1 }, upstream: { url: 'https://x.test' }, credentials: { type: 'bearer' } }]), path: 'connections[0].credentials.tokenFile', message: /is required/ },
  { name: 'an unknown http credential type', edit: (c) => (c.connections = [{ name: 'api', protocol: 'http', listen: { port: 1 }, upstream: { url: 'https://x.test' }, credentials: { type: 'oauth' } }]), path: 'connections[0].credentials.type', message: /bearer/ },
  { name: 'an http upstream without a scheme', edit: (c) => (c.connections = [{ name: 'api', protocol: 'http', listen: { port: 1 }, upstream: { url: 'x.test' }, credentials: { type: 'none' } }]), path: 'connections[0].upstream.url', message: /must match pattern/ },
  { name: 'a client cert without its key', edit: (c) => ((conn(c).upstream as Json).tls = { mode: 'verify-full', certFile: f('token') }), path: 'connections[0].upstream.tls', message: /certFile and keyFile go together/ },
  { name: 'no recording sink', edit: (c) => (c.recording = { stdout: false }), path: 'recording', message: /must record somewhere/ },
  { name: 'a recording file in a missing directory', edit: (c) => (c.recording = { file: { path: '/nonexistent-dir/rec.jsonl' } }), path: 'recording.file.path', message: /does not exist or is not writable/ },
  { name: 'local approvals without approvers', edit: (c) => (c.approvals = { backend: 'local' }), path: 'admin.approverGroups', message: /at least one approver group/ },
  { name: 'a bad connection name', edit: (c) => (conn(c).name = 'My DB'), path: 'connections[0].name', message: /must match pattern/ },
  { name: 'an unknown log level', edit: (c) => (c.log = { level: 'verbose' }), path: 'log.level', message: /must be one of/ },
];

describe('invalid configs name the field', () => {
  for (const t of CASES) {
    it(`given ${t.name}, refuses at ${t.path}`, () => {
      const c = base();
      t.edit(c);
      const errors = errorsOf(check(c));
      const hit = errors.find((e) => e.path === t.path);
      assert.ok(hit, `no error at ${t.path}; got:\n${formatErrors(errors).join('\n')}`);
      assert.match(hit.message, t.message);
    });
  }

  it('given several mistakes, reports all of them', () => {
    const c = base();
    c.typo = 1;
    (conn(c).listen as Json).port = -1;
    const errors = errorsOf(check(c));
    assert.ok(errors.length >= 2, formatErrors(errors).join('\n'));
  });

  it('given broken YAML or JSON, says so', () => {
    assert.match(errorsOf(parseConfig('version: [1'))[0]!.message, /not valid YAML/);
    assert.match(errorsOf(parseConfig('{"version": 1,'))[0]!.message, /not valid JSON/);
    assert.match(errorsOf(parseConfig('a: 1\na: 2\n'))[0]!.message, /not valid YAML/);
  });

  it('given a missing file, names it', () => {
    assert.match(errorsOf(loadConfig(f('missing.yaml')))[0]!.message, /cannot read .*missing\.yaml: ENOENT/);
  });

  it('never puts a credential file\'s contents in an error', () => {
    const c = base();
    conn(c).policy = { sql: { packs: ['nope'] } };
    (conn(c).listen as Json).port = 99999;
    c.recording = { stdout: false };
    const text = JSON.stringify(errorsOf(check(c)));
    assert.doesNotMatch(text, /synthetic-/);
  });
});

describe('toFieldPath', () => {
  const table: readonly [string, string][] = [
    ['', ''],
    ['/version', 'version'],
    ['/connections/1/upstream/port', 'connections[1].upstream.port'],
    ['/connections/0/masking/replacements/a~1b', 'connections[0].masking.replacements["a/b"]'],
  ];
  for (const [pointer, path] of table) it(`given ${JSON.stringify(pointer)}, returns ${JSON.stringify(path)}`, () => assert.equal(toFieldPath(pointer), path));
});

describe('examples', () => {
  it('examples/standalone/sidecar.yaml is a valid config (files aside: they are the user\'s)', () => {
    const text = readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'standalone', 'sidecar.yaml'), 'utf8');
    const r = parseConfig(text, { checkFiles: false });
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors).join('\n'));
  });
});

describe('listener TLS and session limits', () => {
  it('given listen.tls with cert and key, required defaults to false; the new limits default to 0 (off)', () => {
    const c = base();
    (conn(c).listen as Json).tls = { certFile: f('user'), keyFile: f('pass') };
    const r = check(c);
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors).join('\n'));
    assert.deepEqual(r.config.connections[0]!.listen.tls, { certFile: f('user'), keyFile: f('pass'), required: false });
    assert.equal(r.config.connections[0]!.limits.idleInTransactionTimeoutSeconds, 0);
    assert.equal(r.config.connections[0]!.limits.maxSessionSeconds, 0);
  });
  it('given listen.tls without keyFile, names the field', () => {
    const c = base();
    (conn(c).listen as Json).tls = { certFile: f('user') };
    assert.ok(errorsOf(check(c)).some((e) => e.path.startsWith('connections[0].listen.tls')), 'the path names listen.tls');
  });
  it('given listen.tls on a missing file, refuses with the file path', () => {
    const c = base();
    (conn(c).listen as Json).tls = { certFile: f('nope.crt'), keyFile: f('pass') };
    assert.ok(errorsOf(check(c)).some((e) => e.path === 'connections[0].listen.tls.certFile'));
  });
  it('given listen.tls on an http connection, refuses it (postgres only)', () => {
    const c = base();
    (c.connections as Json[]).push({ name: 'api', protocol: 'http', listen: { port: 18080, tls: { certFile: f('user'), keyFile: f('pass') } }, upstream: { url: 'https://api.example.test' }, credentials: { type: 'none' }, access: { anyAuthenticated: true } });
    assert.ok(errorsOf(check(c)).some((e) => e.path === 'connections[1].listen.tls' && e.message.includes('postgres')));
  });
});
