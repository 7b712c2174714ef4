// The Event aggregator folds repeats and caps distinct Events per window, so a flood stays a handful of API writes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventAggregator, THROTTLED_REASON, type AuditSignal, type EventWrite, type ObjectRef } from './event-aggregator.ts';

const pod = { apiVersion: 'v1', kind: 'Pod', namespace: 'agents', name: 'agent-0', uid: 'u1' };
const identity = { apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', namespace: 'agents', name: 'coding-agent' };
const denied = (regarding: ObjectRef = pod): AuditSignal => ({ reason: 'StatementDenied', type: 'Warning', note: 'DROP TABLE refused by rule deny-ddl', regarding, action: 'Deny' });

function agg(maxNew = 30): EventAggregator {
  let n = 0;
  return new EventAggregator({ reportingInstance: 'agent-0', maxNewPerWindow: maxNew, newId: () => String(n++) });
}

describe('EventAggregator', () => {
  test('a flood of 10,000 denials is one create and one series update per window', () => {
    const a = agg();
    const writes: EventWrite[] = [];
    let t = 0;
    for (let i = 0; i < 10_000; i++) writes.push(...a.add(denied(), (t += 5)));
    writes.push(...a.tick(t + 60_000));
    assert.equal(writes.filter((w) => w.op === 'create').length, 1);
    const series = writes.filter((w) => w.op === 'series');
    // 10,000 × 5 ms = 50 s: one window, so one series write carrying the total.
    assert.equal(series.length, 1);
    assert.equal(series[0]?.op === 'series' && series[0].series.count, 10_000);
  });

  test('a new window starts a new Event; counts never carry over', () => {
    const a = agg();
    const w1 = a.add(denied(), 0);
    a.add(denied(), 10);
    const w2 = a.add(denied(), 61_000);
    assert.equal(w1.length, 1);
    // The roll writes the first window's series (count 2) and the new signal creates a fresh Event.
    assert.deepEqual(w2.map((w) => w.op), ['series', 'create']);
    assert.ok(w2[0]?.op === 'series' && w2[0].series.count === 2);
  });

  test('beyond maxNewPerWindow distinct events fold into one EventsThrottled per object', () => {
    const a = agg(3);
    const writes: EventWrite[] = [];
    const objects = Array.from({ length: 50 }, (_, i) => ({ ...pod, name: `agent-${i}` }));
    for (const o of objects) writes.push(...a.add(denied(o), 1));
    const creates = writes.filter((w) => w.op === 'create');
    assert.equal(creates.filter((w) => w.op === 'create' && w.event.reason === 'StatementDenied').length, 3);
    assert.equal(creates.filter((w) => w.op === 'create' && w.event.reason === THROTTLED_REASON).length, 47);
  });

  test('throttled counts say which reasons were folded', () => {
    const a = agg(1);
    a.add(denied(identity), 0);
    a.add({ reason: 'SessionStarted', type: 'Normal', note: 'x', regarding: identity, action: 'Connect' }, 1);
    a.add({ reason: 'SessionEnded', type: 'Normal', note: 'y', regarding: identity, action: 'Disconnect' }, 2);
    a.add({ reason: 'SessionEnded', type: 'Normal', note: 'y', regarding: identity, action: 'Disconnect' }, 3);
    const final = a.tick(4, true);
    const t = final.find((w) => w.op === 'series' && w.name.includes('eventsthrottled'));
    assert.ok(t && t.op === 'series');
    assert.equal(t.series.count, 3);
    assert.match(t.note, /SessionStarted×1, SessionEnded×2/);
  });

  test('Events carry a valid name, a MicroTime and a note under 1 kB', () => {
    const a = agg();
    const [w] = a.add({ ...denied({ ...pod, name: 'Agent_Pod.With--Odd' }), note: 'x'.repeat(5000) }, Date.UTC(2026, 0, 1));
    assert.ok(w?.op === 'create');
    assert.match(w.event.metadata.name, /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/);
    assert.ok(w.event.metadata.name.length <= 253);
    assert.equal(w.event.eventTime, '2026-01-01T00:00:00.000000Z');
    assert.ok(w.event.note.length <= 1024);
    assert.equal(w.event.reportingController, 'chaperone.dev/sidecar');
  });

  test('memory stays bounded: past maxKeys signals are dropped and counted', () => {
    const a = new EventAggregator({ reportingInstance: 'p', maxNewPerWindow: 1, maxKeys: 5 });
    for (let i = 0; i < 100; i++) a.add(denied({ ...pod, name: `p${i}` }), 0);
    assert.equal(a.dropped, 95);
  });
});
