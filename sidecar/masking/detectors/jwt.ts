// JSON Web Tokens: three base64url segments whose header decodes to JSON with "alg".
import type { Detector, Rng } from '../types.ts';
import { B64URL } from './lib.ts';

function b64url(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}

/** True when the first segment decodes to a JSON object carrying `alg`. */
export function jwtHeaderValid(candidate: string): boolean {
  // The jwt.io sample token is printed in countless tutorials.
  if (candidate.endsWith('.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c')) return false;
  const head = candidate.slice(0, candidate.indexOf('.'));
  try {
    const parsed: unknown = JSON.parse(Buffer.from(head, 'base64url').toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && 'alg' in parsed;
  } catch {
    return false;
  }
}

function generate(rng: Rng): string {
  const algs = ['HS256', 'RS256', 'ES256', 'EdDSA'];
  const header = b64url(JSON.stringify({ alg: algs[rng.int(algs.length)], typ: 'JWT', kid: rng.pick(B64URL, 8) }));
  const payload = b64url(
    JSON.stringify({ sub: rng.pick('0123456789', 8), iss: 'https://issuer.test', exp: 1700000000 + rng.int(1e6), scope: 'read' }),
  );
  return `${header}.${payload}.${rng.pick(B64URL, 43 + rng.int(300))}`;
}

const a = generate({ int: (n) => 3 % n, pick: (al, len) => al.slice(5, 6).repeat(len) });
const fixedHeader = b64url('{"alg":"HS256","typ":"JWT"}');
const fixedPayload = b64url('{"sub":"1234","name":"Test User","iat":1516239022}');
const b = `${fixedHeader}.${fixedPayload}.${'Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHkxMjM0NTY'}`;

export const jwt: Detector = {
  id: 'jwt',
  category: 'secret',
  description: 'JSON Web Token: eyJ… header.payload.signature, header must decode to JSON with "alg"',
  keywords: ['eyj'],
  pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,2000}\.ey[A-Za-z0-9_-]{4,8000}\.[A-Za-z0-9_-]{0,1400}(?![A-Za-z0-9_-])/g,
  validate: jwtHeaderValid,
  confidence: 'high',
  maxLength: 11410,
  generate,
  positives: [
    { text: `Authorization: Bearer ${b}`, secret: b, reason: 'bearer header' },
    { text: `{"id_token":"${a}","token_type":"Bearer"}`, secret: a, reason: 'token endpoint JSON' },
    { text: `https://app.test/cb?token=${b}&state=1`, secret: b, reason: 'inside a URL query' },
  ],
  negatives: [
    { text: `eyJ${'A'.repeat(20)}.eyJ${'B'.repeat(20)}.sig`, reason: 'header does not decode to JSON with alg' },
    { text: `${b64url('{"typ":"JWT","x":1}')}.${fixedPayload}.c2ln`, reason: 'JSON header without alg' },
    { text: 'the eyJ prefix is base64 for {"', reason: 'prefix in prose' },
    { text: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c', reason: 'the jwt.io documentation sample' },
  ],
};
