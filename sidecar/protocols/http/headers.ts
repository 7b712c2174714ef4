// Request and response headers across the gateway: hop-by-hop removal (RFC 9110 §7.6.1), the agent's token out, the credential in, echoes scrubbed.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Masker } from '../../masking/index.ts';

/** Connection-specific headers never forwarded in either direction. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Encodings the gateway can decode to mask; anything else is not asked for. */
export const DECODABLE = new Set(['gzip', 'x-gzip', 'deflate', 'br', 'identity']);

/** HTTP-date (IMF-fixdate), the only shape a date header may have to skip the scan. */
const HTTP_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const DATES = new Set(['date', 'last-modified', 'expires']);

/**
 * A value whose shape carries no free text is not scanned (for speed): a short Content-Length, an
 * HTTP-date. Every other header — ETag, Cache-Control, Vary, Content-Type included, whatever its
 * name promises — is scanned: an upstream can put anything in any of them.
 */
function plainValue(k: string, v: string): boolean {
  if (k === 'content-length') return /^\d{1,12}$/.test(v);
  return DATES.has(k) && HTTP_DATE.test(v);
}

/** Names this long are scanned too (a secret needs at least this many characters). */
const SCANNED_NAME_LENGTH = 12;

function connectionTokens(h: IncomingHttpHeaders): Set<string> {
  const c: unknown = h['connection'];
  const out = new Set<string>();
  const values: string[] = Array.isArray(c) ? c.map(String) : typeof c === 'string' ? [c] : [];
  for (const v of values) {
    for (const t of v.split(',')) if (t.trim() !== '') out.add(t.trim().toLowerCase());
  }
  return out;
}

/** `accept-encoding` restricted to what we can decode (never zstd or compress: those would pass unmasked). */
export function decodableAcceptEncoding(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const kept = v.split(',').map((s) => s.trim()).filter((s) => {
    const name = s.split(';')[0]?.trim().toLowerCase() ?? '';
    return name !== '' && DECODABLE.has(name);
  });
  return kept.length > 0 ? kept.join(', ') : 'identity';
}

export interface UpstreamHeaderOptions {
  readonly host: string;
  readonly credential?: { readonly name: string; readonly value: string };
  /** Header names the agent may not set (the credential's own header, the agent's token). */
  readonly drop?: ReadonlySet<string>;
}

/** The agent's headers as the upstream gets them: hop-by-hop and Authorization removed, Host rewritten, the credential set. */
export function upstreamHeaders(h: IncomingHttpHeaders, o: UpstreamHeaderOptions): OutgoingHttpHeaders {
  const conn = connectionTokens(h);
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || conn.has(k) || k === 'authorization' || k === 'host' || k === 'expect' || o.drop?.has(k) === true) continue;
    out[k] = v;
  }
  out['host'] = o.host;
  const ae = decodableAcceptEncoding(typeof h['accept-encoding'] === 'string' ? h['accept-encoding'] : undefined);
  if (ae !== undefined) out['accept-encoding'] = ae;
  if (o.credential !== undefined) out[o.credential.name] = o.credential.value;
  return out;
}

/** `name=value; attrs`: the value is masked by the field rules (by cookie name) and the detectors. */
function maskSetCookie(masker: Masker, v: string, add: (f: Readonly<Record<string, number>>) => void): string {
  const semi = v.indexOf(';');
  const pair = semi < 0 ? v : v.slice(0, semi);
  const eq = pair.indexOf('=');
  if (eq < 0) return masker.maskText(v).value;
  const name = pair.slice(0, eq).trim();
  const r = masker.maskValue(pair.slice(eq + 1), name);
  if (r.changed) add(r.findings);
  const rest = semi < 0 ? '' : v.slice(semi);
  const rr = masker.maskText(rest);
  if (rr.changed) add(rr.findings);
  return `${pair.slice(0, eq + 1)}${r.value}${rr.value}`;
}

/**
 * The upstream's response headers as the agent gets them: hop-by-hop removed, every free-text value
 * masked (the credential is a keyword of `masker`, so an echo of it is masked too), Set-Cookie values
 * by the field rules. Returns the findings.
 */
export function agentHeaders(raw: IncomingHttpHeaders, masker: Masker, secrets: readonly string[] = []): { headers: OutgoingHttpHeaders; findings: Record<string, number> } {
  const conn = connectionTokens(raw);
  const findings: Record<string, number> = {};
  const add = (f: Readonly<Record<string, number>>): void => {
    for (const [k, n] of Object.entries(f)) findings[k] = (findings[k] ?? 0) + n;
  };
  const one = (k: string, v: string): string => {
    if (k === 'set-cookie') return maskSetCookie(masker, v, add);
    const r = masker.maskText(v);
    if (r.changed) add(r.findings);
    return r.value;
  };
  const headers: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined || HOP_BY_HOP.has(k) || conn.has(k)) continue;
    if (k.length >= SCANNED_NAME_LENGTH || secrets.some((s) => k.includes(s.toLowerCase()))) {
      // A header named by a secret is dropped whole (a name cannot carry a placeholder).
      const r = masker.maskText(k);
      if (r.changed || secrets.some((s) => k.includes(s.toLowerCase()))) {
        add(r.changed ? r.findings : { 'upstream-credential': 1 });
        continue;
      }
    }
    if (Array.isArray(v)) headers[k] = v.map((x) => (plainValue(k, x) ? x : one(k, x)));
    else headers[k] = plainValue(k, String(v)) ? v : one(k, String(v));
  }
  return { headers, findings };
}
