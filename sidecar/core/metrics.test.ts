// Metrics: counters recorded before the first scrape appear in it; the rendering is Prometheus text; label sets are bounded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics, MAX_SERIES_PER_METRIC } from './metrics.ts';

describe('metrics', () => {
  it('given observations before the first scrape, renders every one of them', async () => {
    const m = createMetrics();
    m.sessionStarted('db', 'postgres');
    m.sessionStarted('db', 'postgres');
    m.sessionEnded('db', 'postgres');
    m.statement('db', 'deny');
    m.maskedAll({ 'aws-access-key': 2, zero: 0 });
    m.authFailure('db', 'expired');
    m.upstreamLatency('db', 0.003);
    m.configReload('invalid');
    const { body, contentType } = await m.render();
    assert.match(contentType, /text\/plain/);
    assert.match(body, /chaperone_sessions_total\{connection="db",protocol="postgres"\} 2/);
    assert.match(body, /chaperone_sessions_active\{connection="db",protocol="postgres"\} 1/);
    assert.match(body, /chaperone_statements_total\{connection="db",decision="deny"\} 1/);
    assert.match(body, /chaperone_masked_values_total\{detector="aws-access-key"\} 2/);
    assert.doesNotMatch(body, /detector="zero"/);
    assert.match(body, /chaperone_auth_failures_total\{connection="db",reason="expired"\} 1/);
    assert.match(body, /chaperone_upstream_latency_seconds_bucket\{connection="db",le="0.005"\} 1/);
    assert.match(body, /chaperone_upstream_latency_seconds_bucket\{connection="db",le="0.0025"\} 0/);
    assert.match(body, /chaperone_config_reloads_total\{result="invalid"\} 1/);
    assert.match(body, /chaperone_process_cpu_seconds_total/);
  });

  it('given later observations, a second scrape shows the new values', async () => {
    const m = createMetrics();
    m.statement('db', 'allow');
    await m.render();
    m.statement('db', 'allow');
    assert.match((await m.render()).body, /decision="allow"\} 2/);
  });

  it('given more label sets than the cap, stops adding series', () => {
    const m = createMetrics();
    for (let i = 0; i < MAX_SERIES_PER_METRIC + 50; i++) m.masked(`d${i}`);
    assert.equal(Object.keys(m.snapshot().masked).length, MAX_SERIES_PER_METRIC);
  });

  it('given a non-finite latency, ignores it', async () => {
    const m = createMetrics();
    m.upstreamLatency('db', Number.NaN);
    assert.doesNotMatch((await m.render()).body, /upstream_latency_seconds_count/);
  });
});
