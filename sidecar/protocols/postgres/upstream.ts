// The real PostgreSQL connection: credential files, TLS (disable/require/verify-full), start-up and SCRAM/md5/cleartext login.
import { readFile } from 'node:fs/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { PostgresConnectionConfig, PostgresTlsConfig } from '../../core/config-types.ts';
import { BackendFramer, decodeAuthentication, decodeBackendKeyData, decodeErrorFields, decodeReadyStatus } from './backend-framer.ts';
import { BackendCode } from './codes.ts';
import type { BackendFrame, ErrorFields, TransactionStatus } from './messages.ts';
import { clientFinal, clientFirst, md5Password, SCRAM_SHA_256, ScramError, verifyServerFinal, type ScramContinue, type ScramState } from './scram.ts';
import { passwordMessage, saslInitialResponse, saslResponse, sslRequest, startupMessage, cancelRequest } from './serialize-frontend.ts';

export interface Credential {
  readonly user: string;
  readonly password: string;
}

/** Why the upstream could not be used; `kind` picks the error-table entry. Never carries the password. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(
    readonly kind: 'unavailable' | 'auth',
    message: string,
    /** The upstream's own ErrorResponse, when it sent one. */
    readonly fields?: ErrorFields,
  ) {
    super(message);
  }
}

/** Reads the mounted credential on every connect (Secrets rotate): a user+password file pair or a URL file. */
export async function readCredential(c: PostgresConnectionConfig['credentials']): Promise<Credential> {
  try {
    if (c.urlFile !== undefined) return parseCredentialUrl((await readFile(c.urlFile, 'utf8')).trim());
    const [user, password] = await Promise.all([readFile(c.usernameFile, 'utf8'), readFile(c.passwordFile, 'utf8')]);
    // A trailing newline from `echo` or kubectl create secret --from-file is not part of the credential.
    return { user: user.replace(/\r?\n$/, ''), password: password.replace(/\r?\n$/, '') };
  } catch (e) {
    if (e instanceof UpstreamError) throw e;
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const path = (e as NodeJS.ErrnoException).path ?? 'the credential file';
    throw new UpstreamError('auth', `the credential file ${path} cannot be read (${code}); check the Secret mount`);
  }
}

/** `postgresql://user:password@host/db`: only the user and password are used (the connection config decides host and database). */
export function parseCredentialUrl(text: string): Credential {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UpstreamError('auth', 'the credential URL file does not hold a URL like postgresql://user:password@host/db');
  }
  if (u.protocol !== 'postgresql:' && u.protocol !== 'postgres:') throw new UpstreamError('auth', `the credential URL has scheme ${u.protocol}; expected postgresql:`);
  if (u.username === '') throw new UpstreamError('auth', 'the credential URL has no user name');
  return { user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: PostgresTlsConfig;
  readonly connectTimeoutMs: number;
  readonly maxMessageSize: number;
}

export interface UpstreamSession {
  readonly socket: Socket | TLSSocket;
  /** The framer in use: the session keeps pushing into it. */
  readonly framer: BackendFramer;
  /** ParameterStatus frames (raw) received during start-up, in order. */
  readonly parameterStatus: readonly BackendFrame[];
  /** NoticeResponse frames during start-up. */
  readonly notices: readonly BackendFrame[];
  readonly processId: number;
  readonly secretKey: Buffer;
  readonly status: TransactionStatus;
  /** Frames that arrived after ReadyForQuery in the same chunk. */
  readonly extra: readonly BackendFrame[];
}

async function tlsOptions(t: PostgresTlsConfig, host: string): Promise<ConnectionOptions> {
  const verify = t.mode === 'verify-full';
  const o: { -readonly [K in keyof ConnectionOptions]: ConnectionOptions[K] } = { rejectUnauthorized: verify };
  const name = t.serverName ?? host;
  if (isIP(name) === 0) o.servername = name;
  else o.host = name;
  try {
    if (t.caFile !== undefined) o.ca = await readFile(t.caFile, 'utf8');
    if (t.certFile !== undefined && t.keyFile !== undefined) {
      o.cert = await readFile(t.certFile, 'utf8');
      o.key = await readFile(t.keyFile, 'utf8');
    }
  } catch (e) {
    throw new UpstreamError('auth', `a TLS file cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'} ${(e as NodeJS.ErrnoException).path ?? ''}); check the mount`);
  }
  if (!verify) o.checkServerIdentity = () => undefined;
  return o;
}

/** Opens TCP, then negotiates TLS when the mode asks for it. */
export async function openSocket(t: UpstreamTarget, signal?: AbortSignal): Promise<Socket | TLSSocket> {
  const raw = await tcp(t, signal);
  if (t.tls.mode === 'disable') return raw;
  try {
    const answer = await exchangeByte(raw, sslRequest(), t.connectTimeoutMs);
    if (answer !== 0x53) throw new UpstreamError('auth', `the upstream does not offer TLS (answered ${JSON.stringify(String.fromCharCode(answer))} to SSLRequest) but tls.mode is ${t.tls.mode}`);
    const opts = await tlsOptions(t.tls, t.host);
    return await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ ...opts, socket: raw }, () => resolve(s));
      s.once('error', (e: Error) => reject(new UpstreamError('auth', `TLS to the upstream failed: ${e.message}`)));
    });
  } catch (e) {
    raw.destroy();
    throw e;
  }
}

function tcp(t: UpstreamTarget, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: t.host, port: t.port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError('unavailable', `connecting to ${t.host}:${t.port} timed out after ${t.connectTimeoutMs} ms`));
    }, t.connectTimeoutMs);
    const onAbort = (): void => {
      s.destroy();
      reject(new UpstreamError('unavailable', 'the client went away while connecting'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(new UpstreamError('unavailable', `connecting to ${t.host}:${t.port} failed (${e.code ?? e.message})`));
    });
  });
}

/** Writes `out` and resolves with the first byte answered (SSLRequest). */
function exchangeByte(s: Socket, out: Buffer, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new UpstreamError('unavailable', `the upstream did not answer SSLRequest within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      if (chunk.length !== 1) return done(new UpstreamError('auth', 'the upstream sent more than one byte in answer to SSLRequest (possible injection, CVE-2021-23222); refused'));
      done(null, chunk[0] ?? 0);
    };
    const onEnd = (): void => done(new UpstreamError('unavailable', 'the upstream closed the connection during SSLRequest'));
    const onError = (e: Error): void => done(new UpstreamError('unavailable', `the upstream connection failed during SSLRequest (${e.message})`));
    function done(err: Error | null, b = 0): void {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('error', onError);
      s.pause();
      if (err) reject(err);
      else resolve(b);
    }
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onError);
    s.write(out);
  });
}

/** Logs in upstream: start-up, authentication (SCRAM-SHA-256, md5, cleartext), parameters, key, ReadyForQuery. */
export async function connectUpstream(t: UpstreamTarget, cred: Credential, params: ReadonlyMap<string, string>, signal?: AbortSignal): Promise<UpstreamSession> {
  const socket = await openSocket(t, signal);
  try {
    return await login(socket, t, cred, params);
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

interface LoginState {
  scram: ScramState | null;
  expect: ScramContinue | null;
  /** SASLFinal arrived and its server signature verified. */
  scramVerified: boolean;
  processId: number;
  secretKey: Buffer;
  readonly parameterStatus: BackendFrame[];
  readonly notices: BackendFrame[];
}

function login(socket: Socket | TLSSocket, t: UpstreamTarget, cred: Credential, params: ReadonlyMap<string, string>): Promise<UpstreamSession> {
  const framer = new BackendFramer({ maxMessageSize: t.maxMessageSize });
  const st: LoginState = { scram: null, expect: null, scramVerified: false, processId: 0, secretKey: Buffer.alloc(4), parameterStatus: [], notices: [] };
  return new Promise((resolve, reject) => {
    let finished = false;
    const timer = setTimeout(() => fail(new UpstreamError('unavailable', `the upstream did not finish start-up within ${t.connectTimeoutMs} ms`)), t.connectTimeoutMs);
    const cleanup = (): void => {
      finished = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    function fail(e: Error): void {
      if (finished) return;
      cleanup();
      reject(e);
    }
    const onError = (e: Error): void => fail(new UpstreamError('unavailable', `the upstream connection failed during start-up (${e.message})`));
    const onClose = (): void => fail(new UpstreamError('unavailable', 'the upstream closed the connection during start-up'));
    const onData = (chunk: Buffer): void => {
      const extra: BackendFrame[] = [];
      let ready: TransactionStatus | null = null;
      try {
        framer.push(chunk, (f) => {
          if (ready !== null) extra.push(f);
          else ready = loginFrame(f, st, socket, cred);
        });
      } catch (e) {
        fail(e instanceof UpstreamError ? e : scramOrProtocol(e));
        return;
      }
      if (ready === null || finished) return;
      cleanup();
      socket.pause();
      resolve({ socket, framer, parameterStatus: st.parameterStatus, notices: st.notices, processId: st.processId, secretKey: st.secretKey, status: ready, extra });
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.write(startupMessage(params));
    socket.resume();
  });
}

function scramOrProtocol(e: unknown): UpstreamError {
  if (e instanceof ScramError) return new UpstreamError('auth', `SCRAM with the upstream failed: ${e.message}`);
  return new UpstreamError('unavailable', `the upstream sent an invalid start-up message: ${(e as Error).message}`);
}

/** Handles one start-up frame; returns the transaction status once ReadyForQuery arrives. */
function loginFrame(f: BackendFrame, st: LoginState, socket: Socket | TLSSocket, cred: Credential): TransactionStatus | null {
  switch (f.code) {
    case BackendCode.Authentication:
      authStep(f, st, socket, cred);
      return null;
    case BackendCode.ErrorResponse: {
      const fields = decodeErrorFields(f);
      const state = fields.get('C') ?? '';
      const kind = state.startsWith('28') || state === '3D000' ? 'auth' : 'unavailable';
      throw new UpstreamError(kind, `the upstream refused the start-up (SQLSTATE ${state})`, fields);
    }
    case BackendCode.ParameterStatus:
      st.parameterStatus.push(f);
      return null;
    case BackendCode.BackendKeyData: {
      const k = decodeBackendKeyData(f);
      st.processId = k.processId;
      st.secretKey = Buffer.from(k.secretKey);
      return null;
    }
    case BackendCode.NoticeResponse:
      st.notices.push(f);
      return null;
    case BackendCode.NegotiateProtocolVersion:
      return null;
    case BackendCode.ReadyForQuery:
      return decodeReadyStatus(f);
    default:
      throw new UpstreamError('unavailable', `unexpected message 0x${f.code.toString(16)} from the upstream during start-up`);
  }
}

function authStep(f: BackendFrame, st: LoginState, socket: Socket | TLSSocket, cred: Credential): void {
  const m = decodeAuthentication(f);
  switch (m.name) {
    case 'authenticationOk':
      // A SCRAM exchange must have ended with a verified server signature (SASLFinal) before Ok.
      if (st.scram !== null && !st.scramVerified) throw new UpstreamError('auth', 'the upstream said Ok without proving the SCRAM server signature; refusing (possible impostor)');
      return;
    case 'authenticationCleartextPassword':
      socket.write(passwordMessage(cred.password));
      return;
    case 'authenticationMD5Password':
      socket.write(passwordMessage(md5Password(cred.user, cred.password, m.salt)));
      return;
    case 'authenticationSASL': {
      if (!m.mechanisms.includes(SCRAM_SHA_256)) throw new UpstreamError('auth', `the upstream offers SASL mechanisms ${m.mechanisms.join(', ')}; only ${SCRAM_SHA_256} is supported`);
      const first = clientFirst();
      st.scram = first.state;
      socket.write(saslInitialResponse(SCRAM_SHA_256, first.message));
      return;
    }
    case 'authenticationSASLContinue': {
      if (st.scram === null) throw new UpstreamError('auth', 'SASLContinue before SASL');
      st.expect = clientFinal(st.scram, m.data.toString('utf8'), cred.password);
      socket.write(saslResponse(st.expect.clientFinal));
      return;
    }
    case 'authenticationSASLFinal': {
      if (st.expect === null) throw new UpstreamError('auth', 'SASLFinal before SASLContinue');
      verifyServerFinal(st.expect.expectedServerSignature, m.data.toString('utf8'));
      st.scramVerified = true;
      return;
    }
    default:
      throw new UpstreamError('auth', `the upstream asks for ${m.name}, which the sidecar does not support; use scram-sha-256, md5 or password in pg_hba.conf`);
  }
}

/** Sends a CancelRequest for the upstream backend on a fresh connection (over TLS when the mode asks), then closes it. */
export async function sendUpstreamCancel(t: UpstreamTarget, processId: number, secretKey: Buffer): Promise<void> {
  const s = await openSocket(t);
  await new Promise<void>((resolve) => {
    s.once('close', () => resolve());
    s.once('error', () => resolve());
    s.end(cancelRequest(processId, secretKey));
    s.resume();
    setTimeout(() => {
      s.destroy();
      resolve();
    }, t.connectTimeoutMs).unref();
  });
}
