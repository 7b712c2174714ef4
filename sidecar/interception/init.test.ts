// init-network's shell against a fake iptables: flags, resolution, fail-closed exits and the IPv6 decision (the netns test runs the real one).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SIDECAR_UID, initNetwork, parseAllow, parseInitArgs, type InitIo } from './init.ts';
import { FILTER_CHAIN, NAT_CHAIN, plannedChains } from './rules.ts';

const CONFIG = `
connections:
  - { name: db, protocol: postgres, listen: { port: 15432 }, upstream: { host: db.example, port: 5432 } }
`;

interface Fake extends InitIo {
  readonly stdout: string[];
  readonly stderr: string[];
  readonly applied: Record<4 | 6, string[]>;
}

interface FakeOptions {
  readonly config?: string;
  readonly addresses?: Readonly<Record<string, readonly string[]>>;
  readonly ipv6?: boolean;
  /** ip6tables missing (spawn ENOENT). */
  readonly noIp6tables?: boolean;
  /** The kernel keeps something other than what was applied. */
  readonly tamper?: boolean;
}

/** A fake kernel: restore records our chains (and the jump count); save prints them back. */
function fake(o: FakeOptions = {}): Fake {
  const state = { 4: { nat: [] as string[], filter: [] as string[], jumps: 0 }, 6: { nat: [] as string[], filter: [] as string[], jumps: 0 } };
  const f: Fake = {
    stdout: [],
    stderr: [],
    applied: { 4: [], 6: [] },
    readFile: (path) => {
      if (path === '/cfg') return o.config ?? CONFIG;
      if (path === '/resolv') return 'nameserver 10.96.0.10\nnameserver fd00::a\n';
      throw new Error(`ENOENT: ${path}`);
    },
    resolve: (host) => {
      const a = o.addresses?.[host] ?? (host === 'db.example' ? ['10.0.0.5'] : undefined);
      return a ? Promise.resolve([...a]) : Promise.reject(new Error('getaddrinfo ENOTFOUND'));
    },
    run(command, _args, input) {
      const family = command.startsWith('ip6') ? 6 : 4;
      if (family === 6 && o.noIp6tables) return { status: undefined, stdout: '', stderr: '', error: `spawnSync ${command} ENOENT` };
      const s = state[family];
      if (command.endsWith('-save')) {
        const jumps = (chain: string): string[] => new Array<string>(s.jumps).fill(`-A OUTPUT -j ${chain}`);
        const text = ['*nat', `:${NAT_CHAIN} - [0:0]`, ...jumps(NAT_CHAIN), ...s.nat, 'COMMIT', '*filter', `:${FILTER_CHAIN} - [0:0]`, ...jumps(FILTER_CHAIN), ...s.filter, 'COMMIT'].join('\n');
        return { status: 0, stdout: text, stderr: '' };
      }
      f.applied[family].push(input ?? '');
      const chains = plannedChains(input ?? '');
      s.nat = o.tamper ? chains.nat.slice(1) : chains.nat;
      s.filter = chains.filter;
      s.jumps += (input ?? '').includes('-I OUTPUT 1') ? 1 : 0;
      return { status: 0, stdout: '', stderr: '' };
    },
    hasIpv6: () => o.ipv6 ?? true,
    out: (t) => void f.stdout.push(t),
    err: (t) => void f.stderr.push(t),
  };
  return f;
}

const base = ['--config', '/cfg', '--resolv-conf', '/resolv'];

describe('init-network arguments', () => {
  it('defaults to the sidecar UID and no egress override', () => {
    const a = parseInitArgs(['--config', 'x'], {});
    assert.ok(!('error' in a));
    assert.equal(a.uid, DEFAULT_SIDECAR_UID);
    assert.equal(a.egressPolicy, undefined);
  });
  for (const [argv, want] of [
    [['--uid', 'abc'], /--uid "abc": want a numeric ID/],
    [['--egress', 'maybe'], /want allow or deny-by-default/],
    [['--allow', '10.0.0.0/33'], /prefix length/],
    [['--allow', '10.0.0.0/8:0'], /ports must be 1\.\.65535/],
    [['--bogus'], /unknown argument "--bogus"/],
    [['--config'], /--config needs a value/],
  ] as const) {
    it(`refuses ${argv.join(' ')}`, () => {
      const a = parseInitArgs(argv, {});
      assert.ok('error' in a);
      assert.match(a.error, want);
    });
  }
  it('parses --allow with and without ports, v4 and v6', () => {
    assert.deepEqual([parseAllow('10.0.0.0/8'), parseAllow('10.0.0.0/8:443,80'), parseAllow('fd00::/8:443'), parseAllow('10.1.2.3')], [
      { cidr: '10.0.0.0/8', ports: [] },
      { cidr: '10.0.0.0/8', ports: [443, 80] },
      { cidr: 'fd00::/8', ports: [443] },
      { cidr: '10.1.2.3', ports: [] },
    ]);
  });
  it('takes --x=value', () => {
    const a = parseInitArgs(['--config=/c', '--uid=1000', '--egress=deny-by-default'], {});
    assert.ok(!('error' in a));
    assert.deepEqual([a.config, a.uid, a.egressPolicy], ['/c', 1000, 'deny-by-default']);
  });
});

describe('init-network', () => {
  it('applies IPv4 and IPv6, verifies, and a second run adds no jump', async () => {
    const f = fake();
    assert.equal(await initNetwork(base, {}, f), 0, f.stderr.join(''));
    assert.equal(await initNetwork(base, {}, f), 0, f.stderr.join(''));
    assert.match(f.applied[4][0]!, /-I OUTPUT 1 -j CHAPERONE_OUTPUT/);
    assert.ok(!f.applied[4][1]!.includes('-I OUTPUT'));
    assert.deepEqual(plannedChains(f.applied[4][0]!), plannedChains(f.applied[4][1]!));
    assert.match(f.stderr.join(''), /applied and verified: IPv4 3 nat \+ 0 filter rules; IPv6 2 nat \+ 0 filter rules; egress allow/);
  });
  it('--dry-run prints exactly the restore input it would apply, and applies nothing', async () => {
    const f = fake();
    assert.equal(await initNetwork([...base, '--dry-run', '--egress', 'deny-by-default'], {}, f), 0);
    assert.deepEqual(f.applied, { 4: [], 6: [] });
    const printed = f.stdout.join('');
    const g = fake();
    assert.equal(await initNetwork([...base, '--egress', 'deny-by-default'], {}, g), 0);
    assert.equal(printed, `# IPv4: iptables-restore --noflush\n${g.applied[4][0]}# IPv6: ip6tables-restore --noflush\n${g.applied[6][0]}`);
    assert.match(printed, /-d 10\.96\.0\.10\/32 -p udp -m udp --dport 53 -j RETURN/);
  });
  it('an upstream name that does not resolve fails closed with nothing applied', async () => {
    const f = fake({ addresses: {}, config: CONFIG.replace('db.example', 'nowhere.example') });
    assert.equal(await initNetwork(base, {}, f), 1);
    assert.match(f.stderr.join(''), /cannot resolve upstream host nowhere\.example: getaddrinfo ENOTFOUND; .* nothing is applied/);
    assert.deepEqual(f.applied, { 4: [], 6: [] });
  });
  it('redirects every A and AAAA address of a name', async () => {
    const f = fake({ addresses: { 'db.example': ['10.0.0.5', '10.0.0.6', 'fd00::5'] } });
    assert.equal(await initNetwork(base, {}, f), 0);
    assert.equal(plannedChains(f.applied[4][0]!).nat.filter((r) => r.includes('REDIRECT')).length, 2);
    assert.equal(plannedChains(f.applied[6][0]!).nat.filter((r) => r.includes('REDIRECT')).length, 1);
  });
  it('fails when the kernel holds other rules than were applied', async () => {
    const f = fake({ tamper: true });
    assert.equal(await initNetwork(base, {}, f), 1);
    assert.match(f.stderr.join(''), /IPv4: the rules read back with iptables-save differ/);
  });
  it('a bad config fails closed naming the field', async () => {
    const f = fake({ config: 'connections: [{ name: db, protocol: postgres, upstream: { host: x } }]' });
    assert.equal(await initNetwork(base, {}, f), 1);
    assert.match(f.stderr.join(''), /\/cfg: connections\[0\] \(db\): listen\.port must be a port number/);
  });
});

describe('IPv6: skipped only when nothing needs guarding over it', () => {
  it('no IPv6 in the namespace: IPv4 only, with a message', async () => {
    const f = fake({ ipv6: false });
    assert.equal(await initNetwork([...base, '--egress', 'deny-by-default'], {}, f), 0);
    assert.deepEqual(f.applied[6], []);
    assert.match(f.stderr.join(''), /IPv6 skipped: this network namespace has no IPv6/);
  });
  it('ip6tables missing, egress allow, no IPv6 upstream: skipped with the reason', async () => {
    const f = fake({ noIp6tables: true });
    assert.equal(await initNetwork(base, {}, f), 0);
    assert.match(f.stderr.join(''), /IPv6 skipped \(ip6tables-save failed: spawnSync ip6tables-save ENOENT\); nothing needed guarding over IPv6/);
  });
  it('ip6tables missing with deny-by-default: exit 1 (the agent could go around over IPv6)', async () => {
    const f = fake({ noIp6tables: true });
    assert.equal(await initNetwork([...base, '--egress', 'deny-by-default'], {}, f), 1);
    assert.match(f.stderr.join(''), /IPv6 rules could not be applied .* and egress is deny-by-default: the agent could go around the sidecar over IPv6/);
  });
  it('ip6tables missing and an upstream has an IPv6 address: exit 1', async () => {
    const f = fake({ noIp6tables: true, addresses: { 'db.example': ['10.0.0.5', 'fd00::5'] } });
    assert.equal(await initNetwork(base, {}, f), 1);
    assert.match(f.stderr.join(''), /an upstream has an IPv6 address/);
  });
});

describe('chaperone-sidecar dispatches init-network', () => {
  const cli = fileURLToPath(new URL('../cli.ts', import.meta.url));
  const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
  const run = (args: string[]): { status: number | null; stdout: string; stderr: string } => spawnSync(node, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  it('init-network --help prints its usage; a bad flag exits 2; the sidecar usage names the subcommand', () => {
    const help = run(['init-network', '--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: chaperone-sidecar init-network --config FILE/);
    const bad = run(['init-network', '--frobnicate']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown argument "--frobnicate"/);
    const top = run(['--help']);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /chaperone-sidecar init-network --config FILE \[--dry-run\]/);
  });
});
