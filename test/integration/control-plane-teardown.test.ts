// Teardown of the test environments when their process ends badly: Ctrl-C, uncaught error, failing test, SIGTERM, SIGKILL.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { processesMentioning, sweepStale } from '../env/tempdir.ts';
import { eventually } from '../env/wait.ts';

const NODE = process.execPath;
const CHILD = fileURLToPath(new URL('../cluster/fixtures/teardown-child.ts', import.meta.url));
const FAILING = fileURLToPath(new URL('../cluster/fixtures/failing.fixture.ts', import.meta.url));
const CHILD_TIMEOUT_MS = 150_000;

interface Outcome {
  readonly dir: string;
  readonly daemons: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

/** Runs a child, waits for its READY line, optionally signals it, and returns how it ended. */
function runChild(args: readonly string[], signal?: NodeJS.Signals): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    // Without NODE_TEST_CONTEXT the child's own `--test` runs for real instead of deferring to us.
    const env: NodeJS.ProcessEnv = { ...process.env, CHAPERONE_TEST_CLUSTER: '' };
    delete env['NODE_TEST_CONTEXT'];
    const child = spawn(NODE, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    let dir = '';
    let daemons = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child ${args.join(' ')} did not finish in ${CHILD_TIMEOUT_MS} ms:\n${output}`));
    }, CHILD_TIMEOUT_MS);
    const onData = (c: Buffer): void => {
      output += c.toString();
      const m = /READY (\{.*\})/.exec(output);
      if (m && dir === '') {
        dir = (JSON.parse(m[1]!) as { dir: string }).dir;
        daemons = processesMentioning(dir).length;
        if (signal !== undefined) child.kill(signal);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (dir === '') reject(new Error(`child ended before READY (code ${code}):\n${output}`));
      else resolve({ dir, daemons, code, signal: sig, output });
    });
  });
}

async function assertNothingLeft(o: Outcome): Promise<void> {
  // A parent-death signal is delivered asynchronously: give the kernel a moment.
  await eventually(() => Promise.resolve(processesMentioning(o.dir).length === 0 ? true : undefined), {
    what: () => `no process mentioning ${o.dir} (left: ${JSON.stringify(processesMentioning(o.dir))})`,
    timeoutMs: 10_000,
  });
  assert.equal(existsSync(o.dir), false, `${o.dir} is removed`);
}

describe('test environment teardown', () => {
  it('Ctrl-C (SIGINT) stops etcd and kube-apiserver and removes the temp dir', async () => {
    const o = await runChild([CHILD, 'cp', 'wait'], 'SIGINT');
    assert.equal(o.daemons, 2, 'etcd and kube-apiserver were running');
    assert.equal(o.code, 130, o.output);
    await assertNothingLeft(o);
  });

  it('an uncaught exception still kills the daemons and removes the temp dir (exit hook)', async () => {
    const o = await runChild([CHILD, 'cp', 'throw']);
    assert.equal(o.daemons, 2);
    assert.notEqual(o.code, 0);
    assert.match(o.output, /synthetic uncaught error/);
    await assertNothingLeft(o);
  });

  it('a failing node:test file with a shared control plane leaves nothing behind', async () => {
    const o = await runChild(['--test', '--test-reporter=tap', FAILING]);
    assert.equal(o.daemons, 2);
    assert.equal(o.code, 1, 'the runner reports the failure');
    assert.match(o.output, /this failure is the point of the fixture/);
    await assertNothingLeft(o);
  });

  it('SIGTERM stops postgres and removes its temp dir', async () => {
    const o = await runChild([CHILD, 'pg', 'wait'], 'SIGTERM');
    assert.ok(o.daemons >= 1, 'the postmaster was running');
    assert.equal(o.code, 143, o.output);
    await assertNothingLeft(o);
  });

  it('SIGKILL: the daemons die with their parent and the next start sweeps the temp dir', async () => {
    const o = await runChild([CHILD, 'pg', 'wait'], 'SIGKILL');
    assert.equal(o.signal, 'SIGKILL');
    await eventually(() => Promise.resolve(processesMentioning(o.dir).length === 0 ? true : undefined), { what: 'postgres to die with its parent', timeoutMs: 10_000 });
    assert.equal(existsSync(o.dir), true, 'nobody could remove the dir yet');
    assert.ok(sweepStale('chaperone-pg-').includes(o.dir));
    assert.equal(existsSync(o.dir), false);
  });
});
