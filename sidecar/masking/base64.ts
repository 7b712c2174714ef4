// Base64 values (Kubernetes Secret `data`, docker `auths.*.auth`): decode, mask the plaintext, re-encode the same way.
import type { MaskResult } from './types.ts';
import type { Compiled } from './options.ts';
import { replacementText } from './replace.ts';

/** Nested carriers (base64 of JSON holding base64) are followed this deep, no deeper. */
export const MAX_DECODE_DEPTH = 3;
const STD = /^[A-Za-z0-9+/]+={0,2}$/;
const URL = /^[A-Za-z0-9_-]+={0,2}$/;
/** Shortest base64 value worth decoding (12 bytes of plaintext). */
export const MIN_BASE64_LENGTH = 16;
const DOCKER_AUTH_ID = 'docker-auth-password';

export interface Base64Form {
  readonly url: boolean;
  readonly padded: boolean;
}

/** Decodes a value that is entirely base64 (standard or URL alphabet), or undefined. */
export function decodeBase64(value: string): { bytes: Buffer; form: Base64Form } | undefined {
  if (value.length < MIN_BASE64_LENGTH) return undefined;
  const url = !STD.test(value);
  if (url && !URL.test(value)) return undefined;
  const body = value.replace(/=+$/, '');
  if (body.length % 4 === 1) return undefined;
  const padded = value.endsWith('=');
  if (padded && value.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(value, url ? 'base64url' : 'base64');
  // Unpadded input is re-encoded unpadded; inputs that needed no padding look "padded" either way.
  return { bytes, form: { url, padded: padded || body.length % 4 === 0 } };
}

export function encodeBase64(bytes: Buffer, form: Base64Form): string {
  const s = form.url ? bytes.toString('base64url') : bytes.toString('base64').replace(/=+$/, '');
  return form.padded ? s + '='.repeat((4 - (s.length % 4)) % 4) : s;
}

/** Plaintext worth scanning: valid UTF-8 without control characters other than whitespace. */
export function looksLikeText(bytes: Buffer): boolean {
  let control = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b < 0x20 && b !== 9 && b !== 10 && b !== 13) control++;
  }
  if (control > 0) return false;
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

export interface PlainMaskers {
  maskJson(c: Compiled, text: string, depth: number): MaskResult<string>;
  maskBytes(c: Compiled, buf: Buffer): MaskResult<Buffer>;
}

/** docker `auth` = base64("user:password"): the password part is masked even when no detector knows it. */
function dockerAuth(c: Compiled, plain: string): string | undefined {
  const colon = plain.indexOf(':');
  if (colon <= 0 || colon === plain.length - 1 || /\s/.test(plain)) return undefined;
  const r = replacementText(c.replacementFor(DOCKER_AUTH_ID), DOCKER_AUTH_ID, plain.slice(colon + 1), c.hmacKey, false);
  return plain.slice(0, colon + 1) + r;
}

/**
 * Masks the plaintext of a base64 value. Returns undefined when the value is not base64 text (the
 * caller then masks it as text). The result is base64 again, in the input's alphabet and padding.
 */
export function maskDecoded(c: Compiled, value: string, fieldName: string | undefined, depth: number, m: PlainMaskers): MaskResult<string> | undefined {
  if (depth >= MAX_DECODE_DEPTH) return undefined;
  const dec = decodeBase64(value);
  if (dec === undefined || !looksLikeText(dec.bytes)) return undefined;
  const plain = dec.bytes.toString('utf8');
  const field = fieldName === undefined ? undefined : c.fields.match(fieldName);
  if (field !== undefined) {
    const r = replacementText(c.replacementFor(field), field, plain, c.hmacKey, false);
    return { value: encodeBase64(Buffer.from(r, 'utf8'), dec.form), changed: true, findings: { [field]: 1 } };
  }
  const first = plain.trimStart().charAt(0);
  let masked: MaskResult<string>;
  if (first === '{' || first === '[') masked = m.maskJson(c, plain, depth + 1);
  else {
    const r = m.maskBytes(c, dec.bytes);
    masked = { value: r.changed ? r.value.toString('utf8') : plain, changed: r.changed, findings: r.findings };
  }
  if (!masked.changed && fieldName?.toLowerCase() === 'auth') {
    const auth = dockerAuth(c, plain);
    if (auth !== undefined) masked = { value: auth, changed: true, findings: { [DOCKER_AUTH_ID]: 1 } };
  }
  if (!masked.changed) return { value, changed: false, findings: {} };
  return { value: encodeBase64(Buffer.from(masked.value, 'utf8'), dec.form), changed: true, findings: masked.findings };
}
