// Transparent mode over IPv6: ip6tables REDIRECT lands the agent's dials on [::1]:<listen.port>; these relays listen there and pipe to the IPv4 loopback listener.
//
// A relay is plain TCP, so it serves every protocol (PostgreSQL, HTTP, the kubernetes listener's TLS)
// without knowing it; the listener sees the client as 127.0.0.1 (the agent is in the pod either way).
// Backpressure both ways (pipe), a FIN from either side ends both, an error destroys both.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** One IPv4 loopback listener to reach from [::1] on the same port. */
export interface RelayTarget {
  readonly name: string;
  readonly port: number;
}

export interface RelayLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface LoopbackRelays {
  /** Ports bound on [::1] now. */
  ports(): readonly number[];
  /** Follows a reloaded config: new ports bound, removed ones closed. */
  update(targets: readonly RelayTarget[]): Promise<void>;
  stop(): Promise<void>;
}

/** Which listeners get a relay: fixed ports on an IPv4-only loopback host (`::`, `::1` and `localhost` already answer on IPv6). */
export function relayTargets(listeners: readonly { readonly name: string; readonly host: string; readonly port: number }[]): RelayTarget[] {
  return listeners.filter((l) => l.port > 0 && (l.host === '127.0.0.1' || l.host === '0.0.0.0')).map((l) => ({ name: l.name, port: l.port }));
}

function pipeBoth(a: Socket, b: Socket): void {
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.pipe(b);
  b.pipe(a);
  a.once('error', end);
  b.once('error', end);
  a.once('close', end);
  b.once('close', end);
}

async function bind(t: RelayTarget, sockets: Set<Socket>, log: RelayLog): Promise<Server | undefined> {
  const server = createServer({ noDelay: true }, (client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    const upstream = connect({ host: '127.0.0.1', port: t.port, noDelay: true });
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    pipeBoth(client, upstream);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '::1', port: t.port, ipv6Only: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // No IPv6 in this network namespace: there is no IPv6 dial to serve either.
    if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') log.info({ connection: t.name, port: t.port, code }, 'no IPv6 loopback here; IPv6 relay skipped');
    else log.warn({ connection: t.name, port: t.port, code }, 'could not bind [::1] for the IPv6 relay; the agent\'s IPv6 dials to this upstream are refused (fail closed)');
    return undefined;
  }
  return server;
}

/** Starts one relay per target; a port that cannot be bound is logged and skipped (its dials stay refused). */
export async function startLoopbackRelays(targets: readonly RelayTarget[], log: RelayLog): Promise<LoopbackRelays> {
  const servers = new Map<number, Server>();
  const sockets = new Set<Socket>();
  const add = async (list: readonly RelayTarget[]): Promise<void> => {
    for (const t of list) {
      if (servers.has(t.port)) continue;
      const s = await bind(t, sockets, log);
      if (s !== undefined) servers.set(t.port, s);
    }
  };
  const close = (s: Server): Promise<void> => new Promise((resolve) => s.close(() => resolve()));
  await add(targets);
  if (servers.size > 0) log.info({ ports: [...servers.keys()] }, 'IPv6 loopback relays listening (transparent interception)');
  return {
    ports: () => [...servers.keys()],
    update: async (next) => {
      const want = new Set(next.map((t) => t.port));
      for (const [port, s] of [...servers]) {
        if (want.has(port)) continue;
        servers.delete(port);
        // Open relayed sessions finish on their own; only the port is given up.
        void close(s);
      }
      await add(next);
    },
    stop: async () => {
      const all = [...servers.values()];
      servers.clear();
      for (const s of sockets) s.destroy();
      await Promise.all(all.map(close));
    },
  };
}

/** The connections' listeners of a config as relay targets (transparent mode only; otherwise none). */
export function configRelayTargets(config: { readonly interception?: { readonly mode: string } | undefined; readonly connections: readonly { readonly name: string; readonly listen: { readonly host: string; readonly port: number } }[] }): RelayTarget[] {
  if (config.interception?.mode !== 'transparent') return [];
  return relayTargets(config.connections.map((c) => ({ name: c.name, host: c.listen.host, port: c.listen.port })));
}

/** No relays (explicit mode, or before start). */
export const NO_RELAYS: LoopbackRelays = { ports: () => [], update: () => Promise.resolve(), stop: () => Promise.resolve() };
