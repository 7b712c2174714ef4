// The demo's upstreams: a PostgreSQL database and a tickets API whose data holds synthesized secrets and PII (never real; seeded, so every run prints the same).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DETECTORS, createRng, generateSample } from '../../sidecar/masking/detectors/index.ts';
import type { Postgres } from '../../test/env/postgres.ts';

/** A fake but format-correct secret from the detector table. */
export function fake(id: string, seed: number): string {
  const d = DETECTORS.find((x) => x.id === id);
  const s = d ? generateSample(d, createRng(seed)) : undefined;
  if (!s) throw new Error(`no sample generator for detector ${id}`);
  return s.secret;
}

export interface SampleData {
  /** Values that must never reach the agent in clear. */
  readonly secrets: Readonly<Record<string, string>>;
  readonly emails: readonly string[];
  readonly phones: readonly string[];
}

export function sampleData(): SampleData {
  return {
    secrets: { aws: fake('aws-access-key-id', 11), github: fake('github-pat', 11), stripe: fake('stripe-secret-key', 11), slack: fake('slack-bot-token', 11) },
    emails: ['ada.lovelace@example.com', 'alan.turing@example.org', 'grace.hopper@example.net'],
    phones: ['+1 415 555 0132', '+44 20 7946 0958', '+1 212 555 0187'],
  };
}

const q = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** Database `app` owned by `owner` with customers (emails, phones, a leaked AWS key in notes) and api_tokens. */
export async function seed(pg: Postgres, owner: string, d: SampleData): Promise<void> {
  await pg.psql(`CREATE DATABASE app OWNER ${owner}`);
  const [e1, e2, e3] = d.emails;
  const [p1, p2, p3] = d.phones;
  await pg.psql(
    `CREATE TABLE customers (id int PRIMARY KEY, name text, email text, phone text, notes text);
     INSERT INTO customers VALUES
       (1, 'Ada Lovelace', ${q(e1 ?? '')}, ${q(p1 ?? '')}, 'prefers email'),
       (2, 'Alan Turing', ${q(e2 ?? '')}, ${q(p2 ?? '')}, ${q(`debug: export AWS_ACCESS_KEY_ID=${d.secrets.aws ?? ''}`)}),
       (3, 'Grace Hopper', ${q(e3 ?? '')}, ${q(p3 ?? '')}, 'VIP');
     CREATE TABLE api_tokens (id int PRIMARY KEY, service text, token text, created date);
     INSERT INTO api_tokens VALUES
       (1, 'github', ${q(d.secrets.github ?? '')}, '2026-01-10'),
       (2, 'stripe', ${q(d.secrets.stripe ?? '')}, '2026-02-01'),
       (3, 'legacy-ci', ${q(d.secrets.slack ?? '')}, '2024-03-15');
     ALTER TABLE customers OWNER TO ${owner};
     ALTER TABLE api_tokens OWNER TO ${owner};`,
    { database: 'app' },
  );
}

export interface TicketsApi {
  readonly url: string;
  /** Whether every request arrived with the credential from the Secret (the agent never held it). */
  readonly sawCredential: () => boolean;
  readonly requests: () => number;
  close(): Promise<void>;
}

/** A tiny HTTP API on loopback: GET /api/tickets/7 answers JSON with a reporter email and an integration token. */
export async function startTicketsApi(expectedToken: string, d: SampleData): Promise<TicketsApi> {
  let ok = true;
  let n = 0;
  const server: Server = createServer((req, res) => {
    n += 1;
    if (req.headers.authorization !== `Bearer ${expectedToken}`) ok = false;
    const body = JSON.stringify({ id: 7, title: 'Refund for order 1042', reporter: d.emails[0], integration: { vendor: 'github', token: d.secrets.github }, status: 'open' });
    res.writeHead(req.url === '/api/tickets/7' ? 200 : 404, { 'content-type': 'application/json' }).end(req.url === '/api/tickets/7' ? body : '{"error":"not found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api`, sawCredential: () => ok && n > 0, requests: () => n,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
