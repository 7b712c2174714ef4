// Rule builder, address spelling and config reading of transparent interception (pure; the netns test applies them for real).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, listensOn, parseCidr, formatCidr } from './addr.ts';
import { parseResolvConf, readInterceptionConfig } from './config.ts';
import { FILTER_CHAIN, NAT_CHAIN, filterRules, natRules, parseSave, planRedirects, plannedChains, restoreInput, type RulePlan, type Target } from './rules.ts';

const pg: Target = { connection: 'appdb', host: '10.0.0.5', port: 5432, listenHost: '127.0.0.1', listenPort: 15432 };
const api: Target = { connection: 'api', host: 'api.internal', port: 443, listenHost: '127.0.0.1', listenPort: 18080 };

function plan(over: Partial<RulePlan> = {}): RulePlan {
  const p = planRedirects([pg, api], new Map([['api.internal', ['10.0.0.9', 'fd00::9']]]), 9901);
  return { sidecarUid: 65532, adminPort: 9901, redirects: p.redirects, egress: { policy: 'allow', allowDNS: true, dnsServers: [], allow: [] }, ...over };
}

describe('addresses are spelled the way iptables-save prints them', () => {
  for (const [input, want] of [
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['10.1.2.3', '10.1.2.3/32'],
    ['FD00:0:0::1/64', 'fd00::/64'],
    ['fd00:1:2:3:4:5:6:7/48', 'fd00:1:2::/48'],
    ['::ffff:10.0.0.1/128', '::ffff:10.0.0.1/128'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.255.255.255/9', '10.128.0.0/9'],
  ] as const) {
    it(`${input} → ${want}`, () => assert.equal(formatCidr(parseCidr(input)), want));
  }
  for (const bad of ['10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0.0/8/1', '10.0.0.0/x']) {
    it(`refuses ${bad}`, () => assert.throws(() => parseCidr(bad), /CIDR|prefix length/));
  }
  it('canonicalizes v6 addresses', () => assert.equal(canonicalIp('FD00:0000::0001'), 'fd00::1'));
  it('REDIRECT reaches 127.0.0.1 / ::1 listeners and wildcards only', () => {
    assert.deepEqual(
      [listensOn('127.0.0.1', 4), listensOn('127.0.0.1', 6), listensOn('0.0.0.0', 4), listensOn('::', 6), listensOn('::1', 6), listensOn('127.0.0.2', 4), listensOn('localhost', 6)],
      [true, false, true, true, true, false, true],
    );
  });
});

describe('planRedirects', () => {
  it('redirects every resolved address of a name, per family, sorted', () => {
    const p = plan();
    assert.deepEqual(p.redirects.map((r) => `${r.connection} ${r.family} ${r.address}:${r.port}->${r.toPort}`), ['appdb 4 10.0.0.5:5432->15432', 'api 4 10.0.0.9:443->18080', 'api 6 fd00::9:443->18080']);
  });
  it('an unresolved name is an error: the agent could reach it unguarded', () => {
    const p = planRedirects([api], new Map(), 9901);
    assert.match(p.errors.join(), /api\.internal resolved to no address; the agent could reach it unguarded/);
  });
  it('an upstream on one of the sidecar\'s own loopback ports would loop', () => {
    const p = planRedirects([{ ...pg, host: '127.0.0.1', port: 9901 }], new Map(), 9901);
    assert.match(p.errors.join(), /own loopback ports; redirecting it would loop/);
  });
  it('two connections cannot guard the same address:port', () => {
    const p = planRedirects([pg, { ...pg, connection: 'other', listenPort: 15433 }], new Map(), 9901);
    assert.match(p.errors.join(), /appdb and other both guard 10\.0\.0\.5:5432/);
  });
  it('warns that an IPv6 address redirected to a 127.0.0.1-only listener is refused (fail closed)', () => {
    const p = planRedirects([api], new Map([['api.internal', ['fd00::9']]]), 9901);
    assert.match(p.warnings.join(), /\[fd00::9\]:443 are redirected to \[::1\]:18080, where the sidecar does not listen/);
    assert.equal(p.errors.length, 0);
  });
  it('no warning when the sidecar relays [::1] (interception.mode transparent): the IPv6 redirect is served', () => {
    const p = planRedirects([api], new Map([['api.internal', ['fd00::9']]]), 9901, true);
    assert.deepEqual(p.warnings, []);
    assert.equal(p.redirects.length, 1);
  });
  it('a listener without a fixed port cannot be a redirect target', () => {
    assert.match(planRedirects([{ ...pg, listenPort: 0 }], new Map(), 9901).errors.join(), /not a fixed port/);
  });
});

describe('nat rules', () => {
  it('exempt the sidecar UID first, return loopback, then redirect each guarded address:port', () => {
    assert.deepEqual(natRules(plan(), 4), [
      `-A ${NAT_CHAIN} -m owner --uid-owner 65532 -j RETURN`,
      `-A ${NAT_CHAIN} -o lo -j RETURN`,
      `-A ${NAT_CHAIN} -d 10.0.0.5/32 -p tcp -m tcp --dport 5432 -j REDIRECT --to-ports 15432`,
      `-A ${NAT_CHAIN} -d 10.0.0.9/32 -p tcp -m tcp --dport 443 -j REDIRECT --to-ports 18080`,
    ]);
    assert.deepEqual(natRules(plan(), 6).at(-1), `-A ${NAT_CHAIN} -d fd00::9/128 -p tcp -m tcp --dport 443 -j REDIRECT --to-ports 18080`);
  });
  it('an upstream on loopback is redirected before loopback returns', () => {
    const p = { ...plan(), redirects: planRedirects([{ ...pg, host: '127.0.0.1', port: 5433 }], new Map(), 9901).redirects };
    assert.deepEqual(natRules(p, 4).slice(1), [`-A ${NAT_CHAIN} -d 127.0.0.1/32 -p tcp -m tcp --dport 5433 -j REDIRECT --to-ports 15432`, `-A ${NAT_CHAIN} -o lo -j RETURN`]);
  });
  it('with --gid the GID is exempt too', () => {
    assert.equal(natRules(plan({ sidecarGid: 65532 }), 4)[1], `-A ${NAT_CHAIN} -m owner --gid-owner 65532 -j RETURN`);
  });
});

describe('filter rules (deny-by-default)', () => {
  it('are empty when egress is allow', () => assert.deepEqual(filterRules(plan(), 4), []));
  it('allow the sidecar, kernel packets, loopback, replies, DNS to the resolvers, the allow list; reset TCP and refuse the rest', () => {
    const p = plan({ egress: { policy: 'deny-by-default', allowDNS: true, dnsServers: ['10.96.0.10', 'fd00::a', '127.0.0.53'], allow: [{ cidr: '10.1.0.0/16', ports: [443, 80, 443] }, { cidr: 'fd00:1::/64', ports: [] }] } });
    assert.deepEqual(filterRules(p, 4), [
      `-A ${FILTER_CHAIN} -m owner --uid-owner 65532 -j RETURN`,
      `-A ${FILTER_CHAIN} -m owner ! --socket-exists -j RETURN`,
      `-A ${FILTER_CHAIN} -o lo -j RETURN`,
      `-A ${FILTER_CHAIN} -d 127.0.0.0/8 -j RETURN`,
      `-A ${FILTER_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
      `-A ${FILTER_CHAIN} -d 10.96.0.10/32 -p udp -m udp --dport 53 -j RETURN`,
      `-A ${FILTER_CHAIN} -d 10.96.0.10/32 -p tcp -m tcp --dport 53 -j RETURN`,
      `-A ${FILTER_CHAIN} -d 10.1.0.0/16 -p tcp -m multiport --dports 80,443 -j RETURN`,
      `-A ${FILTER_CHAIN} -p tcp -j REJECT --reject-with tcp-reset`,
      `-A ${FILTER_CHAIN} -j REJECT --reject-with icmp-port-unreachable`,
    ]);
    const v6 = filterRules(p, 6);
    assert.ok(v6.includes(`-A ${FILTER_CHAIN} -d ::1/128 -j RETURN`));
    assert.ok(v6.includes(`-A ${FILTER_CHAIN} -d fd00::a/128 -p udp -m udp --dport 53 -j RETURN`));
    assert.ok(v6.includes(`-A ${FILTER_CHAIN} -d fd00:1::/64 -j RETURN`));
    assert.equal(v6.at(-1), `-A ${FILTER_CHAIN} -j REJECT --reject-with icmp6-port-unreachable`);
  });
  it('without allowDNS no port 53 rule exists', () => {
    const p = plan({ egress: { policy: 'deny-by-default', allowDNS: false, dnsServers: ['10.96.0.10'], allow: [] } });
    assert.ok(!filterRules(p, 4).some((r) => r.includes('--dport 53')));
  });
  it('more than 15 ports split into several multiport rules', () => {
    const ports = Array.from({ length: 16 }, (_, i) => 1000 + i);
    const p = plan({ egress: { policy: 'deny-by-default', allowDNS: false, dnsServers: [], allow: [{ cidr: '10.0.0.0/8', ports }] } });
    const multi = filterRules(p, 4).filter((r) => r.includes('multiport'));
    assert.equal(multi.length, 2);
    assert.match(multi[1]!, /--dports 1015 -j RETURN$/);
  });
});

describe('restoreInput is idempotent by construction', () => {
  it('declares (= flushes) both chains and adds the jumps only when missing', () => {
    const first = restoreInput(plan(), 4, { nat: 0, filter: 0 });
    assert.match(first, /^\*nat\n:CHAPERONE_OUTPUT - \[0:0\]\n-I OUTPUT 1 -j CHAPERONE_OUTPUT\n/);
    const again = restoreInput(plan(), 4, { nat: 1, filter: 1 });
    assert.ok(!again.includes('OUTPUT 1') && !again.includes('-D OUTPUT'));
    assert.deepEqual(plannedChains(first), plannedChains(again));
  });
  it('removes duplicate jumps', () => {
    assert.match(restoreInput(plan(), 4, { nat: 3, filter: 1 }), /-D OUTPUT -j CHAPERONE_OUTPUT\n-D OUTPUT -j CHAPERONE_OUTPUT\n-A/);
  });
});

describe('parseSave', () => {
  it('reads our chains and jump counts out of iptables-save output', () => {
    const text = ['*filter', ':OUTPUT ACCEPT [0:0]', `:${FILTER_CHAIN} - [0:0]`, `-A OUTPUT -j ${FILTER_CHAIN}`, 'COMMIT', '*nat', `:${NAT_CHAIN} - [0:0]`, `-A OUTPUT -j ${NAT_CHAIN}`, `-A OUTPUT -j ${NAT_CHAIN}`, `-A ${NAT_CHAIN} -o lo -j RETURN`, 'COMMIT'].join('\n');
    assert.deepEqual(parseSave(text), { nat: [`-A ${NAT_CHAIN} -o lo -j RETURN`], filter: [], jumps: { nat: 2, filter: 1 } });
  });
  it('absent chains are undefined', () => assert.deepEqual(parseSave('*nat\nCOMMIT\n'), { nat: undefined, filter: undefined, jumps: { nat: 0, filter: 0 } }));
});

describe('readInterceptionConfig', () => {
  it('reads upstreams, listeners, defaults and the interception section', () => {
    const r = readInterceptionConfig(`
connections:
  - { name: db, protocol: postgres, listen: { port: 15432 }, upstream: { host: db.svc } }
  - { name: api, protocol: http, listen: { port: 18080, host: 0.0.0.0 }, upstream: { url: "http://[FD00::1]/v1" } }
  - { name: kube, protocol: kubernetes, listen: { port: 16443 } }
admin: { port: 9902 }
interception: { egress: { policy: deny-by-default, allow: [{ cidr: 10.0.0.0/8, ports: [443] }] } }
`);
    assert.ok(r.ok);
    assert.deepEqual(r.config.targets, [
      { connection: 'db', host: 'db.svc', port: 5432, listenHost: '127.0.0.1', listenPort: 15432 },
      { connection: 'api', host: 'fd00::1', port: 80, listenHost: '0.0.0.0', listenPort: 18080 },
      { connection: 'kube', host: 'kubernetes.default.svc', port: 443, listenHost: '127.0.0.1', listenPort: 16443 },
    ]);
    assert.equal(r.config.adminPort, 9902);
    assert.deepEqual(r.config.egress, { policy: 'deny-by-default', allowDNS: true, allow: [{ cidr: '10.0.0.0/8', ports: [443] }] });
  });
  for (const [name, text, want] of [
    ['no connections', 'version: 1', /lists no connections/],
    ['not YAML', '{ [', /not YAML or JSON/],
    ['no listen port', 'connections: [{ name: db, protocol: postgres, upstream: { host: x } }]', /db\): listen\.port must be a port number/],
    ['bad upstream url', 'connections: [{ name: a, protocol: http, listen: { port: 1 }, upstream: { url: ftp://x } }]', /upstream\.url must be an http\(s\) URL/],
    ['bad egress policy', 'connections: [{ name: a, protocol: kubernetes, listen: { port: 1 } }]\ninterception: { egress: { policy: maybe } }', /egress\.policy: "maybe"/],
    ['unknown protocol', 'connections: [{ name: a, protocol: redis, listen: { port: 1 } }]', /unknown protocol "redis"/],
  ] as const) {
    it(`fails closed on ${name}`, () => {
      const r = readInterceptionConfig(text);
      assert.ok(!r.ok);
      assert.match(r.errors.join('; '), want);
    });
  }
  it('parses resolv.conf nameservers', () => assert.deepEqual(parseResolvConf('search x\nnameserver 10.96.0.10\n  nameserver fe80::1%eth0\n#nameserver 1.1.1.1\n'), ['10.96.0.10', 'fe80::1']));
});
