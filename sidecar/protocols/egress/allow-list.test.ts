// Allow-list matching: exact hosts, *.suffix wildcards, IP literals only when listed, default and listed ports.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalHost, compileAllowList, matchHost, type AllowEntry } from './allow-list.ts';

function entries(list: Parameters<typeof compileAllowList>[0]): readonly AllowEntry[] {
  const r = compileAllowList(list);
  assert.ok(r.ok, JSON.stringify(r));
  return r.entries;
}

const LIST = entries([
  { host: 'api.github.com' },
  { host: '*.npmjs.org', ports: [443, 8443] },
  { host: '10.0.0.7', ports: [8080] },
  { host: 'fd00::7', ports: [443] },
  { host: 'Plain.Example.COM.', ports: [80, 443] },
]);

describe('canonicalHost', () => {
  for (const [raw, want, why] of [
    ['API.GitHub.com.', 'api.github.com', 'lower case, no trailing dot'],
    ['0x7f.1', '127.0.0.1', 'obfuscated IPv4 becomes dotted quad'],
    ['2130706433', '127.0.0.1', 'a decimal IPv4 becomes dotted quad'],
    ['[FD00::0007]', 'fd00::7', 'IPv6 canonical, brackets dropped'],
    ['fd00::7', 'fd00::7', 'bare IPv6'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', 'punycode stays'],
    ['bücher.example', 'xn--bcher-kva.example', 'IDN becomes punycode'],
  ] as const) {
    it(`given ${raw}, returns ${want} (${why})`, () => assert.equal(canonicalHost(raw), want));
  }
  for (const raw of ['', 'a b', 'user@host', 'host/path', 'under_score.example', '-bad.example', 'host%2f']) {
    it(`refuses ${JSON.stringify(raw)}`, () => assert.equal(canonicalHost(raw), undefined));
  }
});

describe('compileAllowList', () => {
  it('refuses a wildcard over an IP, a top-level wildcard and junk, naming the index', () => {
    const r = compileAllowList([{ host: 'ok.example' }, { host: '*.10.0.0.1' }, { host: '*.com' }, { host: 'a b' }]);
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.errors.map((e) => e.path), ['allow[1].host', 'allow[2].host', 'allow[3].host']);
  });
  it('names each rule by index and entry', () => {
    assert.equal(LIST[1]?.rule, 'egress.allow[1] *.npmjs.org:443,8443');
    assert.equal(LIST[3]?.rule, 'egress.allow[3] [fd00::7]:443');
  });
});

describe('matchHost', () => {
  const cases: [string, number, 'connect' | 'http', string, string][] = [
    ['api.github.com', 443, 'connect', 'ok', 'exact host, CONNECT default port 443'],
    ['api.github.com', 80, 'http', 'ok', 'exact host, plain HTTP default port 80'],
    ['api.github.com', 80, 'connect', 'port-not-allowed', 'CONNECT default is 443 only'],
    ['api.github.com', 22, 'connect', 'port-not-allowed', 'ssh through CONNECT is refused'],
    ['github.com', 443, 'connect', 'host-not-allowed', 'the apex of an exact entry is another host'],
    ['evil-api.github.com', 443, 'connect', 'host-not-allowed', 'exact means exact'],
    ['registry.npmjs.org', 8443, 'connect', 'ok', 'wildcard with a listed port'],
    ['a.b.npmjs.org', 443, 'connect', 'ok', 'wildcard matches deeper subdomains'],
    ['npmjs.org', 443, 'connect', 'host-not-allowed', 'a wildcard does not match its apex'],
    ['evilnpmjs.org', 443, 'connect', 'host-not-allowed', 'suffix match is on a label boundary'],
    ['10.0.0.7', 8080, 'connect', 'ok', 'a listed IP literal'],
    ['10.0.0.8', 8080, 'connect', 'ip-not-listed', 'an unlisted IP literal'],
    ['fd00::7', 443, 'connect', 'ok', 'a listed IPv6 literal'],
    ['plain.example.com', 80, 'http', 'ok', 'entry host was canonicalized'],
  ];
  for (const [host, port, mode, want, why] of cases) {
    it(`given ${host}:${port} (${mode}), returns ${want}: ${why}`, () => {
      const d = matchHost(LIST, host, port, mode);
      assert.equal(d.ok ? 'ok' : d.reason, want);
    });
  }
});
