// bearerToken: given a header, returns the token or nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bearerToken, requestBearer } from './bearer.ts';

const cases: [string | string[] | undefined, string | undefined][] = [
  ['Bearer abc.def.ghi', 'abc.def.ghi'],
  ['bearer abc.def.ghi', 'abc.def.ghi'],
  ['BEARER   abc.def.ghi  ', 'abc.def.ghi'],
  ['Basic dXNlcjpwYXNz', undefined],
  ['Bearer', undefined],
  ['Bearer a b', undefined],
  ['abc.def.ghi', undefined],
  [undefined, undefined],
  [['Bearer a.b.c', 'Bearer d.e.f'], undefined],
];
for (const [header, want] of cases) test(`given ${JSON.stringify(header)}, returns ${String(want)}`, () => assert.equal(bearerToken(header), want));

test('a real Node request with two Authorization headers has no token (Node keeps only the first in headers)', async () => {
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    seen.push(requestBearer(req));
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const send = (auth: string[]): Promise<void> => new Promise((resolve, reject) => {
    const rq = request({ host: '127.0.0.1', port, headers: ['host', `127.0.0.1:${port}`, ...auth.flatMap((v) => ['authorization', v])] }, (res) => res.resume().on('end', resolve));
    rq.on('error', reject);
    rq.end();
  });
  try {
    await send(['Bearer a.b.c', 'Bearer d.e.f']);
    await send(['Bearer a.b.c']);
  } finally {
    server.close();
  }
  assert.deepEqual(seen, [undefined, 'a.b.c']);
});
