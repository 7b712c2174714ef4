// The IPv6 loopback relays: [::1]:<port> reaches the 127.0.0.1 listener on the same port, byte for byte; targets follow the config; explicit mode has none.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { configRelayTargets, relayTargets, startLoopbackRelays } from './loopback-v6.ts';

const quiet = { info: () => undefined, warn: () => undefined };

function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
    s.on('end', () => s.end());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port })));
}

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '::1', port });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length + 5) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.write(text);
  });
}

describe('relayTargets', () => {
  it('given IPv4 loopback or wildcard listeners with fixed ports, relays them; ::, ::1 and port 0 need none', () => {
    assert.deepEqual(relayTargets([
      { name: 'a', host: '127.0.0.1', port: 5432 },
      { name: 'b', host: '0.0.0.0', port: 8080 },
      { name: 'c', host: '::', port: 8081 },
      { name: 'd', host: '::1', port: 8082 },
      { name: 'e', host: '127.0.0.1', port: 0 },
    ]), [{ name: 'a', port: 5432 }, { name: 'b', port: 8080 }]);
  });
  it('explicit mode (or no interception section) has no relays', () => {
    const connections = [{ name: 'a', listen: { host: '127.0.0.1', port: 5432 } }];
    assert.deepEqual(configRelayTargets({ connections }), []);
    assert.deepEqual(configRelayTargets({ interception: { mode: 'explicit' }, connections }), []);
    assert.deepEqual(configRelayTargets({ interception: { mode: 'transparent' }, connections }), [{ name: 'a', port: 5432 }]);
  });
});

describe('startLoopbackRelays', () => {
  it('a dial to [::1]:<port> reaches the IPv4 listener on that port both ways; update() gives removed ports up', async () => {
    const { server, port } = await echoServer();
    const relays = await startLoopbackRelays([{ name: 'db', port }], quiet);
    try {
      assert.deepEqual(relays.ports(), [port]);
      assert.equal(await roundTrip(port, 'hello over v6'), 'echo:hello over v6');
      await relays.update([]);
      assert.deepEqual(relays.ports(), []);
      await assert.rejects(roundTrip(port, 'x'), /ECONNREFUSED/);
    } finally {
      await relays.stop();
      server.close();
    }
  });
  it('a port already taken on [::1] is skipped (logged), the rest still start', async () => {
    const { server, port } = await echoServer();
    const squat = createServer();
    await new Promise<void>((r) => squat.listen({ host: '::1', port, ipv6Only: true }, r));
    const warned: string[] = [];
    const relays = await startLoopbackRelays([{ name: 'db', port }], { info: () => undefined, warn: (_o, m) => void warned.push(m) });
    try {
      assert.deepEqual(relays.ports(), []);
      assert.equal(warned.length, 1);
    } finally {
      await relays.stop();
      squat.close();
      server.close();
    }
  });
});
