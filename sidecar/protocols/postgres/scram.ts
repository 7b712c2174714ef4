// Client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677, as PostgreSQL speaks it) and the md5 password hash, for the upstream login.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
/** PostgreSQL ignores the SCRAM username (it uses the start-up user); libpq sends an empty one. */
const GS2_HEADER = 'n,,';
/** A server asking for more PBKDF2 rounds than this is refused: a hostile server could pin a core. */
const MAX_ITERATIONS = 1_000_000;

/** Thrown for a server message that breaks the exchange; the message never contains the password. */
export class ScramError extends Error {
  override readonly name = 'ScramError';
}

/** What the client must remember between its first message and the server's final message. */
export interface ScramState {
  readonly clientNonce: string;
  readonly clientFirstBare: string;
}

export interface ScramContinue {
  /** client-final-message to send in the SASLResponse. */
  readonly clientFinal: string;
  /** The ServerSignature the server must prove in its server-final-message. */
  readonly expectedServerSignature: Buffer;
}

/** SASLprep is skipped as libpq does for ASCII passwords; non-ASCII passwords are used as raw UTF-8 (also what libpq falls back to). */
function passwordBytes(password: string): Buffer {
  return Buffer.from(password.normalize('NFKC'), 'utf8');
}

/** client-first-message (sent in SASLInitialResponse) and the state to keep. */
export function clientFirst(nonce: string = randomBytes(18).toString('base64')): { readonly message: string; readonly state: ScramState } {
  const clientFirstBare = `n=,r=${nonce}`;
  return { message: GS2_HEADER + clientFirstBare, state: { clientNonce: nonce, clientFirstBare } };
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ScramError(`malformed SCRAM attribute ${JSON.stringify(part.slice(0, 20))} from the server`);
    out.set(part.slice(0, 1), part.slice(2));
  }
  return out;
}

function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/** Reads server-first-message and computes client-final-message with the proof. */
export function clientFinal(state: ScramState, serverFirst: string, password: string): ScramContinue {
  const attrs = attributes(serverFirst);
  if (attrs.has('m')) throw new ScramError('the server asked for a SCRAM extension this client does not support');
  const nonce = attrs.get('r');
  const saltB64 = attrs.get('s');
  const iterText = attrs.get('i');
  if (nonce === undefined || saltB64 === undefined || iterText === undefined) throw new ScramError('the server-first-message lacks r, s or i');
  if (!nonce.startsWith(state.clientNonce) || nonce.length <= state.clientNonce.length) {
    throw new ScramError('the server nonce does not extend the client nonce (possible replay or man in the middle)');
  }
  const iterations = Number(iterText);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) throw new ScramError(`the server asked for ${iterText} iterations; accepted: 1..${MAX_ITERATIONS}`);
  const salt = Buffer.from(saltB64, 'base64');
  if (salt.length === 0) throw new ScramError('the server sent an empty salt');
  const salted = pbkdf2Sync(passwordBytes(password), salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
  const authMessage = `${state.clientFirstBare},${serverFirst},${withoutProof}`;
  const clientSignature = hmac(storedKey, authMessage);
  const proof = xor(clientKey, clientSignature).toString('base64');
  const serverKey = hmac(salted, 'Server Key');
  return { clientFinal: `${withoutProof},p=${proof}`, expectedServerSignature: hmac(serverKey, authMessage) };
}

/** Checks server-final-message: the server must prove it knows the password too (mutual authentication). */
export function verifyServerFinal(expected: Buffer, serverFinal: string): void {
  const attrs = attributes(serverFinal);
  const err = attrs.get('e');
  if (err !== undefined) throw new ScramError(`the server ended SCRAM with error ${JSON.stringify(err.slice(0, 60))}`);
  const v = attrs.get('v');
  if (v === undefined) throw new ScramError('the server-final-message has no signature');
  const got = Buffer.from(v, 'base64');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new ScramError('the server signature does not verify: the upstream does not know the credential (possible impostor); refusing the connection');
  }
}

/** PostgreSQL's md5 response: 'md5' + md5(md5(password + user) + salt). */
export function md5Password(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
}
