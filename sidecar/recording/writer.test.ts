// The recorder's one-pass line builder writes the same bytes as the previous copy-sanitize-sort path (a frozen copy here), over many random events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalLine } from './canonical.ts';
import type { RecordEvent } from './event.ts';
import { MemoryStream } from './fixtures.ts';
import { streamSink } from './sinks.ts';
import { createRecorder, DEFAULT_MAX_FIELD_CHARS, DEFAULT_MAX_LINE_BYTES, type RecorderOptions } from './writer.ts';

// ---- the oracle: the writer's sanitize + bounded + link as they were before the one-pass builder ----

const UNMASKED = new Set(['type', 'session', 'statementHash', 'configHash', 'decision', 'protocol', 'outcome']);
// Since the red-team pass: an UNMASKED field is exempt only while it looks like an id, and nested keys are masked too.
const IDENT = /^[A-Za-z0-9._:/-]{0,128}$/;
const MAX_DEPTH = 8;
const WORST_ESCAPE = 6;
interface Ctx {
  readonly mask: ((s: string) => string) | undefined;
  readonly max: number;
  bound: number;
}

function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let n = max;
  const c = s.charCodeAt(n - 1);
  if (c >= 0xd800 && c <= 0xdbff) n--;
  return `${s.slice(0, n)}…[${s.length - n} more chars]`;
}

function sanitize(v: unknown, ctx: Ctx, depth: number, key: string): unknown {
  if (typeof v === 'string') {
    const out = clip(ctx.mask && (!UNMASKED.has(key) || !IDENT.test(v)) ? ctx.mask(v) : v, ctx.max);
    ctx.bound += out.length * WORST_ESCAPE + 2;
    return out;
  }
  ctx.bound += 24;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean' || v === null) return v;
  if (typeof v !== 'object' || depth >= MAX_DEPTH) return null;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = sanitize(v[i], ctx, depth + 1, key);
    return out;
  }
  const src = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k in src) {
    if (!Object.hasOwn(src, k)) continue;
    const x = src[k];
    if (x === undefined) continue;
    const mk = depth > 0 && ctx.mask ? ctx.mask(k) : k;
    ctx.bound += mk.length * WORST_ESCAPE + 4;
    out[mk] = sanitize(x, ctx, depth + 1, depth === 0 ? k : key);
  }
  return out;
}

function tooLong(body: unknown, max: number): boolean {
  const s = JSON.stringify(body);
  return s.length > max || Buffer.byteLength(s) > max;
}

/** The body the old recorder linked, or null when it refused the event as too large. */
function oldBody(event: unknown, mask: Ctx['mask'], maxField: number, maxLine: number): Record<string, unknown> | null {
  const ctx: Ctx = { mask, max: maxField, bound: 0 };
  let body = sanitize(event, ctx, 0, '');
  if (ctx.bound > maxLine - 300 && tooLong(body, maxLine - 300)) {
    body = sanitize(event, { mask, max: Math.max(64, maxField >> 4), bound: 0 }, 0, '');
    if (tooLong(body, maxLine - 300)) return null;
  }
  return body as Record<string, unknown>;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

// ---- random events (seeded) ----

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'Z', '0', ' ', '"', '\\', '\n', '\u0001', '\u007f', 'é', '€', '\u2028', '😀', '\ud800', '\udc00', 'sec', 'SELECT ', 'AKIA', '10', '__proto__', 'x'.repeat(40)];
const KEYS = ['a', 'b', 'zz', 'B', '10', '2', '0', '01', 'é', 'key with space', 'time', 'kinds', 'text', 'rule', '__proto__', ''];
const NUMBERS = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 2 ** 53, -1.7976931348623157e308, Number.NaN, Infinity, -Infinity, 123.456];

class Gen {
  constructor(private readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  str(maxPieces = 8): string {
    let s = '';
    const n = this.int(maxPieces + 1);
    for (let i = 0; i < n; i++) s += this.pick(PIECES);
    if (this.r() < 0.05) s += 'y'.repeat(this.int(6000));
    return s;
  }
  value(depth: number): unknown {
    const k = this.int(depth > 10 ? 6 : 11);
    switch (k) {
      case 0:
      case 1:
        return this.str();
      case 2:
        return this.pick(NUMBERS);
      case 3:
        return this.r() < 0.5;
      case 4:
        return null;
      case 5:
        return this.pick([undefined, (): void => undefined, Symbol('s'), 10n, new Date(0)]);
      case 6:
      case 7:
        return Array.from({ length: this.int(5) }, () => this.value(depth + 1));
      default:
        return this.obj(depth + 1, 4);
    }
  }
  obj(depth: number, n: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    for (let i = this.int(n + 1); i > 0; i--) Object.defineProperty(o, this.pick(KEYS), { value: this.value(depth), enumerable: true, writable: true, configurable: true });
    return o;
  }
  /** A realistic event of a hot type, sometimes with odd values, extra keys or envelope keys. */
  event(i: number): Record<string, unknown> {
    const session = this.r() < 0.9 ? `s${this.int(5)}` : this.value(1);
    let e: Record<string, unknown>;
    const kind = this.int(6);
    if (kind <= 1) {
      e = {
        type: 'statement', session, cmd: i, text: this.str(12),
        classification: { kinds: [this.pick(['read', 'write', 'ddl'])], tables: Array.from({ length: this.int(3) }, () => this.str(3)), functions: [] },
        decision: this.pick(['allow', 'deny', 'approval']), rule: this.r() < 0.5 ? null : this.str(2), reason: this.r() < 0.5 ? undefined : this.str(3),
        statementHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      };
    } else if (kind <= 3) {
      e = {
        type: 'result', session, cmd: i, rows: this.r() < 0.2 ? null : this.pick(NUMBERS), bytes: this.int(1e6),
        masked: this.r() < 0.6 ? {} : { email: 1, [this.pick(KEYS)]: this.int(9), '3': 2 }, durationMs: this.r() * 10,
        ...(this.r() < 0.3 ? { sqlState: this.pick(['00000', '42P01', '57014']) } : {}), ...(this.r() < 0.2 ? { error: this.str(10) } : {}),
      };
    } else if (kind === 4) {
      e = { type: this.pick(['session.start', 'request', 'policy.reload', 'session.end', 'approval.wait']), ...this.obj(1, 6) };
      if (this.r() < 0.7) e.session = session;
    } else {
      // A large array: the too-long paths (re-clip, refuse) and the bound's blind spots (many short strings).
      e = { type: 'request', session, cmd: i, url: this.str(), classification: { kind: 'http', tables: Array.from({ length: this.int(3000) }, () => this.pick(['', 'a', this.str(3)])) } };
    }
    if (this.r() < 0.1) Object.assign(e, this.obj(1, 3));
    if (this.r() < 0.03) {
      const own = JSON.parse('{"__proto__":{"x":1}}') as Record<string, unknown>;
      for (const k of Object.keys(e)) own[k] = e[k];
      e = own;
    }
    return e;
  }
}

interface Case {
  readonly name: string;
  readonly opts: Partial<RecorderOptions>;
}

const marking = (s: string): string => s.replaceAll('sec', '[M]').replaceAll('AKIA', '[MASKED:aws]');
const CASES: readonly Case[] = [
  { name: 'no mask, default limits', opts: {} },
  { name: 'a mask, default limits', opts: { mask: marking } },
  { name: 'a mask, small limits', opts: { mask: marking, maxFieldChars: 24, maxLineBytes: 1500 } },
  { name: 'a lengthening mask, tight line limit', opts: { mask: (s) => s + s, maxFieldChars: 300, maxLineBytes: 2500 } },
];

for (const [ci, c] of CASES.entries()) {
  test(`one-pass lines are byte-identical to the old path (${c.name})`, async () => {
    const gen = new Gen(prng(1000 + ci));
    const out = new MemoryStream();
    let t = Date.UTC(2026, 0, 1);
    const rec = await createRecorder({ ...c.opts, sinks: [streamSink(out, { name: 'memory' })], clock: () => new Date((t += 3)), newStreamId: () => 'stream-a' });
    const maxField = c.opts.maxFieldChars ?? DEFAULT_MAX_FIELD_CHARS;
    const maxLine = c.opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const want: (string | null)[] = [];
    const events = Array.from({ length: 400 }, (_, i) => gen.event(i));
    // Half the events are recorded in one turn (one batch), the rest one by one.
    const results = await Promise.allSettled(events.slice(0, 200).map((e) => rec.record(e as unknown as RecordEvent)));
    for (let i = 200; i < events.length; i++) results.push(...(await Promise.allSettled([rec.record(events[i] as unknown as RecordEvent)])));
    await rec.close();
    const lines = out.lines();
    let prev = sha(lines[0] ?? '');
    let n = 1;
    let refused = 0;
    for (const [i, e] of events.entries()) {
      const body = oldBody(e, c.opts.mask, maxField, maxLine);
      const r = results[i];
      if (body === null) {
        refused++;
        assert.equal(r?.status, 'rejected', `event ${i} should be refused as too large`);
        continue;
      }
      assert.equal(r?.status, 'fulfilled', `event ${i} was refused: ${r?.status === 'rejected' ? String(r.reason) : ''}`);
      const line = lines[n] ?? '';
      const { time } = JSON.parse(line) as { time: string };
      const old = canonicalLine({ ...body, stream: 'stream-a', seq: n, time, chaperone: 'rec/v1', prev });
      assert.equal(line, old, `event ${i} (line ${n})`);
      if (r?.status === 'fulfilled') assert.equal((r.value as { hash: string }).hash, sha(line));
      want.push(old);
      prev = sha(line);
      n++;
    }
    assert.equal(lines.length, n + 1, 'then stream.end');
    assert.ok(refused > 0 || maxLine === DEFAULT_MAX_LINE_BYTES, 'the small-limit cases exercise refusals');
    assert.ok(want.length > 300);
  });
}

test('the mask hook still covers every string field it covered (memoized or not)', async () => {
  const seen: string[] = [];
  const out = new MemoryStream();
  const rec = await createRecorder({ sinks: [streamSink(out)], mask: (s) => (seen.push(s), s) });
  const ev = { type: 'statement', session: 's1', cmd: 1, text: 'SELECT 1', classification: { kinds: ['read'], tables: ['public.t'], functions: ['f'] }, decision: 'allow', rule: 'r1', reason: 'why', statementHash: 'ab' } as const;
  await rec.record(ev);
  await rec.record({ type: 'result', session: 's1', cmd: 1, rows: 1, bytes: 2, masked: {}, durationMs: 1, sqlState: '00000', error: 'oops' });
  await rec.close();
  assert.deepEqual([...new Set(seen)].sort(), ['SELECT 1', 'f', 'oops', 'public.t', 'r1', 'read', 'why', '00000', 'kinds', 'tables', 'functions'].sort());
});

test('a pod origin of Kubernetes names is not masked at start (the default masker and its detector table load on first use, not at start)', async () => {
  let calls = 0;
  const out = new MemoryStream();
  const rec = await createRecorder({ sinks: [streamSink(out)], mask: (s) => (calls++, s), origin: { pod: 'agent-0', namespace: 'team-a', uid: '6f1c2d3e-0000-4a5b-8c9d-0123456789ab', node: 'node-1.example.internal' } });
  assert.equal(calls, 0);
  await rec.close();
  assert.match(out.lines()[0] ?? '', /"pod":"agent-0"/);
});

test('second wall: a secret in every string of every event type, nested keys and origin included, is masked; ids and enums that do not look like ids are masked too; the lines verify', async () => {
  const X = 'SECRETXYZ';
  const out = new MemoryStream();
  const rec = await createRecorder({ sinks: [streamSink(out)], mask: (s) => s.split(X).join('[M]'), origin: { pod: X, [X]: 'v' } });
  const s = 'sess';
  const events = [
    { type: 'session.start', session: s, identity: X, subject: X, groups: [X], pod: X, client: X, connection: X, protocol: 'postgres' },
    { type: 'statement', session: s, cmd: 1, text: X, classification: { kinds: [X], tables: [X], functions: [X], [X]: X, '[M]': 'collides with the masked key' }, decision: 'allow', rule: X, reason: X, statementHash: 'a'.repeat(64) },
    { type: 'request', session: s, cmd: 2, method: X, url: X, classification: { kind: X, verb: X, resource: X, namespace: X, name: X }, decision: `deny ${X}`, rule: X, reason: X },
    { type: 'result', session: s, cmd: 1, rows: 1, bytes: 1, masked: { [X]: 1, '[M]': 2 }, durationMs: 1, sqlState: X, error: X },
    { type: 'approval.wait', session: s, cmd: 1, request: X, approverGroups: [X], timeoutMs: 1 },
    { type: 'approval.outcome', session: s, cmd: 1, request: X, outcome: `approved ${X}`, by: [X], waitedMs: 1 },
    { type: 'policy.reload', ok: false, configHash: `h ${X}`, error: X },
    { type: 'session.end', session: `id ${X}`, reason: X, summary: { commands: 1, denied: 0, approvals: 0, rows: 0, bytes: 0, masked: { [X]: 1 }, durationMs: 1 } },
  ] as unknown as RecordEvent[];
  for (const e of events) await rec.record(e);
  await rec.close();
  const lines = out.lines();
  assert.equal(lines.length, events.length + 2);
  for (const l of lines) assert.ok(!l.includes(X), l);
  const { verifyLines } = await import('./verify.ts');
  const r = verifyLines(lines);
  assert.ok(r.ok, JSON.stringify(r));
});

test('the size test is the old one, blind spot included (many empty strings: under the bound, over the line limit)', async () => {
  const out = new MemoryStream();
  const rec = await createRecorder({ sinks: [streamSink(out)], newStreamId: () => 'stream-b' });
  const ev = { type: 'request', session: 's', cmd: 1, method: 'GET', url: '/', classification: { kind: 'http', tags: new Array<string>(6000).fill('') }, decision: 'allow', rule: null } as unknown as RecordEvent;
  const body = oldBody(ev, undefined, DEFAULT_MAX_FIELD_CHARS, DEFAULT_MAX_LINE_BYTES);
  assert.ok(body !== null && JSON.stringify(body).length > DEFAULT_MAX_LINE_BYTES, 'the old path accepted it whole');
  await rec.record(ev);
  await rec.close();
  const [first, line] = out.lines();
  const { time } = JSON.parse(line ?? '') as { time: string };
  assert.equal(line, canonicalLine({ ...body, stream: 'stream-b', seq: 1, time, chaperone: 'rec/v1', prev: sha(first ?? '') }));
});
