// Red-team regressions: disguised, oversized and reordered lines, cut tails, restarts, and hostile text in reports.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { link, sha256Hex } from './chain.ts';
import { recordToMemory, refOf, sampleSession } from './fixtures.ts';
import { renderListing, renderTimeline, replayText } from './replay.ts';
import { formatReport, MAX_LINE, verifyStream } from './verify-cli.ts';
import { verifyLines, type VerifyOptions, type VerifyResult } from './verify.ts';

const keys = generateKeyPairSync('ed25519');
const signing = { privateKey: keys.privateKey, everyLines: 3, everyMs: 0 };
const sealed: VerifyOptions = { publicKeys: [keys.publicKey], requireSealed: true };
let plain: string[] = [];
let signed: string[] = [];

before(async () => {
  plain = await recordToMemory(sampleSession('s1'));
  signed = await recordToMemory(sampleSession('s1'), { signing });
});

const reason = (r: VerifyResult): string => (r.ok ? 'ok' : r.reason);
const checkpoints = (lines: readonly string[]): number[] => lines.flatMap((l, i) => (l.includes('"type":"checkpoint"') ? [i] : []));

/** Input split into 64 KiB chunks, as a file or a pipe delivers it. */
function chunked(text: string): Readable {
  const b = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += 65_536) parts.push(b.subarray(i, i + 65_536));
  return Readable.from(parts);
}

describe('a recording line cannot be disguised as a skippable log line', () => {
  for (const [what, prefix] of [
    ['a UTF-8 BOM', '\uFEFF'],
    ['a space', ' '],
    ['a pino-like prefix', '{"level":30} '],
    ['a bogus kubectl prefix', 'pod/x '],
  ] as const) {
    test(`${what} before the last line (the deletion of the final checkpoint) fails bad-field`, () => {
      const r = verifyLines([...signed.slice(0, -1), prefix + (signed.at(-1) ?? '')], { publicKeys: [keys.publicKey] });
      assert.equal(reason(r), 'bad-field');
      assert.equal(r.ok ? 0 : r.line, signed.length);
      const u = verifyLines([...plain.slice(0, -1), prefix + (plain.at(-1) ?? '')]);
      assert.equal(reason(u), 'bad-field', 'unsigned too: the last line is not silently dropped');
    });
  }

  test('blank lines and real log lines are still skipped', () => {
    const r = verifyLines(signed.flatMap((l) => [l, '', '{"level":30,"msg":"x"}']), sealed);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.foreign, signed.length * 2);
  });

  test('CRLF line endings fail as non-canonical and say so', () => {
    const r = verifyLines(signed.map((l) => `${l}\r`), sealed);
    assert.equal(reason(r), 'non-canonical');
    assert.match(r.ok ? '' : r.message, /CRLF/);
  });
});

describe('overlong lines (CLI and plugin streaming)', () => {
  test('a recording line padded past the size limit fails (it used to vanish without a count)', async () => {
    const lines = [...plain];
    lines[lines.length - 1] = (lines.at(-1) ?? '') + ' '.repeat(MAX_LINE + 300_000);
    const r = await verifyStream(chunked(lines.join('\n') + '\n'), {});
    assert.equal(reason(r), 'bad-field');
    assert.equal(r.ok ? 0 : r.line, lines.length);
  });

  test('an overlong log line is skipped, counted, and line numbers after it stay right', async () => {
    const lines = ['x'.repeat(MAX_LINE + 300_000), ...plain];
    const ok = await verifyStream(chunked(lines.join('\n') + '\n'), {});
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.foreign, 1);
    lines[4] = `${lines[4] ?? ''}x`;
    const bad = await verifyStream(chunked(lines.join('\n') + '\n'), {});
    assert.equal(bad.ok ? 0 : bad.line, 5);
  });

  test('an unterminated overlong last line carrying the marker fails', async () => {
    const r = await verifyStream(chunked(plain.join('\n') + '\n' + (plain.at(-1) ?? '') + ' '.repeat(MAX_LINE + 300_000)), {});
    assert.equal(reason(r), 'bad-field');
  });
});

describe('cut tails', () => {
  test('a recording cut right after a valid checkpoint: whole up to the cut, reported as an open tail, refused with requireClosed', () => {
    const cut = signed.slice(0, (checkpoints(signed)[0] ?? 0) + 1);
    const r = verifyLines(cut, sealed);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.streams[0]?.open, true);
    assert.ok(r.warnings.some((w) => w.startsWith('open tail:')), r.warnings.join('\n'));
    assert.match(formatReport(r, 'x'), /1 open \(no stream\.end/);
    const closed = verifyLines(cut, { ...sealed, requireClosed: true });
    assert.equal(reason(closed), 'unended');
    assert.equal(closed.ok ? 0 : closed.line, cut.length);
  });

  test('a cleanly closed recording passes requireClosed; its stream.end is sealed by the last checkpoint', () => {
    const r = verifyLines(signed, { ...sealed, requireClosed: true });
    assert.ok(r.ok && r.streams[0]?.open === false, JSON.stringify(r));
    const noFinal = verifyLines(signed.slice(0, -1), sealed);
    assert.equal(reason(noFinal), 'missing-checkpoint');
    assert.match(noFinal.ok ? '' : noFinal.message, /^unsealed tail/);
  });

  test('unsigned output says the chain proves consistency, not authorship', () => {
    assert.match(formatReport(verifyLines(plain), 'x'), /not who wrote them/);
  });
});

describe('restarts and reordered streams', () => {
  let crashed: string[] = [];
  let next: string[] = [];

  before(async () => {
    crashed = await recordToMemory(sampleSession('a'), { signing, close: false });
    next = await recordToMemory(sampleSession('b'), { signing, after: refOf(crashed, crashed.length - 1), firstStream: 1 });
  });

  test('a crashed stream followed by its restart is sealed through the successor\'s signed link', () => {
    assert.ok(checkpoints(crashed).at(-1) !== crashed.length - 1, 'the crashed stream ends unsealed');
    assert.equal(reason(verifyLines(crashed, sealed)), 'missing-checkpoint');
    const r = verifyLines([...crashed, ...next], { ...sealed, requireClosed: true });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.unsealed, 0);
  });

  test('lines after the line the successor names stay unsealed (they were never acknowledged)', async () => {
    const early = await recordToMemory(sampleSession('b'), { signing, after: refOf(crashed, crashed.length - 2), firstStream: 1 });
    const r = verifyLines([...crashed, ...early], sealed);
    assert.equal(reason(r), 'missing-checkpoint');
    assert.equal(r.ok ? 0 : r.line, crashed.length);
  });

  test('without the signature of the successor, nothing is sealed through it', async () => {
    const unsignedNext = await recordToMemory(sampleSession('b'), { after: refOf(crashed, crashed.length - 1), firstStream: 1 });
    assert.equal(reason(verifyLines([...crashed, ...unsignedNext], sealed)), 'missing-checkpoint');
  });

  test('moving the successor before a predecessor cut at a checkpoint no longer hides the cut', () => {
    const cut = crashed.slice(0, (checkpoints(crashed)[0] ?? 0) + 1);
    assert.equal(reason(verifyLines([...cut, ...next], sealed)), 'stream-gap');
    const r = verifyLines([...next, ...cut], sealed);
    assert.equal(reason(r), 'seq-reorder');
    assert.equal(r.ok ? 0 : r.line, next.length + 1);
  });

  test('two streams claiming the same absent predecessor fail; a lone successor warns that its predecessor is missing', async () => {
    const twin = await recordToMemory(sampleSession('c'), { signing, after: refOf(crashed, crashed.length - 1), firstStream: 7 });
    assert.equal(reason(verifyLines([...next, ...twin], sealed)), 'chain-broken');
    const alone = verifyLines(next, sealed);
    assert.ok(alone.ok && alone.warnings.some((w) => /which is not in this input/.test(w)), JSON.stringify(alone));
  });
});

/** What must never reach a terminal from recorded text: C0 (but \\n), DEL, C1, bidi controls. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('hostile text', () => {
  const genesisOf = (id: string): string => sha256Hex(`chaperone/rec/v1 genesis ${id}`);

  test('stream.start fields that end up in messages are validated (key id, predecessor id)', () => {
    const bad = [
      { after: null, checkpoint: { key: '\u001b[2Jkey', everyLines: 3, everyMs: 0 } },
      { after: { stream: '\u001b]0;x\u0007', seq: 1, hash: 'a'.repeat(64) }, checkpoint: null },
      { after: { stream: 'ok', seq: -1, hash: 'a'.repeat(64) }, checkpoint: null },
    ];
    for (const b of bad) {
      const l = link(genesisOf('s'), { stream: 's', seq: 0, time: '2025-01-01T00:00:00.000Z', type: 'stream.start', reason: 'start', ...b });
      assert.equal(reason(verifyLines([l.line])), 'bad-field', JSON.stringify(b));
    }
  });

  test('verify reports escape control characters', () => {
    const text = formatReport({ ok: false, line: 1, reason: 'bad-field', message: 'a \u001b[2J b \u202e c', count: 0 }, 'f\u0007');
    assert.doesNotMatch(text, CONTROL);
    assert.match(text, /\\u001b\[2J/);
  });

  test('replay and sessions show escape sequences, CR and bidi overrides as visible escapes', async () => {
    const s = 's1';
    const lines = await recordToMemory([
      { type: 'session.start', session: s, identity: 'id\u001b]0;pwn\u0007', subject: 'sub\u202eevil', groups: ['g\u001b[31m'], pod: 'ns/p\r', client: '1.2.3.4:5', connection: 'c\u0000', protocol: 'postgres' },
      { type: 'statement', session: s, cmd: 1, text: 'SELECT \u001b[31mred\u001b[0m \u2066x', classification: { kinds: ['read'], tables: [], functions: [] }, decision: 'allow', rule: 'r\u001b[1m', reason: 'why\u0007', statementHash: 'a'.repeat(64) },
      { type: 'result', session: s, cmd: 1, rows: null, bytes: 0, masked: { 'd\u001b': 1 }, durationMs: 1, error: 'e\u001b[0m', sqlState: 'X\u001b' },
      { type: 'session.end', session: s, reason: 'r\u009b', summary: { commands: 1, denied: 0, approvals: 0, rows: 0, bytes: 0, masked: {}, durationMs: 1 } },
    ]);
    const c = replayText(lines.join('\n'));
    const timeline = renderTimeline(c.sessions()[0] ?? assert.fail('no session'));
    const listing = renderListing(c.list());
    for (const out of [timeline, listing]) {
      assert.doesNotMatch(out, CONTROL, out);
    }
    assert.match(timeline, /\\u001b\[31mred/);
    assert.ok(renderListing([{ ...c.list()[0]!, subject: 'x'.repeat(10_000) }]).length < 1000, 'long cells are clipped');
  });
});
