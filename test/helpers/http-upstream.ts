// A local HTTP(S) upstream for the HTTP gateway tests: echo, JSON, SSE (gated), compressed, split secrets, bad JSON, mid-body reset.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

/** Synthesized secrets (never real), built in code so no scanner mistakes this file for a leak. */
export const FAKE_GITHUB_TOKEN = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'.slice(0, 36);
export const FAKE_AWS_KEY = ['AKIA', 'QX7Z', 'M2PL', 'K3RT', 'V4NB'].join('');

export interface Upstream {
  readonly url: string;
  readonly port: number;
  /** Requests seen (method, url, headers), newest last. */
  readonly seen: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  /** Releases the next gated SSE event. */
  releaseSse(): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

export async function startUpstream(tls?: { cert: string; key: string }): Promise<Upstream> {
  const seen: Upstream['seen'] = [];
  const gates: (() => void)[] = [];
  let pendingReleases = 0;
  const gate = (): Promise<void> =>
    new Promise((resolve) => {
      if (pendingReleases > 0) {
        pendingReleases--;
        resolve();
      } else gates.push(resolve);
    });
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const u = new URL(req.url ?? '/', 'http://x');
    void route(u, req, res, gate);
  };
  const upgraded = new Set<import('node:stream').Duplex>();
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
  server.keepAliveTimeout = 5000;
  // Upgrades: switch protocols, echo the credential it got in a header (to be scrubbed), then echo bytes.
  server.on('upgrade', (req: IncomingMessage, socket: import('node:stream').Duplex) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Echo-Auth: ${String(req.headers.authorization ?? '')}\r\n\r\n`);
    socket.on('data', (d: Buffer) => socket.write(d));
    socket.on('end', () => socket.end());
    socket.on('error', () => socket.destroy());
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    seen,
    releaseSse: () => {
      const g = gates.shift();
      if (g) g();
      else pendingReleases++;
    },
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        // Upgraded sockets are not the server's any more: closeAllConnections does not see them.
        for (const u of upgraded) u.destroy();
        server.close(() => r());
      }),
  };
}

const json = (res: ServerResponse, body: unknown, status = 200, headers: Record<string, string> = {}): void => {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
  res.end(s);
};

async function route(u: URL, req: IncomingMessage, res: ServerResponse, gate: () => Promise<void>): Promise<void> {
  const secretDoc = { id: 1, note: `token ${FAKE_GITHUB_TOKEN} here`, nested: { aws: FAKE_AWS_KEY, ok: 'plain' } };
  switch (u.pathname) {
    case '/echo': {
      const body = await readBody(req);
      // Echoes everything it got, the credential included: the gateway must scrub it on the way back.
      return json(res, { method: req.method, url: req.url, headers: req.headers, body }, 200, { 'x-echo-auth': String(req.headers.authorization ?? ''), 'x-echo-key': String(req.headers['x-api-key'] ?? '') });
    }
    case '/json':
      return json(res, secretDoc);
    case '/big': {
      const n = Number(u.searchParams.get('n') ?? '1024');
      const item = { name: 'item', value: 'x'.repeat(40) };
      const items = [];
      for (let s = 0; s < n; s += 60) items.push(item);
      return json(res, { items });
    }
    case '/cookie':
      res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': ['session_token=abc123def456ghi789; Path=/; HttpOnly', `theme=dark; Path=/`, `gh=${FAKE_GITHUB_TOKEN}; Path=/`] });
      return void res.end('ok');
    case '/gzip':
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      return void res.end(gzipSync(JSON.stringify(secretDoc)));
    case '/br':
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'br' });
      return void res.end(brotliCompressSync(JSON.stringify(secretDoc)));
    case '/deflate':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'deflate' });
      return void res.end(deflateSync(`text ${FAKE_AWS_KEY} end`));
    case '/zstd':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'zstd' });
      return void res.end('pretend-zstd');
    case '/split': {
      // The secret straddles two chunks written apart in time (a chunk boundary on the wire).
      res.writeHead(200, { 'content-type': 'text/plain' });
      const at = Number(u.searchParams.get('at') ?? '10');
      const text = `before ${FAKE_GITHUB_TOKEN} after\n`;
      res.write(text.slice(0, 7 + at));
      await new Promise((r) => setTimeout(r, 30));
      return void res.end(text.slice(7 + at));
    }
    case '/badjson':
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(`{"broken": "${FAKE_GITHUB_TOKEN}", oops`);
    case '/ndjson':
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(JSON.stringify({ n: 1, t: FAKE_GITHUB_TOKEN }) + '\n');
      await new Promise((r) => setTimeout(r, 20));
      return void res.end(JSON.stringify({ n: 2, aws: FAKE_AWS_KEY }) + '\n');
    case '/sse': {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const n = Number(u.searchParams.get('n') ?? '3');
      for (let i = 0; i < n; i++) {
        await gate();
        res.write(`id: ${i}\nevent: token\ndata: {"i":${i},"delta":"${i === 1 ? FAKE_GITHUB_TOKEN : 'word' + i}"}\n\n`);
      }
      return void res.end();
    }
    case '/reset':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial body '.repeat(100));
      await new Promise((r) => setTimeout(r, 30));
      return void res.socket?.destroy();
    case '/status':
      return json(res, { status: Number(u.searchParams.get('code') ?? '200') }, Number(u.searchParams.get('code') ?? '200'));
    default:
      return json(res, { path: u.pathname, query: u.search }, u.pathname.startsWith('/missing') ? 404 : 200);
  }
}
