// A real OIDC provider (the oidc-provider package) on 127.0.0.1 for tests: discovery, JWKS, client-credentials JWT access tokens with groups.
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { freePort } from '../env/ports.ts';

/** The audience every chaperone token carries; the other resources exist to make hostile tokens for real. */
export const AUDIENCE = 'chaperone';

/** Resource indicators (RFC 8707) the provider knows, each signing a JWT access token a certain way. */
export const RESOURCES = {
  /** RS256, 5 min, aud chaperone: the normal agent token. */
  rs256: 'urn:chaperone:rs256',
  /** ES256, 5 min, aud chaperone. */
  es256: 'urn:chaperone:es256',
  /** RS256, 2 h: refused as lifetime-too-long by a 1 h maximum. */
  long: 'urn:chaperone:long',
  /** RS256, aud other-service: a token meant for someone else. */
  other: 'urn:other-service',
} as const;

interface ResourceServer {
  readonly audience: string;
  readonly ttl: number;
  readonly alg: 'RS256' | 'ES256';
}

const SERVERS: Readonly<Record<string, ResourceServer>> = {
  [RESOURCES.rs256]: { audience: AUDIENCE, ttl: 300, alg: 'RS256' },
  [RESOURCES.es256]: { audience: AUDIENCE, ttl: 300, alg: 'ES256' },
  [RESOURCES.long]: { audience: AUDIENCE, ttl: 7200, alg: 'RS256' },
  [RESOURCES.other]: { audience: 'other-service', ttl: 300, alg: 'RS256' },
};

export interface TestClient {
  readonly id: string;
  readonly groups: readonly string[];
  /** Put in the `act_for` claim: the human the agent acts for. */
  readonly actingFor?: string;
}

export interface SigningKey {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  /** Private JWK, so tests can forge tokens with the IdP's real key (expired, future nbf, foreign iss). */
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
}

export interface TlsOptions {
  readonly cert: string;
  readonly key: string;
  /** The CA that signed `cert`, so token() can reach the IdP over https. */
  readonly ca: string;
}

export interface TestIdpOptions {
  readonly clients?: readonly TestClient[];
  /** `iss` to claim; default the listening URL. A second IdP may claim the first one's issuer. */
  readonly issuer?: string;
  readonly port?: number;
  readonly tls?: TlsOptions;
  /** Reuse these keys (a restart without rotation). */
  readonly keys?: readonly SigningKey[];
}

export interface TestIdp {
  readonly issuer: string;
  readonly url: string;
  readonly port: number;
  readonly keys: readonly SigningKey[];
  /** Requests per path since start (e.g. `/jwks`), counted at the server. */
  readonly requests: Map<string, number>;
  /** A real JWT access token for a client via the client-credentials grant. */
  token(clientId: string, resource?: string): Promise<string>;
  /** Stop and start again on the same port and issuer; with rotate, new signing keys (new kids). */
  restart(o?: { readonly rotate?: boolean }): Promise<TestIdp>;
  close(): Promise<void>;
}

export const DEFAULT_CLIENTS: readonly TestClient[] = [
  { id: 'agent-reader', groups: ['agents', 'db-readers'], actingFor: 'alice@example.com' },
  { id: 'agent-writer', groups: ['agents', 'db-writers'] },
  { id: 'agent-nogroups', groups: [] },
];

async function makeKey(alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `test-${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  const base = { alg, kid, use: 'sig' };
  return { alg, kid, privateJwk: { ...(await exportJWK(privateKey)), ...base }, publicJwk: { ...(await exportJWK(publicKey)), ...base } };
}

export async function makeSigningKeys(): Promise<SigningKey[]> {
  return Promise.all([makeKey('RS256'), makeKey('ES256')]);
}

/** The slice of oidc-provider we use (it ships no types; @types/oidc-provider is not installed). */
interface OidcProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}
type ProviderCtor = new (issuer: string, config: unknown) => OidcProvider;

/** Typed as string so tsc does not look for the package's (missing) declarations. */
const OIDC_PROVIDER_MODULE: string = 'oidc-provider';

async function loadProvider(): Promise<ProviderCtor> {
  const mod = (await import(OIDC_PROVIDER_MODULE)) as { default: ProviderCtor };
  return mod.default;
}

/** A Map-backed adapter (the same as the built-in one, which prints a warning per instance). */
class MemoryAdapter {
  private static readonly store = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
  constructor(private readonly model: string) {}
  private key(id: string): string {
    return `${this.model}:${id}`;
  }
  upsert(id: string, payload: Record<string, unknown>, expiresIn: number): Promise<void> {
    MemoryAdapter.store.set(this.key(id), { payload, expiresAt: Date.now() + expiresIn * 1000 });
    return Promise.resolve();
  }
  find(id: string): Promise<Record<string, unknown> | undefined> {
    const e = MemoryAdapter.store.get(this.key(id));
    return Promise.resolve(e !== undefined && e.expiresAt > Date.now() ? e.payload : undefined);
  }
  findByUid(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  findByUserCode(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  consume(id: string): Promise<void> {
    const e = MemoryAdapter.store.get(this.key(id));
    if (e !== undefined) e.payload['consumed'] = Math.floor(Date.now() / 1000);
    return Promise.resolve();
  }
  destroy(id: string): Promise<void> {
    MemoryAdapter.store.delete(this.key(id));
    return Promise.resolve();
  }
  revokeByGrantId(): Promise<void> {
    return Promise.resolve();
  }
}

async function buildProvider(issuer: string, clients: readonly TestClient[], secrets: Map<string, string>, keys: readonly SigningKey[]): Promise<OidcProvider> {
  const byId = new Map(clients.map((c) => [c.id, c]));
  const Provider = await loadProvider();
  return new Provider(issuer, {
    adapter: MemoryAdapter,
    clients: clients.map((c) => ({ client_id: c.id, client_secret: secrets.get(c.id)!, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] })),
    jwks: { keys: keys.map((k) => k.privateJwk) },
    scopes: ['connect'],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCES.rs256,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => {
          const rs = SERVERS[resource];
          if (rs === undefined) throw new Error(`test IdP: unknown resource ${resource}`);
          return { scope: 'connect', audience: rs.audience, accessTokenTTL: rs.ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: rs.alg } } };
        },
      },
    },
    ttl: { ClientCredentials: (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }) => token.resourceServer?.accessTokenTTL ?? 300 },
    // The groups claim, and the human the agent acts for, per client (what a real IdP maps from its directory).
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => {
      const c = byId.get(token.clientId ?? '');
      return c === undefined ? undefined : { groups: [...c.groups], ...(c.actingFor !== undefined ? { act_for: c.actingFor } : {}) };
    },
  });
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** POST a form with node:http(s), so a test CA can be passed (global fetch would need an undici dispatcher). */
function post(url: string, form: string, authorization: string, ca: string | undefined): Promise<{ status: number; text: string }> {
  const req = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const r = req(url, { method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(form);
  });
}

/** Starts the provider; `close()` it in `after()`. */
export async function startOidcProvider(o: TestIdpOptions = {}): Promise<TestIdp> {
  const port = o.port ?? (await freePort());
  const url = `${o.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${port}`;
  const issuer = o.issuer ?? url;
  const clients = o.clients ?? DEFAULT_CLIENTS;
  const secrets = new Map(clients.map((c) => [c.id, randomBytes(24).toString('base64url')])); // synthesized per run
  const keys = o.keys ?? (await makeSigningKeys());
  const provider = await buildProvider(issuer, clients, secrets, keys);
  const callback = provider.callback();
  const requests = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.set(path, (requests.get(path) ?? 0) + 1);
    void callback(req, res);
  };
  const server = o.tls !== undefined ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, handler) : createHttpServer(handler);
  await listen(server, port);

  const idp: TestIdp = {
    issuer,
    url,
    port,
    keys,
    requests,
    async token(clientId, resource = RESOURCES.rs256) {
      const secret = secrets.get(clientId);
      if (secret === undefined) throw new Error(`test IdP: no client ${clientId}`);
      const form = new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'connect' }).toString();
      const auth = `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
      const res = await post(`${url}/token`, form, auth, o.tls?.ca);
      const body = JSON.parse(res.text) as { access_token?: string; error?: string; error_description?: string };
      if (res.status !== 200 || body.access_token === undefined) throw new Error(`test IdP token: HTTP ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`);
      return body.access_token;
    },
    async restart(r = {}) {
      await idp.close();
      return startOidcProvider({ ...o, port, issuer, clients, keys: r.rotate === true ? await makeSigningKeys() : keys });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return idp;
}
