// Decisions about one proxy request before anything is dialed (pure): the target (CONNECT authority or absolute-form URL), the agent's proxy token, framing that could smuggle a second request.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { canonicalHost, DEFAULT_HTTP_PORT } from './allow-list.ts';

export interface Target {
  /** Canonical host (lower case, IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** The host as an IP literal was asked for (not a name). */
  readonly ipLiteral: boolean;
}

export interface HttpTarget extends Target {
  /** Path and query for the upstream request line (origin-form). */
  readonly path: string;
  /** `Host` header the upstream gets: the URL's host, with the port when it is not 80. */
  readonly hostHeader: string;
}

export type Parsed<T> = { readonly ok: true; readonly target: T } | { readonly ok: false; readonly message: string };

function port(raw: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** `CONNECT host:port` (authority-form, RFC 9110 §9.3.6): a port is required; nothing else may follow. */
export function parseConnectTarget(raw: string | undefined): Parsed<Target> {
  const s = raw ?? '';
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/@\s]+):([0-9]+)$/.exec(s);
  if (!m?.[1] || m[2] === undefined) return { ok: false, message: `CONNECT needs host:port (got ${JSON.stringify(s.slice(0, 100))})` };
  const p = port(m[2]);
  if (p === undefined) return { ok: false, message: `CONNECT port ${m[2]} is not 1-65535` };
  const host = canonicalHost(m[1]);
  if (host === undefined) return { ok: false, message: `CONNECT host ${JSON.stringify(m[1].slice(0, 100))} is not a host name or IP address` };
  return { ok: true, target: { host, port: p, ipLiteral: isIP(host) !== 0 } };
}

/**
 * An absolute-form request target (`GET http://host/path`). Only `http:`: an `https://` URL sent to
 * a proxy would have the proxy speak TLS for the agent (use CONNECT). Userinfo is refused (a
 * credential in a URL, and a classic parser-confusion trick: `http://allowed@evil/`).
 */
export function parseAbsoluteTarget(raw: string | undefined): Parsed<HttpTarget> {
  const s = raw ?? '';
  if (s.startsWith('/')) return { ok: false, message: 'this is a forward proxy: the request target must be an absolute URL (http://host/path); set HTTP_PROXY, or use the connection listeners for reverse-proxied APIs' };
  if (!/^http:\/\//i.test(s)) {
    if (/^https:\/\//i.test(s)) return { ok: false, message: 'https:// URLs go through CONNECT (HTTPS_PROXY), not as a plain proxy request' };
    return { ok: false, message: 'the request target must be an http:// URL' };
  }
  const authority = s.slice(7).split(/[/?#]/, 1)[0] ?? '';
  if (authority.includes('@')) return { ok: false, message: 'the URL carries userinfo (user:password@); credentials do not belong in a proxied URL' };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return { ok: false, message: 'the request target is not a valid URL' };
  }
  if (u.username !== '' || u.password !== '') return { ok: false, message: 'the URL carries userinfo (user:password@); credentials do not belong in a proxied URL' };
  const host = canonicalHost(u.hostname);
  if (host === undefined) return { ok: false, message: `${JSON.stringify(u.hostname.slice(0, 100))} is not a host name or IP address` };
  const p = u.port === '' ? DEFAULT_HTTP_PORT : Number(u.port);
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return { ok: true, target: { host, port: p, ipLiteral: isIP(host) !== 0, path: `${u.pathname}${u.search}`, hostHeader: p === DEFAULT_HTTP_PORT ? bracketed : `${bracketed}:${p}` } };
}

/**
 * The agent's token from `Proxy-Authorization`: `Bearer <token>`, or `Basic` with the token as the
 * password (what clients send for `http://user:<token>@127.0.0.1:3128` in HTTP(S)_PROXY). Two
 * headers are ambiguous: none is taken.
 */
export function proxyToken(header: string | readonly string[] | undefined): string | undefined {
  if (header === undefined || Array.isArray(header)) return undefined;
  const v = (header as string).trim();
  const bearer = /^bearer\s+(\S+)$/i.exec(v);
  if (bearer?.[1]) return bearer[1];
  const basic = /^basic\s+([A-Za-z0-9+/=]+)$/i.exec(v);
  if (!basic?.[1]) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const password = colon < 0 ? '' : decoded.slice(colon + 1);
  return password === '' ? undefined : password;
}

/**
 * Framing that a second parser could read differently (request smuggling, RFC 9112 §6.3): both
 * Content-Length and Transfer-Encoding, several Content-Lengths, a Transfer-Encoding other than a
 * final `chunked`. node's parser refuses most of these itself; this is the second check, on what it let through.
 */
export function framingProblem(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): string | undefined {
  let cl = 0;
  let te = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = (rawHeaders[i] ?? '').toLowerCase();
    if (k === 'content-length') cl++;
    else if (k === 'transfer-encoding') te++;
  }
  if (cl > 0 && te > 0) return 'both Content-Length and Transfer-Encoding are set';
  if (cl > 1) return 'Content-Length appears more than once';
  if (te > 1) return 'Transfer-Encoding appears more than once';
  const length = headers['content-length'];
  if (length !== undefined && !/^[0-9]{1,15}$/.test(length)) return 'Content-Length is not a number';
  const enc = headers['transfer-encoding'];
  if (enc !== undefined && enc.trim().toLowerCase() !== 'chunked') return `Transfer-Encoding ${JSON.stringify(enc.slice(0, 40))} is not a single chunked`;
  return undefined;
}
