// The write-ahead recorder against real files and streams: ordering under concurrency, real I/O failures, fail-closed, recovery.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, createWriteStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import type { RecordEvent, StatementEvent } from '../../sidecar/recording/event.ts';
import { MemoryStream, sampleSession } from '../../sidecar/recording/fixtures.ts';
import { fileSink, streamSink, type Sink } from '../../sidecar/recording/sinks.ts';
import { verifyLines } from '../../sidecar/recording/verify.ts';
import { createRecorder } from '../../sidecar/recording/writer.ts';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'chap-rec-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const fileLines = (p: string): string[] => readFileSync(p, 'utf8').split('\n').filter(Boolean);
const parsed = (lines: readonly string[]): Record<string, unknown>[] => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

function stmt(session: string, cmd: number, text = `SELECT ${cmd}`): StatementEvent {
  return { type: 'statement', session, cmd, text, classification: { kinds: ['read'], tables: [], functions: [] }, decision: 'allow', rule: null, statementHash: 'c'.repeat(64) };
}

async function rejectsWith(p: Promise<unknown>, code: string, msg?: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error & { code?: string }) => {
    assert.equal(e.code, code, e.message);
    if (msg) assert.match(e.message, msg);
    return true;
  });
}

describe('ordering and group commit', () => {
  test('16 concurrent writers: every record lands once, in call order, file and stdout identical and verified', async () => {
    const path = join(dir, 'concurrent.jsonl');
    const out = new MemoryStream();
    const rec = await createRecorder({ sinks: [fileSink({ path }), streamSink(out, { name: 'stdout' })] });
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 40; i++) {
          const ref = await rec.record(stmt(`w${w}`, i));
          order.push(ref.seq);
        }
      }),
    );
    const stats = rec.stats();
    await rec.close();
    const lines = fileLines(path);
    assert.equal(readFileSync(path, 'utf8'), out.text(), 'stdout and the file carry the same bytes');
    const r = verifyLines(lines);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.count, 16 * 40 + 2);
    for (let w = 0; w < 16; w++) {
      const cmds = parsed(lines).filter((o) => o.session === `w${w}`).map((o) => o.cmd);
      assert.deepEqual(cmds, Array.from({ length: 40 }, (_, i) => i), `writer ${w} in order`);
    }
    assert.equal(new Set(order).size, 640);
    assert.ok(stats.batches < stats.lines, `group commit: ${stats.batches} batches for ${stats.lines} lines`);
    assert.equal(stats.sinks[`file:${path}`]?.syncs, stats.batches, 'one fdatasync per batch');
  });

  test('maxBatchLines 1 pays one write and fdatasync per event', async () => {
    const path = join(dir, 'each.jsonl');
    const rec = await createRecorder({ sinks: [fileSink({ path })], maxBatchLines: 1 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => rec.record(stmt('s', i))));
    const s = rec.stats();
    await rec.close();
    assert.equal(s.batches, 21);
    assert.equal(s.sinks[`file:${path}`]?.syncs, 21);
    assert.ok(verifyLines(fileLines(path)).ok);
  });
});

describe('real I/O failures fail closed', () => {
  test('a file on /dev/full (ENOSPC) refuses to start the recorder', async () => {
    await rejectsWith(createRecorder({ sinks: [fileSink({ path: '/dev/full' })] }), 'CHAP_ERR_RECORDING_FAILED', /ENOSPC/);
  });

  test('the recording directory removed: records reject and keep rejecting; restored, a new stream starts after the last acknowledged line', async () => {
    const sub = join(dir, 'vol');
    mkdirSync(sub);
    const path = join(sub, 'rec.jsonl');
    const rec = await createRecorder({ sinks: [fileSink({ path })], retryMs: 0 });
    const last = await rec.record(stmt('s', 1));
    rmSync(sub, { recursive: true });
    await rejectsWith(rec.record(stmt('s', 2)), 'CHAP_ERR_RECORDING_FAILED', /removed while open/);
    assert.equal(rec.health().ok, false);
    await rejectsWith(rec.record(stmt('s', 3)), 'CHAP_ERR_RECORDING_FAILED'); // recovery fails: the directory is gone
    await rejectsWith(rec.record(stmt('s', 4)), 'CHAP_ERR_RECORDING_FAILED');
    mkdirSync(sub);
    await rec.record(stmt('s', 5));
    assert.equal(rec.health().ok, true);
    await rec.close();
    const lines = parsed(fileLines(path));
    assert.equal(lines[0]?.type, 'stream.start');
    assert.equal(lines[0]?.reason, 'recovered');
    assert.equal(lines[0]?.error, 'ENOENT');
    assert.deepEqual(lines[0]?.after, last);
    assert.deepEqual(lines.filter((o) => o.type === 'statement').map((o) => o.cmd), [5]);
    assert.ok(verifyLines(fileLines(path)).ok);
  });

  test('the path swapped to /dev/full at runtime: the reopen hits ENOSPC and the recorder stays failed closed', async () => {
    const real = join(dir, 'real.jsonl');
    const link = join(dir, 'current.jsonl');
    writeFileSync(real, '');
    symlinkSync(real, link);
    const rec = await createRecorder({ sinks: [fileSink({ path: link })], retryMs: 0 });
    await rec.record(stmt('s', 1));
    unlinkSync(link);
    symlinkSync('/dev/full', link);
    await rejectsWith(rec.record(stmt('s', 2)), 'CHAP_ERR_RECORDING_FAILED', /replaced while open/);
    await rejectsWith(rec.record(stmt('s', 3)), 'CHAP_ERR_RECORDING_FAILED', /ENOSPC/);
    await rejectsWith(rec.record(stmt('s', 4)), 'CHAP_ERR_RECORDING_FAILED', /ENOSPC/);
    assert.equal(rec.health().ok, false);
    await rec.close();
    const r = verifyLines(fileLines(real));
    assert.ok(r.ok, JSON.stringify(r)); // the old file holds whole lines only
  });

  test('stdout on a closed fd (EBADF): the record rejects and the stream never recovers', async () => {
    const fd = openSync(join(dir, 'fd.jsonl'), 'a');
    const ws = createWriteStream('', { fd, autoClose: false });
    const rec = await createRecorder({ sinks: [streamSink(ws, { name: 'stdout' })], retryMs: 0 });
    await rec.record(stmt('s', 1));
    closeSync(fd);
    await rejectsWith(rec.record(stmt('s', 2)), 'CHAP_ERR_RECORDING_FAILED', /EBADF/);
    await rejectsWith(rec.record(stmt('s', 3)), 'CHAP_ERR_RECORDING_FAILED', /cannot be reopened/);
    await rec.close();
  });

  test('process.stdout on a pipe whose reader went away (EPIPE): the record rejects and stays failed', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const child = join(dir, 'epipe-child.mts');
    writeFileSync(
      child,
      [
        `import { createRecorder } from ${JSON.stringify(join(root, 'sidecar/recording/writer.ts'))};`,
        `import { streamSink } from ${JSON.stringify(join(root, 'sidecar/recording/sinks.ts'))};`,
        'const rec = await createRecorder({ sinks: [streamSink(process.stdout)], retryMs: 0 });',
        'for (let i = 0; i < 2000; i++) {',
        "  try { await rec.record({ type: 'policy.reload', ok: true, configHash: String(i) }); }",
        '  catch (e) {',
        '    process.stderr.write(`REJECTED ${e.code} ${e.message}\n`);',
        "    await rec.record({ type: 'policy.reload', ok: true, configHash: 'again' }).catch((e2) => process.stderr.write(`AGAIN ${e2.code} ${e2.message}\n`));",
        '    process.exit(3);',
        '  }',
        '  await new Promise((r) => setTimeout(r, 2));',
        '}',
        'process.exit(0);',
      ].join('\n'),
    );
    const p = spawn(process.execPath, ['--import', 'tsx', child], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let err = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.stdout.once('data', () => p.stdout.destroy()); // the reader goes away after the first line
    const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
    assert.equal(code, 3, err);
    assert.match(err, /REJECTED CHAP_ERR_RECORDING_FAILED .*EPIPE/);
    assert.match(err, /AGAIN CHAP_ERR_RECORDING_FAILED .*cannot be reopened/);
  });

  test('pino and the recorder sharing process.stdout (long log lines, concurrent) produce a stream that verifies', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const child = join(dir, 'pino-child.mts');
    writeFileSync(
      child,
      [
        `import pino from ${JSON.stringify(join(root, 'node_modules/pino/pino.js'))};`,
        `import { createRecorder } from ${JSON.stringify(join(root, 'sidecar/recording/writer.ts'))};`,
        `import { streamSink } from ${JSON.stringify(join(root, 'sidecar/recording/sinks.ts'))};`,
        'const log = pino({}, process.stdout);',
        'const rec = await createRecorder({ sinks: [streamSink(process.stdout)] });',
        "const big = 'x'.repeat(10_000);",
        'await Promise.all(Array.from({ length: 8 }, async (_, w) => {',
        '  for (let i = 0; i < 25; i++) {',
        '    log.info({ w, i, big }, "served");',
        "    await rec.record({ type: 'policy.reload', ok: true, configHash: `${w}-${i}` });",
        '  }',
        '}));',
        'await rec.close();',
      ].join('\n'),
    );
    const p = spawn(process.execPath, ['--import', 'tsx', child], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], timeout: 30_000 });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
    assert.equal(code, 0);
    const r = verifyLines(Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean));
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual([r.count, r.foreign], [202, 200]);
  });

  test('a failure of another required sink truncates the file back to its acknowledged bytes', async () => {
    const path = join(dir, 'trunc.jsonl');
    let failNext = false;
    const flaky: Sink = {
      name: 'flaky',
      required: true,
      open: () => Promise.resolve({ last: null, truncatedBytes: 0 }),
      write: () => (failNext ? ((failNext = false), Promise.reject(Object.assign(new Error('pipe broke'), { code: 'EPIPE' }))) : Promise.resolve()),
      ack: () => undefined,
      recover: () => Promise.resolve({ last: null, truncatedBytes: 0 }),
      close: () => Promise.resolve(),
      stats: () => ({ writes: 0, bytes: 0, syncs: 0 }),
    };
    const rec = await createRecorder({ sinks: [fileSink({ path }), flaky], retryMs: 0 });
    await rec.record(stmt('s', 1));
    failNext = true;
    await rejectsWith(rec.record(stmt('s', 2)), 'CHAP_ERR_RECORDING_FAILED', /EPIPE/);
    await rec.record(stmt('s', 3));
    await rec.close();
    const lines = parsed(fileLines(path));
    assert.deepEqual(lines.filter((o) => o.type === 'statement').map((o) => o.cmd), [1, 3], 'the refused statement is not in the file');
    const start = lines.find((o) => o.reason === 'recovered');
    assert.ok(typeof start?.truncatedBytes === 'number' && start.truncatedBytes > 0);
    const r = verifyLines(fileLines(path));
    assert.ok(r.ok && r.streams.length === 2 && r.streams[0]?.successor === r.streams[1]?.stream, JSON.stringify(r));
  });
});

describe('bounds', () => {
  test('the pending queue is capped: beyond it record rejects with backpressure, and the queued ones still land', async () => {
    const held: (() => void)[] = [];
    let holding = false;
    const slow = new Writable({
      write(_c, _e, cb): void {
        if (holding) held.push(() => cb());
        else cb();
      },
    });
    const rec = await createRecorder({ sinks: [streamSink(slow, { name: 'slow' })], maxPending: 4 });
    holding = true;
    const queued = [1, 2, 3, 4].map((i) => rec.record(stmt('s', i)));
    await rejectsWith(rec.record(stmt('s', 5)), 'CHAP_ERR_RECORDING_BACKPRESSURE');
    holding = false;
    for (const release of held.splice(0)) release();
    await Promise.all(queued);
    await rec.record(stmt('s', 6));
    await rec.close();
  });

  test('the mask hook runs on free text (not on ids) and long text is clipped below the line cap', async () => {
    const out = new MemoryStream();
    const rec = await createRecorder({ sinks: [streamSink(out)], mask: (s) => s.replaceAll('hunter2', '***'), maxLineBytes: 4000 });
    await rec.record({ ...stmt('s', 1, `SELECT 'hunter2' ${'x'.repeat(20_000)}`), statementHash: 'hunter2' });
    await rec.record({ ...sampleSession('s')[0], subject: 'user hunter2' } as RecordEvent);
    await rec.close();
    const [, s1, s2] = parsed(out.lines());
    assert.match(String(s1?.text), /^SELECT '\*\*\*' x+…\[\d+ more chars\]$/);
    assert.equal(s1?.statementHash, 'hunter2');
    assert.equal(s2?.subject, 'user ***');
    for (const l of out.lines()) assert.ok(Buffer.byteLength(l) <= 4000);
  });

  test('callers cannot write recorder-only lines', async () => {
    const rec = await createRecorder({ sinks: [streamSink(new MemoryStream())] });
    await rejectsWith(rec.record({ type: 'checkpoint', key: 'k', sig: 's' } as unknown as RecordEvent), 'CHAP_ERR_INTERNAL');
    await rec.close();
    await rejectsWith(rec.record(stmt('s', 1)), 'CHAP_ERR_RECORDING_CLOSED');
  });
});

describe('restarts and signing', () => {
  test('a restart on the same file (after a torn last line) links the new stream to the last whole line', async () => {
    const path = join(dir, 'restart.jsonl');
    const a = await createRecorder({ sinks: [fileSink({ path })] });
    for (const e of sampleSession('a')) await a.record(e);
    await a.close();
    const before = fileLines(path);
    appendFileSync(path, '{"chaperone":"rec/v1","stream":"x","se'); // a write that died half-way
    const b = await createRecorder({ sinks: [fileSink({ path })] });
    await b.record(stmt('b', 1));
    await b.close();
    const lines = fileLines(path);
    assert.deepEqual(lines.slice(0, before.length), before);
    const start = JSON.parse(lines[before.length] ?? '{}') as Record<string, unknown>;
    assert.equal(start.truncatedBytes, 38);
    const r = verifyLines(lines);
    assert.ok(r.ok && r.streams.length === 2 && r.streams[0]?.successor === start.stream, JSON.stringify(r));
    assert.ok(!verifyLines(lines.toSpliced(before.length - 1, 1)).ok, 'dropping the old stream.end is a stream-gap');
  });

  test('timed checkpoints seal idle streams; close seals the end; the agent cannot forge a line the key accepts', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const path = join(dir, 'signed.jsonl');
    const rec = await createRecorder({ sinks: [fileSink({ path })], signing: { privateKey, everyLines: 100, everyMs: 20 } });
    await rec.record(stmt('s', 1));
    for (let i = 0; i < 200 && !readFileSync(path, 'utf8').includes('"type":"checkpoint"'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(readFileSync(path, 'utf8'), /"type":"checkpoint"/, 'a timed checkpoint appeared');
    await rec.record(stmt('s', 2));
    await rec.close();
    const lines = fileLines(path);
    const r = verifyLines(lines, { publicKeys: [publicKey], requireSealed: true });
    assert.ok(r.ok, JSON.stringify(r));
    const other = generateKeyPairSync('ed25519');
    assert.equal(verifyLines(lines, { publicKeys: [other.publicKey] }).ok, false);
  });
});
