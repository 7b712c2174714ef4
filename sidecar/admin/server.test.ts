// Admin listener: built-in routes, readiness → status codes, registered routes, 404/405/413.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable } from './routes.ts';
import { startAdminServer, type AdminServer, type Readiness } from './server.ts';

let server: AdminServer;
let ready: Readiness = { status: 'ready', reasons: [] };
const base = (): string => `http://127.0.0.1:${server.address.port}`;
const quiet = { debug: (): void => undefined, warn: (): void => undefined };

before(async () => {
  const routes = new RouteTable();
  routes.add('POST', '/approvals/*', (req) => ({ status: 200, body: { id: req.url.pathname.split('/')[2], bytes: req.body.length } }));
  routes.add('GET', '/boom', () => {
    throw new Error('handler bug');
  });
  server = await startAdminServer({ host: '127.0.0.1', port: 0, routes, readiness: () => ready, metrics: () => Promise.resolve({ contentType: 'text/plain; version=0.0.4', body: 'm 1\n' }), log: quiet, maxBodyBytes: 1024 });
});
after(() => server.close());

describe('admin server', () => {
  it('given GET /healthz, answers 200 ok', async () => {
    const r = await fetch(`${base()}/healthz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok' });
  });

  const table: readonly [Readiness['status'], number][] = [['ready', 200], ['degraded', 200], ['starting', 503], ['stopping', 503], ['not-ready', 503]];
  for (const [status, code] of table) {
    it(`given readiness ${status}, /readyz answers ${code}`, async () => {
      ready = { status, reasons: status === 'ready' ? [] : [`because ${status}`] };
      const r = await fetch(`${base()}/readyz`);
      assert.equal(r.status, code);
      assert.equal(((await r.json()) as { status: string }).status, status);
    });
  }

  it('given GET /metrics, answers with the metrics content type', async () => {
    const r = await fetch(`${base()}/metrics`);
    assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4');
    assert.equal(await r.text(), 'm 1\n');
  });

  it('given a registered prefix route, hands it the path and body', async () => {
    const r = await fetch(`${base()}/approvals/abc`, { method: 'POST', body: '{"decision":"approve"}' });
    assert.deepEqual(await r.json(), { id: 'abc', bytes: 22 });
  });

  it('given an unknown path, 404; a known path with another method, 405 with Allow', async () => {
    assert.equal((await fetch(`${base()}/nope`)).status, 404);
    const r = await fetch(`${base()}/healthz`, { method: 'POST', body: '' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
  });

  it('given a body over the limit, 413 before buffering it', async () => {
    assert.equal((await fetch(`${base()}/approvals/x`, { method: 'POST', body: 'x'.repeat(4096) })).status, 413);
  });

  it('given a throwing handler, 500 without the error text', async () => {
    const r = await fetch(`${base()}/boom`);
    assert.equal(r.status, 500);
    assert.doesNotMatch(await r.text(), /handler bug/);
  });

  it('refuses to register a route twice', () => {
    const t = new RouteTable();
    t.add('GET', '/x', () => ({ status: 200, body: '' }));
    assert.throws(() => t.add('GET', '/x', () => ({ status: 200, body: '' })), /already registered/);
  });
});
