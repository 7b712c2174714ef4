// The streaming body masker: every split of the input gives the same output as the whole; units are emitted as soon as they complete.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createMasker } from '../../masking/index.ts';
import { JsonValueScanner, MaskingTransform, modeFor, sseEventEnd, UnmaskableError, type BodyMode } from './mask-body.ts';

const masker = createMasker({});
const GH = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'.slice(0, 36);

function runChunks(mode: BodyMode, chunks: Buffer[], extra: { maxUnitBytes?: number } = {}): { out: string; emitted: number[] } {
  const t = new MaskingTransform({ mode, masker, ...extra });
  const parts: Buffer[] = [];
  const emitted: number[] = [];
  t.on('data', (b: Buffer) => parts.push(b));
  for (const c of chunks) {
    t.write(c);
    emitted.push(Buffer.concat(parts).length);
  }
  t.end();
  return { out: Buffer.concat(parts).toString('utf8'), emitted };
}

function splitAt(s: string, i: number): Buffer[] {
  const b = Buffer.from(s);
  return [b.subarray(0, i), b.subarray(i)];
}

describe('MaskingTransform', () => {
  const modes: [BodyMode, string][] = [
    ['text', `hello ${GH} world\nmore text`],
    ['json', JSON.stringify({ a: GH, b: [1, 2, { c: `x ${GH}` }] })],
    ['lines', `${JSON.stringify({ t: GH })}\n${JSON.stringify({ n: 2 })}\nplain ${GH}\n`],
    ['sse', `event: a\ndata: ${GH}\n\nid: 2\ndata: {"x":"${GH}"}\r\n\r\ndata: tail ${GH}`],
    ['objects', `${JSON.stringify({ type: 'ADDED', object: { a: GH, s: '}{"\\' } }, null, 2)}\n{"type":"MODIFIED","object":{"b":"${GH}"}}{"n":[1,{"c":"]"}]}\n`],
  ];
  for (const [mode, input] of modes) {
    it(`${mode}: every two-way split masks like the whole input`, () => {
      const whole = runChunks(mode, [Buffer.from(input)]).out;
      assert.ok(!whole.includes(GH), whole);
      for (let i = 1; i < Buffer.byteLength(input); i++) assert.equal(runChunks(mode, splitAt(input, i)).out, whole, `split at ${i}`);
    });
  }
  it('sse: an event is emitted when its blank line arrives, not at the end of the stream', () => {
    const r = runChunks('sse', [Buffer.from('data: one\n\n'), Buffer.from('data: tw'), Buffer.from('o\n\n')]);
    assert.deepEqual(r.emitted, [11, 11, 22]);
  });
  it('lines: a line is emitted when its newline arrives', () => {
    const r = runChunks('lines', [Buffer.from('{"a":1}\n{"b"'), Buffer.from(':2}\n')]);
    assert.deepEqual(r.emitted, [8, 16]);
  });
  it('json over the limit falls back to stream masking (overflow: stream)', () => {
    const doc = JSON.stringify({ a: 'x'.repeat(300), t: GH });
    const r = runChunks('json', splitAt(doc, 100), { maxUnitBytes: 64 });
    assert.ok(!r.out.includes(GH));
  });
  it('json over the limit with overflow: fail ends in an UnmaskableError', async () => {
    const t = new MaskingTransform({ mode: 'json', masker, maxUnitBytes: 64, overflow: 'fail' });
    const failed = once(t, 'error');
    t.write(Buffer.from(JSON.stringify({ a: 'x'.repeat(300) })));
    const [e] = (await failed) as [Error];
    assert.ok(e instanceof UnmaskableError);
  });
});

describe('sseEventEnd', () => {
  it('finds LF and CRLF blank lines', () => {
    assert.equal(sseEventEnd(Buffer.from('data: a\n\nrest'), 0), 9);
    assert.equal(sseEventEnd(Buffer.from('data: a\r\n\r\nrest'), 0), 11);
    assert.equal(sseEventEnd(Buffer.from('data: a\n'), 0), -1);
  });
  // A server using lone CRs (allowed by the SSE grammar) had every event held until 8 MiB piled up.
  it('finds lone-CR and mixed blank lines; a trailing CR that may be half a CRLF waits', () => {
    assert.equal(sseEventEnd(Buffer.from('data: a\r\rrest'), 0), 9);
    assert.equal(sseEventEnd(Buffer.from('data: a\r\n\nrest'), 0), 10);
    assert.equal(sseEventEnd(Buffer.from('data: a\n\r\nrest'), 0), 10);
    assert.equal(sseEventEnd(Buffer.from('data: a\r\r\nrest'), 0), 10);
    assert.equal(sseEventEnd(Buffer.from('data: a\r'), 0), -1);
    assert.equal(sseEventEnd(Buffer.from('data: a\rdata: b\r'), 0), -1);
  });
  it('sse: lone-CR events go out one by one, split at every byte', () => {
    const text = `data: one ${GH}\r\rdata: two\r\r`;
    const whole = runChunks('sse', [Buffer.from(text)]).out;
    assert.ok(!whole.includes(GH), whole);
    for (let i = 1; i < text.length; i++) assert.equal(runChunks('sse', splitAt(text, i)).out, whole, `split at ${i}`);
    const first = Buffer.from(`data: one\r\r`);
    const r = runChunks('sse', [first, Buffer.from('data: t')]);
    assert.equal(r.emitted[0], first.length, 'the first event went out before the second arrived');
  });
});

describe('media bodies', () => {
  // image/svg+xml is XML text; any media label on a text body was passed through unscanned.
  it('text under a media label is masked (split at every byte); binary bytes pass through unchanged', () => {
    const text = `not a picture ${GH}`;
    const whole = runChunks('media', [Buffer.from(text)]).out;
    assert.ok(!whole.includes(GH), whole);
    for (let i = 1; i < text.length; i++) assert.equal(runChunks('media', splitAt(text, i)).out, whole, `split at ${i}`);
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]), Buffer.from(`IHDR ${'x'.repeat(600)}`)]);
    const t = new MaskingTransform({ mode: 'media', masker });
    const parts: Buffer[] = [];
    t.on('data', (b: Buffer) => parts.push(b));
    t.write(png.subarray(0, 3));
    t.write(png.subarray(3));
    t.end();
    assert.deepEqual(Buffer.concat(parts), png);
  });
});

describe('modeFor', () => {
  const cases: [string | undefined, BodyMode][] = [
    ['application/json; charset=utf-8', 'json'],
    ['application/problem+json', 'json'],
    ['text/event-stream', 'sse'],
    ['application/x-ndjson', 'lines'],
    ['text/html', 'text'],
    [undefined, 'text'],
    ['application/octet-stream', 'text'],
    ['image/png', 'media'],
    ['image/svg+xml', 'text'],
    ['video/mp4', 'media'],
  ];
  for (const [ct, want] of cases) it(`given ${String(ct)}, returns ${want}`, () => assert.equal(modeFor(ct), want));
});

describe('MaskingTransform long units in many chunks', () => {
  const run = (mode: BodyMode, text: string, size: number): string => {
    const t = new MaskingTransform({ mode, masker });
    const parts: Buffer[] = [];
    t.on('data', (b: Buffer) => parts.push(b));
    const b = Buffer.from(text);
    for (let i = 0; i < b.length; i += size) t.write(b.subarray(i, i + size));
    t.end();
    return Buffer.concat(parts).toString('utf8');
  };
  it('lines: a line split over hundreds of chunks, and a CRLF split at a boundary, mask like the whole input', () => {
    const line = `{"note":"${'word '.repeat(20_000)}","token":"${GH}"}`;
    const text = `${line}\n${line}\r\n\n{"short":1}\n`;
    const whole = run('lines', text, text.length);
    assert.ok(!whole.includes(GH));
    for (const size of [997, 4093]) assert.equal(run('lines', text, size), whole, `chunks of ${size}`);
  });
  it('sse: an event split over hundreds of chunks, and blank lines split at every byte, mask like the whole input', () => {
    const ev = `data: ${'word '.repeat(20_000)} ${GH}\n`;
    const text = `${ev}\r\n${ev}\n: comment\n\n`;
    const whole = run('sse', text, text.length);
    assert.ok(!whole.includes(GH));
    for (const size of [997, 4093]) assert.equal(run('sse', text, size), whole, `chunks of ${size}`);
    const small = `data: a ${GH}\n\r\ndata: b\n\nid: 3\r\n\r\ndata: tail`;
    assert.equal(run('sse', small, 1), run('sse', small, small.length));
  });

  // Kubernetes answers are masked object by object whatever the query claimed: a watch the gateway took for a list, a pretty-printed list it took for a watch.
  it('objects: each document is masked whole as soon as it closes, pretty-printed or one per line, whitespace kept', () => {
    const docs = [{ type: 'ADDED', object: { kind: 'Secret', data: { k: GH } } }, { type: 'DELETED', object: { kind: 'Secret', data: { k: GH } } }];
    const first = `${JSON.stringify(docs[0], null, 2)}\n`;
    const r = runChunks('objects', [Buffer.from(first.slice(0, 10)), Buffer.from(first.slice(10)), Buffer.from(`${JSON.stringify(docs[1])}\n`)]);
    assert.ok(!r.out.includes(GH), r.out);
    assert.equal(r.emitted[0], 0, 'nothing before the first document closes');
    assert.ok((r.emitted[1] ?? 0) > 0, 'the first document went out when it closed');
    assert.ok(r.out.includes('"ADDED"') && r.out.endsWith('\n'), r.out);
    assert.equal((JSON.parse(r.out.trimEnd().split('\n').at(-1)!) as { type: string }).type, 'DELETED');
  });
  it('objects: a top-level scalar or stray closer turns the rest into one document (masked at the end)', () => {
    for (const input of [`{"a":1} 42 {"t":"${GH}"}`, `]{"t":"${GH}"}`, `"${GH}"`]) {
      const r = runChunks('objects', [Buffer.from(input)]);
      assert.ok(!r.out.includes(GH), r.out);
    }
  });
  it('objects: a document over the limit fails (overflow fail)', async () => {
    const t = new MaskingTransform({ mode: 'objects', masker, maxUnitBytes: 16, overflow: 'fail' });
    const failed = once(t, 'error');
    t.write(Buffer.from('{"a":"0123456789abcdef"'));
    const [e] = (await failed) as [Error];
    assert.ok(e instanceof UnmaskableError);
  });
  it('refuse: the first byte is an error, nothing is passed on', async () => {
    const t = new MaskingTransform({ mode: 'refuse', masker });
    const out: Buffer[] = [];
    const failed = once(t, 'error');
    t.on('data', (b: Buffer) => out.push(b));
    t.write(Buffer.from('apiVersion: v1\ndata:\n  k: c2VjcmV0\n'));
    const [e] = (await failed) as [Error];
    assert.ok(e instanceof UnmaskableError);
    assert.equal(out.length, 0);
  });
  it('JsonValueScanner: ends of top-level values across chunks, strings and escapes skipped', () => {
    const sc = new JsonValueScanner();
    const a = Buffer.from('  {"a":"}\\"');
    assert.equal(sc.next(a, 0), -1);
    const b = Buffer.from('x\\\\","b":[{}]}\n[1]');
    const end = sc.next(b, 0);
    assert.equal(b.subarray(0, end).toString(), 'x\\\\","b":[{}]}');
    assert.equal(sc.next(b, end), b.length);
    assert.equal(sc.bad, false);
  });
});
