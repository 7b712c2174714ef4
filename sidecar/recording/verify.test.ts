// Tamper tests: every single-byte edit, drop, swap, duplicate, truncation and forgery is caught (or, unsigned, honestly not).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { link, sha256Hex } from './chain.ts';
import { forgeAfter, recordToMemory, rechain, renumber, sampleSession } from './fixtures.ts';
import { extractRecord, verifyLines, type VerifyOptions, type VerifyResult } from './verify.ts';

const keys = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
let plain: string[] = [];
let signed: string[] = [];
const sealed = (): VerifyOptions => ({ publicKeys: [keys.publicKey], requireSealed: true });

before(async () => {
  plain = await recordToMemory(sampleSession('s1'));
  signed = await recordToMemory(sampleSession('s1'), { signing: { privateKey: keys.privateKey, everyLines: 3, everyMs: 0 } });
});

function fails(r: VerifyResult, what: string): void {
  assert.equal(r.ok, false, `${what} was not detected`);
}

/** A seeded PRNG (mulberry32) so a failing random case can be replayed. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function editByte(lines: readonly string[], i: number, j: number, xor: number): Uint8Array[] {
  return lines.map((l, k) => {
    const b = Buffer.from(l, 'utf8');
    if (k === i) b[j] = (b[j] ?? 0) ^ xor;
    return b;
  });
}

describe('whole recordings verify', () => {
  test('an unsigned recording verifies, with no signatures', () => {
    const r = verifyLines(plain);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.count, plain.length);
    assert.equal(r.signatures, 'none');
    assert.equal(r.streams[0]?.ended, true);
  });

  test('a signed, cleanly closed recording is fully sealed', () => {
    const r = verifyLines(signed, sealed());
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.unsealed, 0);
    assert.equal(r.signatures, 'checked');
    assert.ok((r.streams[0]?.checkpoints ?? 0) >= 3);
    assert.match(signed.at(-1) ?? '', /"type":"checkpoint"/);
  });

  test('pino log lines mixed in are skipped and counted', () => {
    const mixed = signed.flatMap((l, i) => [l, `{"level":30,"time":${i},"msg":"served"}`, 'plain text']);
    const r = verifyLines(mixed, sealed());
    assert.ok(r.ok);
    assert.equal(r.foreign, signed.length * 2);
  });

  test('kubectl logs --timestamps and --prefix prefixes are accepted', () => {
    const r = verifyLines(signed.map((l) => `[pod/agent-0/chaperone] 2025-01-01T00:00:00.123456789Z ${l}`), sealed());
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(extractRecord(`2025-01-01T00:00:00+02:00 ${signed[0]}`), signed[0]);
    assert.equal(extractRecord(`some log says ${signed[0]}`), null, 'an arbitrary prefix makes the line foreign');
  });

  test('an input without recording lines fails as empty', () => {
    const r = verifyLines(['{"level":30}', '']);
    assert.equal(r.ok ? '' : r.reason, 'empty');
  });

  test('a wrong public key fails with bad-signature', () => {
    const r = verifyLines(signed, { publicKeys: [other.publicKey] });
    assert.equal(r.ok ? '' : r.reason, 'bad-signature');
  });

  test('requireSealed without keys is a usage error', () => {
    assert.throws(() => verifyLines(signed, { requireSealed: true }), /needs publicKeys/);
  });
});

describe('single-byte edits', () => {
  test('signed: flipping any bit-0 of any byte of any line is detected', () => {
    for (let i = 0; i < signed.length; i++) {
      const len = Buffer.byteLength(signed[i] ?? '');
      for (let j = 0; j < len; j++) fails(verifyLines(editByte(signed, i, j, 1), sealed()), `edit line ${i} byte ${j}`);
    }
  });

  test('unsigned: any byte edit of any line but the last is detected', () => {
    for (let i = 0; i < plain.length - 1; i++) {
      const len = Buffer.byteLength(plain[i] ?? '');
      for (let j = 0; j < len; j++) {
        const r = verifyLines(editByte(plain, i, j, 1));
        fails(r, `edit line ${i} byte ${j}`);
        if (!r.ok) assert.ok(r.line === i + 1 || r.line === i + 2, `reported line ${r.line} for an edit of line ${i + 1}`);
      }
    }
  });

  test('unsigned: an edit of the last line that keeps it well-formed is NOT detected (the documented limit)', () => {
    const last = plain.at(-1) ?? '';
    const edited = [...plain.slice(0, -1), last.replace('"shutdown"', '"shutdowN"')];
    assert.notEqual(edited.at(-1), last);
    assert.equal(verifyLines(edited).ok, true);
  });

  test('re-spacing a line is non-canonical', () => {
    const r = verifyLines([...signed.slice(0, -1), (signed.at(-1) ?? '').replace(',"key"', ', "key"')], sealed());
    assert.equal(r.ok ? '' : r.reason, 'non-canonical');
  });
});

describe('dropped, reordered, duplicated and truncated lines', () => {
  test('dropping any line is detected (signed); unsigned, any but the last', () => {
    for (let i = 0; i < signed.length; i++) fails(verifyLines(signed.toSpliced(i, 1), sealed()), `drop signed line ${i}`);
    for (let i = 0; i < plain.length - 1; i++) fails(verifyLines(plain.toSpliced(i, 1)), `drop line ${i}`);
  });

  test('swapping any two lines is detected', () => {
    for (let i = 0; i < plain.length; i++) {
      for (let j = i + 1; j < plain.length; j++) {
        const s = [...plain];
        [s[i], s[j]] = [s[j] ?? '', s[i] ?? ''];
        fails(verifyLines(s), `swap ${i} and ${j}`);
      }
    }
  });

  test('a duplicate of any line, anywhere after it, is detected', () => {
    for (let i = 0; i < plain.length; i++) {
      for (let at = i + 1; at <= plain.length; at++) fails(verifyLines(plain.toSpliced(at, 0, plain[i] ?? '')), `dup ${i} at ${at}`);
    }
    const r = verifyLines(plain.toSpliced(3, 0, plain[2] ?? ''));
    assert.equal(r.ok ? '' : r.reason, 'duplicate');
  });

  test('cutting the last line anywhere is reported as truncated; a cut middle line as bad-json', () => {
    const last = plain.at(-1) ?? '';
    for (let n = 1; n < last.length; n++) {
      const r = verifyLines([...plain.slice(0, -1), last.slice(0, n)]);
      if (!last.slice(0, n).startsWith('{"chaperone":"rec/v1",')) continue; // too short to be a recording line: a dropped last line
      assert.equal(r.ok ? '' : r.reason, 'truncated', `cut at ${n}`);
      assert.equal(r.ok ? 0 : r.line, plain.length);
    }
    const mid = verifyLines(plain.with(4, (plain[4] ?? '').slice(0, 60)));
    assert.deepEqual(mid.ok ? null : [mid.reason, mid.line], ['bad-json', 5]);
  });

  test('a seq gap and a reorder name the reason', () => {
    const gap = verifyLines(plain.toSpliced(3, 1));
    assert.equal(gap.ok ? '' : gap.reason, 'seq-gap');
    const s = [...plain];
    [s[3], s[4]] = [s[4] ?? '', s[3] ?? ''];
    assert.equal(verifyLines(s).ok, false);
  });
});

describe('forgery', () => {
  test('unsigned: a forger who inserts a line and recomputes the chain is NOT detected (consistency, not authorship)', () => {
    const forged = forgeAfter(plain[2] ?? '', { text: 'SELECT 1 -- forged', cmd: 9, type: 'statement' });
    const lines = rechain(renumber(plain.toSpliced(3, 0, forged), 4, 1), 3);
    assert.equal(verifyLines(lines).ok, true);
  });

  test('signed: the same forgery fails the next checkpoint signature', () => {
    const forged = forgeAfter(signed[1] ?? '', { text: 'SELECT 1 -- forged' });
    const lines = rechain(renumber(signed.toSpliced(2, 0, forged), 3, 1), 2);
    const r = verifyLines(lines, sealed());
    // The inserted line also makes the run longer than the declared interval; either proof suffices.
    assert.ok(!r.ok && ['bad-signature', 'missing-checkpoint'].includes(r.reason), JSON.stringify(r));
  });

  test('signed: a forgery that keeps the checkpoint interval fails on the signature', () => {
    const at = signed.findIndex((l) => l.includes('"type":"session.start"'));
    const lines = rechain(signed.with(at, (signed[at] ?? '').replace('"identity":"agent-a"', '"identity":"agent-b"')), at + 1);
    const r = verifyLines(lines, sealed());
    assert.equal(r.ok ? '' : r.reason, 'bad-signature');
  });

  test('signed: removing a checkpoint and recomputing the chain is caught', () => {
    const at = signed.findIndex((l) => l.includes('"type":"checkpoint"'));
    const lines = rechain(renumber(signed.toSpliced(at, 1), at, -1), at);
    fails(verifyLines(lines, sealed()), 'removed checkpoint');
  });

  test('a whole forged stream (no key) passes only as unsealed, and fails when sealing is required', () => {
    const first = link('0'.repeat(64), { stream: 'forged', seq: 0, time: '2025-01-01T00:00:00.000Z', type: 'stream.start', reason: 'start', after: null, checkpoint: null });
    const fixed = { ...first, line: first.line.replace('0'.repeat(64), sha256Hex('chaperone/rec/v1 genesis forged')) };
    const second = link(sha256Hex(fixed.line), { stream: 'forged', seq: 1, time: '2025-01-01T00:00:01.000Z', type: 'policy.reload', ok: true, configHash: 'x' });
    const lines = [...signed, fixed.line, second.line];
    const loose = verifyLines(lines, { publicKeys: [keys.publicKey] });
    assert.ok(loose.ok && loose.unsealed === 2, JSON.stringify(loose));
    const strict = verifyLines(lines, sealed());
    assert.equal(strict.ok ? '' : strict.reason, 'missing-checkpoint');
  });
});

describe('streams and excerpts', () => {
  function follower(prevLines: readonly string[], id: string, afterIndex = prevLines.length - 1): string[] {
    const ref = JSON.parse(prevLines[afterIndex] ?? '{}') as { stream: string; seq: number };
    const after = { stream: ref.stream, seq: ref.seq, hash: sha256Hex(prevLines[afterIndex] ?? '') };
    const a = link(sha256Hex(`chaperone/rec/v1 genesis ${id}`), { stream: id, seq: 0, time: '2025-01-02T00:00:00.000Z', type: 'stream.start', reason: 'start', after, checkpoint: null });
    const b = link(a.hash, { stream: id, seq: 1, time: '2025-01-02T00:00:01.000Z', type: 'policy.reload', ok: true, configHash: 'c' });
    return [a.line, b.line];
  }

  test('a restart links to the previous stream and verifies', () => {
    const r = verifyLines([...plain, ...follower(plain, 'next')]);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.streams.length, 2);
    assert.equal(r.streams[0]?.successor, 'next');
  });

  test('a deleted end of the previous stream is a stream-gap, not a restart', () => {
    const r = verifyLines([...plain.slice(0, -2), ...follower(plain, 'next')]);
    assert.equal(r.ok ? '' : r.reason, 'stream-gap');
  });

  test('a line of the old stream after the new one took over is refused', () => {
    const next = follower(plain.slice(0, -1), 'next');
    const r = verifyLines([...plain.slice(0, -1), ...next, plain.at(-1) ?? '']);
    assert.equal(r.ok ? '' : r.reason, 'seq-reorder');
  });

  test('a stream following an earlier line reports the lines after it as unacknowledged', () => {
    const r = verifyLines([...plain, ...follower(plain, 'next', plain.length - 3)]);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.streams[0]?.unacknowledged, 2);
  });

  test('an excerpt from the middle needs allowPartialStart', () => {
    const r = verifyLines(signed.slice(4));
    assert.equal(r.ok ? '' : r.reason, 'missing-start');
    const p = verifyLines(signed.slice(4), { publicKeys: [keys.publicKey], allowPartialStart: true });
    assert.ok(p.ok && p.streams[0]?.partial, JSON.stringify(p));
  });
});

test('property: 400 random mutations of a signed recording are all detected', () => {
  const rand = rng(20250101);
  const kinds = ['byte', 'drop', 'swap', 'dup', 'insert'] as const;
  for (let n = 0; n < 400; n++) {
    const kind = kinds[rand(kinds.length)] ?? 'byte';
    const i = rand(signed.length);
    let lines: (string | Uint8Array)[] = [...signed];
    if (kind === 'byte') {
      const len = Buffer.byteLength(signed[i] ?? '');
      lines = editByte(signed, i, rand(len), 1 + rand(255));
    } else if (kind === 'drop') lines.splice(i, 1);
    else if (kind === 'swap') {
      const j = (i + 1 + rand(signed.length - 1)) % signed.length;
      [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
    } else if (kind === 'dup') lines.splice(i + 1 + rand(signed.length - i), 0, signed[i] ?? '');
    else lines.splice(i, 0, forgeAfter(signed[Math.max(0, i - 1)] ?? '', { seq: i }));
    fails(verifyLines(lines, sealed()), `mutation #${n} ${kind} at ${i}`);
  }
});

