// PEM encoding and certificate serials shared by the operator's webhook PKI and the sidecar's loopback TLS (no X.509 library here).
import { randomBytes } from 'node:crypto';

/** DER bytes as a PEM block with 64-character lines. */
export function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Positive 16-byte serial (the top bit cleared so DER keeps it positive). */
export function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  return b.toString('hex');
}
