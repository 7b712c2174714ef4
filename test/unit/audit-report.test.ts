// The audit cores without a cluster: report shape checks, who may report for which pod, the once-per-seq ledger, the counter tally, the recorder tap, the reporter's retry rule, recording sources.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkCaller, checkPod, parseReport, type ReportBody } from '../../operator/audit/report.ts';
import { applyReports, freshLedger, mirrorStatus, parseLedger } from '../../operator/audit/ledger.ts';
import { resolveSource } from '../../operator/kubectl-plugin/recordings.ts';
import { parseArgs } from '../../operator/kubectl-plugin/args.ts';
import { CounterTally } from '../../sidecar/audit/counters.ts';
import { StatusReporter } from '../../sidecar/audit/reporter.ts';
import { tapRecorder } from '../../sidecar/audit/tap.ts';
import type { RecordEvent } from '../../sidecar/recording/event.ts';
import type { Recorder } from '../../sidecar/recording/writer.ts';
import { sampleSession } from '../../sidecar/recording/fixtures.ts';
import { replayText } from '../../sidecar/recording/replay.ts';
import { recordToMemory } from '../../sidecar/recording/fixtures.ts';

const report = (o: Partial<ReportBody> = {}): ReportBody => ({
  apiVersion: 'chaperone.dev/v1alpha1', kind: 'SidecarReport', identity: 'coding-agent', pod: { namespace: 'agents', name: 'agent-0', uid: 'u-1' },
  stream: 'ab12', seq: 1, delta: { sessions: 1, statements: 2, denied: 1, approvals: 0, masked: 3 }, ...o,
});
const caller = { username: 'system:serviceaccount:agents:coding-agent', extra: { 'authentication.kubernetes.io/pod-name': ['agent-0'], 'authentication.kubernetes.io/pod-uid': ['u-1'] } };
const podFacts = {
  uid: 'u-1', labels: { 'chaperone.dev/identity': 'coding-agent' }, annotations: { 'chaperone.dev/injected': '{}' }, serviceAccountName: 'coding-agent',
  initContainers: [{ name: 'chaperone-sidecar', restartPolicy: 'Always' }],
};

describe('report shape', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not an object', 'x', /must be a chaperone.dev\/v1alpha1 SidecarReport/],
    ['wrong kind', { ...report(), kind: 'Other' }, /SidecarReport/],
    ['no pod uid', { ...report(), pod: { namespace: 'agents', name: 'agent-0' } }, /pod must have namespace, name and uid/],
    ['negative count', { ...report(), delta: { ...report().delta, denied: -1 } }, /delta must have the counts/],
    ['huge count', { ...report(), delta: { ...report().delta, sessions: 1e12 } }, /delta must have the counts/],
    ['seq 0', { ...report(), seq: 0 }, /seq must be a positive integer/],
    ['stream not hex', { ...report(), stream: 'zz' }, /stream must be hex/],
    ['bad lastSession', { ...report(), lastSession: { id: 'x' } }, /lastSession\./],
  ];
  for (const [name, body, msg] of bad) {
    it(`refuses ${name}`, () => {
      const r = parseReport(body);
      assert.ok('error' in r);
      assert.match(r.error, msg);
    });
  }
  it('accepts a well-formed report', () => assert.ok(!('error' in parseReport(report()))));
});

describe('who may report', () => {
  const cases: [string, Parameters<typeof checkCaller>[0], string][] = [
    ['a user token is not a ServiceAccount', { username: 'alice' }, 'not-a-serviceaccount'],
    ['a token without a pod binding', { username: caller.username }, 'not-pod-bound'],
    ['a token bound to another pod', { ...caller, extra: { ...caller.extra, 'authentication.kubernetes.io/pod-name': ['other-0'] } }, 'other-pod'],
    ['a token from another namespace', { ...caller, username: 'system:serviceaccount:other:coding-agent' }, 'other-pod'],
  ];
  for (const [name, c, reason] of cases) {
    it(`refuses ${name}`, () => {
      const r = checkCaller(c, report());
      assert.equal(r.ok ? 'ok' : r.reason, reason);
    });
  }
  it('accepts the pod-bound token of the reported pod', () => assert.deepEqual(checkCaller(caller, report()), { ok: true }));

  const pods: [string, Parameters<typeof checkPod>[0], string][] = [
    ['a pod that is gone', undefined, 'pod-gone'],
    ['a recreated pod (other uid)', { ...podFacts, uid: 'u-2' }, 'pod-gone'],
    ['a pod of another identity', { ...podFacts, labels: { 'chaperone.dev/identity': 'other' } }, 'other-identity'],
    ['a pod without the injection annotation', { ...podFacts, annotations: {} }, 'not-injected'],
    ['a forged annotation on a pod without the identity label', { ...podFacts, labels: {} }, 'other-identity'],
    ['a forged annotation on a labelled pod without the sidecar', { ...podFacts, initContainers: [] }, 'no-sidecar'],
    ['a sidecar that is a plain init container (it ran once and exited)', { ...podFacts, initContainers: [{ name: 'chaperone-sidecar' }] }, 'no-sidecar'],
    ['a native sidecar of another name', { ...podFacts, initContainers: [{ name: 'sidecar', restartPolicy: 'Always' }] }, 'no-sidecar'],
    ['a token of another ServiceAccount than the pod runs as', { ...podFacts, serviceAccountName: 'default' }, 'other-serviceaccount'],
  ];
  for (const [name, p, reason] of pods) {
    it(`refuses ${name}`, () => {
      const r = checkPod(p, caller, report());
      assert.equal(r.ok ? 'ok' : r.reason, reason);
    });
  }
  it('accepts the labelled, injected pod', () => assert.deepEqual(checkPod(podFacts, caller, report()), { ok: true }));
});

describe('ledger', () => {
  it('applies each (pod, stream, seq) once and sums per identity', () => {
    const s0 = freshLedger('id-uid');
    const a = applyReports(s0, [report(), report({ seq: 2 }), report({ stream: 'cd34' })], 1);
    assert.deepEqual(a.applied, [true, true, true]);
    assert.deepEqual(a.state.counters, { sessions: 3, statements: 6, denied: 3, approvals: 0, masked: 9 });
    const b = applyReports(a.state, [report(), report({ seq: 2 })], 2);
    assert.deepEqual(b.applied, [false, false], 'retries of applied seqs');
    assert.deepEqual(b.state.counters, a.state.counters);
  });
  it('survives a round trip through its stored JSON (what another replica or a restarted operator reads)', () => {
    const a = applyReports(freshLedger('id-uid'), [report({ seq: 5 })], 1).state;
    const again = parseLedger(JSON.stringify(a)) ?? assert.fail('unreadable');
    assert.deepEqual(applyReports(again, [report({ seq: 5 })], 2).applied, [false]);
    assert.deepEqual(applyReports(again, [report({ seq: 6 })], 2).applied, [true]);
    assert.equal(parseLedger('{"v":99}'), undefined);
    assert.equal(parseLedger('not json'), undefined);
  });
  it('a retry and the next report in one batch: the retry is dropped, the next counted, in seq order', () => {
    const s = applyReports(freshLedger('u'), [report({ seq: 1 })], 1).state;
    const r = applyReports(s, [report({ seq: 2 }), report({ seq: 1 }), report({ seq: 2 })], 2);
    assert.deepEqual(r.applied, [true, false, false]);
    assert.equal(r.state.counters.sessions, 2);
  });
  it('keeps the most recently applied streams when over its bound', () => {
    let s = freshLedger('u');
    for (let i = 1; i <= 5; i++) s = applyReports(s, [report({ stream: `a${i}` })], i, 3).state;
    assert.deepEqual(Object.keys(s.streams).sort(), ['u-1/a3', 'u-1/a4', 'u-1/a5']);
  });
  it('seeds a new ledger from the status the identity already shows', () => {
    assert.deepEqual(freshLedger('u', { sessions: 4, denied: 2 }).counters, { sessions: 4, statements: 0, denied: 2, approvals: 0, masked: 0 });
  });
  it('status mirrors the ledger but never goes back (a replica mirroring an older ledger)', () => {
    const s = applyReports(freshLedger('u'), [report()], 1).state;
    assert.deepEqual(mirrorStatus({ counters: { sessions: 9 } }, s).counters, { sessions: 9, statements: 2, denied: 1, approvals: 0, masked: 3 });
  });
});

describe('counter tally', () => {
  it('counts in the units kubectl chaperone sessions shows', async () => {
    const events = [...sampleSession('a'), ...sampleSession('b')];
    const t = new CounterTally(() => Date.UTC(2026, 0, 1));
    for (const e of events) t.observe(e);
    const { delta, lastSession } = t.take();
    const rows = replayText((await recordToMemory(events)).join('\n')).list();
    assert.deepEqual(delta, {
      sessions: rows.length, statements: rows.reduce((n, r) => n + r.commands, 0), denied: rows.reduce((n, r) => n + r.denied, 0),
      approvals: rows.reduce((n, r) => n + r.approvals, 0), masked: rows.reduce((n, r) => n + r.masked, 0),
    });
    assert.equal(lastSession?.id, 'b');
    assert.equal(lastSession?.connection, 'main-db');
    assert.deepEqual(t.take().delta, { sessions: 0, statements: 0, denied: 0, approvals: 0, masked: 0 }, 'take resets');
  });
});

function fakeRecorder(fail: boolean): Recorder & { seen: RecordEvent[] } {
  const seen: RecordEvent[] = [];
  return {
    seen,
    record: (e) => {
      seen.push(e);
      return fail ? Promise.reject(new Error('disk full')) : Promise.resolve({ stream: 's', seq: seen.length, hash: 'h' });
    },
    close: () => Promise.resolve(),
    health: () => ({ ok: true, stream: 's', error: null, brokenSince: null }),
    stats: () => ({ lines: 0, batches: 0, pending: 0, streams: 1, failures: 0, sinks: {} }),
  };
}

describe('recorder tap', () => {
  const start = sampleSession('x')[0] as RecordEvent;
  it('stamps the identity name on session.start and tells observers after the line is recorded', async () => {
    const inner = fakeRecorder(false);
    const seen: RecordEvent[] = [];
    const r = tapRecorder(inner, { identityName: 'coding-agent', observers: [(e) => seen.push(e), () => { throw new Error('observer bug'); }] });
    await r.record(start);
    await new Promise((res) => setImmediate(res));
    assert.equal((inner.seen[0] as Extract<RecordEvent, { type: 'session.start' }>).identity, 'coding-agent');
    assert.equal(seen.length, 1, 'a throwing observer does not stop the others or the session');
  });
  it('an event the recorder refused is not observed, and the refusal reaches the caller', async () => {
    const seen: RecordEvent[] = [];
    const r = tapRecorder(fakeRecorder(true), { observers: [(e) => seen.push(e)] });
    await assert.rejects(r.record(start), /disk full/);
    assert.equal(seen.length, 0);
  });
});

describe('status reporter', () => {
  it('retries a report unchanged until acknowledged; new counts wait for the next seq; a refusal is dropped', async () => {
    const sent: ReportBody[] = [];
    const answers = [503, 200, 403, 200];
    const tally = new CounterTally();
    const r = new StatusReporter({ api: { request: (_m, _p, body) => { sent.push(body as ReportBody); return Promise.resolve({ status: answers.shift() ?? 200, body: {} }); } }, tally, identity: 'coding-agent', pod: { namespace: 'agents', name: 'agent-0', uid: 'u-1' }, intervalMs: 3_600_000 });
    for (const e of sampleSession('a')) tally.observe(e);
    assert.equal(await r.flush(), false, '503: kept');
    for (const e of sampleSession('b')) tally.observe(e);
    assert.equal(await r.flush(), true);
    assert.deepEqual(sent[1], sent[0], 'the retry is the same report');
    assert.equal(await r.flush(), false, '403: dropped');
    for (const e of sampleSession('c')) tally.observe(e);
    assert.equal(await r.flush(), true);
    assert.deepEqual(sent.map((b) => [b.seq, b.delta.sessions]), [[1, 1], [1, 1], [2, 1], [3, 1]]);
    await r.close();
    assert.equal(r.health().failed, 2);
  });
});

describe('recording sources', () => {
  const src = (argv: string[]): ReturnType<typeof resolveSource> => {
    const p = parseArgs(['sessions', ...argv]);
    return resolveSource(p.positional[0], p.flags);
  };
  it('pod names, pod/NAME, files, stdin, selectors', () => {
    assert.deepEqual(src(['agent-0']), { kind: 'pod', name: 'agent-0' });
    assert.deepEqual(src(['pod/agent-0']), { kind: 'pod', name: 'agent-0' });
    assert.deepEqual(src(['./rec.jsonl']), { kind: 'file', path: './rec.jsonl' });
    assert.deepEqual(src(['-']), { kind: 'stdin' });
    assert.deepEqual(src(['-f', '-']), { kind: 'stdin' });
    assert.deepEqual(src(['-l', 'app=x']), { kind: 'selector', selector: 'app=x' });
    assert.throws(() => src([]), /no recording given/);
    assert.throws(() => src(['a', '-l', 'x']), /give one recording source/);
  });
  it('--key repeats; --require-sealed needs it', () => {
    assert.deepEqual(parseArgs(['verify', 'f', '--key', 'a.pem', '--key=b.pem']).flags.keys, ['a.pem', 'b.pem']);
  });
});
