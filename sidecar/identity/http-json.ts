// GET a small JSON document over http(s) with an optional CA and bearer token: node:https, so no undici import is needed for a CA.
//
// node:http(s) are required through createRequire, not imported: the ESM namespace of node:http
// evaluates its lazy WebSocket getters (undici), ~9-14 MB of RSS (see sidecar/admin/server.ts).
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';

const require = createRequire(import.meta.url);
const httpRequest = (require('node:http') as typeof import('node:http')).request;
const httpsRequest = (require('node:https') as typeof import('node:https')).request;

/** Discovery documents and JWKS are a few KiB; refuse anything absurd. */
export const MAX_JSON_BYTES = 1024 * 1024;

export interface GetJsonOptions {
  readonly ca: string | undefined;
  readonly bearerTokenFile: string | undefined;
  readonly timeoutMs: number;
}

async function authHeader(file: string | undefined): Promise<Record<string, string>> {
  if (file === undefined) return {};
  const token = (await readFile(file, 'utf8')).trim();
  return token === '' ? {} : { authorization: `Bearer ${token}` };
}

/** Resolves the parsed JSON of a 200 response; rejects with a message naming the URL and what failed (redirects are not followed). */
export async function getJson(url: string, o: GetJsonOptions): Promise<unknown> {
  const u = new URL(url);
  // The API server answers its JWKS only as application/jwk-set+json (406 for a plain application/json Accept).
  const headers = { accept: 'application/json, application/jwk-set+json', ...(await authHeader(o.bearerTokenFile)) };
  const req = u.protocol === 'https:' ? httpsRequest : u.protocol === 'http:' ? httpRequest : undefined;
  if (req === undefined) throw new Error(`${url}: only http and https URLs can be fetched`);
  return new Promise((resolve, reject) => {
    const r = req(u, { method: 'GET', headers, ca: o.ca }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_JSON_BYTES) res.destroy(new Error(`${url}: response larger than ${MAX_JSON_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('error', reject);
      res.on('close', () => reject(new Error(`${url}: the connection closed before the response ended`))); // no-op after 'end'
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode ?? '?'}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Error(`${url}: response is not JSON`));
        }
      });
    });
    // A total deadline, not only the socket idle timeout: a server dripping bytes must not hold a verify.
    const deadline = setTimeout(() => r.destroy(new Error(`${url}: no complete answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    deadline.unref();
    r.on('close', () => clearTimeout(deadline));
    r.on('error', (e) => reject(e.message.startsWith(url) ? e : new Error(`${url}: ${e.message}`)));
    r.end();
  });
}
