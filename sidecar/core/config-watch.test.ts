// Hot reload: in-place edits, a kubelet-style `..data` symlink swap, invalid-then-valid; bounded polling waits, no timing asserts.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config.ts';
import { watchConfig, type ConfigWatcher, type GoodConfig } from './config-watch.ts';
import type { ReloadResult } from './metrics.ts';

let dir = '';
let watcher: ConfigWatcher | undefined;

function configText(port: number, extra = ''): string {
  return `version: 1
identity:
  issuers: [{ issuer: https://idp.example.test, audiences: [chaperone] }]
connections:
  - name: db
    protocol: postgres
    listen: { port: ${port} }
    upstream: { host: 127.0.0.1, database: app, tls: { mode: disable } }
    credentials: { usernameFile: ${join(dir, 'user')}, passwordFile: ${join(dir, 'pass')} }
    access: { anyAuthenticated: true }
${extra}`;
}

/** Polls until `cond` holds; fails after `ms` (a bound, not a timing assertion). */
async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Harness {
  readonly applied: GoodConfig[];
  readonly results: ReloadResult[];
  readonly warnings: string[];
  port(): number;
}

function start(path: string): Harness {
  const initial = loadConfig(path);
  assert.ok(initial.ok);
  const h = { applied: [] as GoodConfig[], results: [] as ReloadResult[], warnings: [] as string[] };
  const log = { info: (): void => undefined, warn: (o: object, m: string): void => void h.warnings.push(`${m} ${JSON.stringify(o)}`), error: (): void => undefined };
  watcher = watchConfig({ path, initial, log, debounceMs: 50, pollIntervalMs: 60_000, metric: (r) => h.results.push(r), onApply: (next) => void h.applied.push(next) });
  const w = watcher;
  return { ...h, port: () => w.current().config.connections[0]!.listen.port };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chap-watch-'));
  writeFileSync(join(dir, 'user'), 'u');
  writeFileSync(join(dir, 'pass'), 'p');
});
afterEach(() => {
  watcher?.close();
  watcher = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** What kubelet does for a ConfigMap volume: `..<timestamp>` dirs, a `..data` symlink swapped by rename, and the key linked through it. */
function kubeletWrite(vol: string, stamp: string, text: string, previous: string | null): void {
  const ts = join(vol, `..${stamp}`);
  mkdirSync(ts);
  writeFileSync(join(ts, 'config.yaml'), text);
  symlinkSync(`..${stamp}`, join(vol, '..data_tmp'));
  renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
  if (previous === null) symlinkSync('..data/config.yaml', join(vol, 'config.yaml'));
  else rmSync(join(vol, `..${previous}`), { recursive: true });
}

describe('config hot reload', () => {
  it('given an in-place edit of a plain file, applies the new config', async () => {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, configText(15432));
    const h = start(path);
    writeFileSync(path, configText(15433));
    await until(() => h.port() === 15433, 'the edited port');
    assert.equal(h.applied.length, 1);
    assert.deepEqual(h.results, ['applied']);
    assert.equal(watcher?.degraded(), undefined);
  });

  it('given a kubelet-style ..data symlink swap, applies the new config', async () => {
    const vol = join(dir, 'vol');
    mkdirSync(vol);
    kubeletWrite(vol, '2026_01_01_00_00_00.000000001', configText(15432), null);
    const h = start(join(vol, 'config.yaml'));
    kubeletWrite(vol, '2026_01_01_00_01_00.000000002', configText(15434), '2026_01_01_00_00_00.000000001');
    await until(() => h.port() === 15434, 'the swapped-in port');
    // And a second swap, after the first: the watch survives the swap.
    kubeletWrite(vol, '2026_01_01_00_02_00.000000003', configText(15435), '2026_01_01_00_01_00.000000002');
    await until(() => h.port() === 15435, 'the second swap');
    assert.deepEqual(h.results, ['applied', 'applied']);
  });

  it('given an invalid config, keeps the last good one and reports degraded; a valid one clears it', async () => {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, configText(15432));
    const h = start(path);
    writeFileSync(path, configText(99999));
    await until(() => watcher?.degraded() !== undefined, 'degraded');
    const d = watcher!.degraded()!;
    assert.match(d.reason, /connections\[0\]\.listen\.port: must be <= 65535/);
    assert.equal(h.port(), 15432, 'still serving the last good config');
    assert.ok(h.warnings.some((w) => w.includes('keeping the last good config')));
    writeFileSync(path, configText(15436));
    await until(() => h.port() === 15436, 'the fixed config');
    assert.equal(watcher?.degraded(), undefined);
    assert.deepEqual(h.results, ['invalid', 'applied']);
  });

  it('given a rewrite with identical bytes, does nothing', async () => {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, configText(15432));
    const h = start(path);
    writeFileSync(path, configText(15432));
    assert.equal(await watcher!.reload(), 'unchanged');
    assert.equal(h.applied.length, 0);
  });

  it('given the file reverted to the config in use while degraded, clears degraded', async () => {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, configText(15432));
    start(path);
    writeFileSync(path, 'version: [');
    assert.equal(await watcher!.reload(), 'invalid');
    writeFileSync(path, configText(15432));
    assert.equal(await watcher!.reload(), 'unchanged');
    assert.equal(watcher!.degraded(), undefined);
  });

  it('given the file deleted, keeps serving and says why', async () => {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, configText(15432));
    const h = start(path);
    rmSync(path);
    assert.equal(await watcher!.reload(), 'invalid');
    assert.match(watcher!.degraded()!.reason, /ENOENT/);
    assert.equal(h.port(), 15432);
  });
});
