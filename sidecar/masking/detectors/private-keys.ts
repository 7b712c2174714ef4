// Private key blocks: PEM (PKCS#1/#8, EC, DSA, encrypted), OpenSSH, PGP, PuTTY, GCP service-account JSON.
import type { Detector, Rng } from '../types.ts';
import { B64 } from './lib.ts';

// Body characters: base64, whitespace, PEM headers (Proc-Type/DEK-Info), JSON-escaped newlines (\n),
// and single dashes but never a run of five (that starts the END line): linear, no backtracking into it.
const BODY = String.raw`(?:[A-Za-z0-9+/=\s:,.\\]|-(?!----))`;
const BODY_MAX = 16000;

/** The label's spaces may be `+` (a form-encoded body, where `+` is a space). */
function block(label: string): string {
  const l = label.split(' ').join('[ +]');
  return `-----BEGIN ${l}-----${BODY}{64,${BODY_MAX}}(?:-----END ${l}-----)?`.replace('BEGIN ', 'BEGIN[ +]').replace('END ', 'END[ +]');
}

/** Complete blocks pass; truncated ones (no END within the bound) pass if a base64 line is present. */
function blockValid(c: string): boolean {
  return c.includes('-----END ') || /[A-Za-z0-9+/]{40}/.test(c);
}

function pemBody(rng: Rng, lines: number, sep: string): string {
  let out = '';
  for (let i = 0; i < lines; i++) out += rng.pick(B64, 64) + sep;
  return out + rng.pick(B64, 20) + '==' + sep;
}

function pemOf(label: string, rng: Rng, sep = '\n'): string {
  return `-----BEGIN ${label}-----${sep}${pemBody(rng, 6 + rng.int(20), sep)}-----END ${label}-----`;
}

const fixed = (seed: number): Rng => {
  let i = seed;
  return { int: (n) => (i++ * 7) % n, pick: (a, len) => Array.from({ length: len }, () => a.charAt((i++ * 31 + 7) % a.length)).join('') };
};

const pk1 = pemOf('RSA PRIVATE KEY', fixed(1));
const pk2 = pemOf('PRIVATE KEY', fixed(2), '\\n');
const pk3 = `-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\n${pemBody(fixed(3), 3, '\n')}-----END EC PRIVATE KEY-----`;

export const privateKeyPem: Detector = {
  id: 'private-key-pem',
  category: 'secret',
  description: 'PEM private key block (RSA, EC, DSA, PKCS#8, encrypted), BEGIN to END, also JSON-escaped; truncated blocks too',
  keywords: ['private key', 'private+key'],
  pattern: new RegExp(block('(?:(?:RSA|EC|DSA|ENCRYPTED|ANY) )?PRIVATE KEY'), 'g'),
  validate: blockValid,
  confidence: 'high',
  maxLength: BODY_MAX + 80,
  generate: (rng) => pemOf(['RSA PRIVATE KEY', 'PRIVATE KEY', 'EC PRIVATE KEY', 'ENCRYPTED PRIVATE KEY'][rng.int(4)] ?? 'PRIVATE KEY', rng, rng.int(3) === 0 ? '\\n' : '\n'),
  positives: [
    { text: `key: |\n${pk1}\nnext: 1`, secret: pk1, reason: 'PKCS#1 block in YAML' },
    { text: `{"key":"${pk2}\\n"}`, secret: pk2, reason: 'PKCS#8 block with JSON-escaped newlines' },
    { text: pk3, secret: pk3, reason: 'legacy encrypted EC key with headers' },
  ],
  negatives: [
    { text: '-----BEGIN PUBLIC KEY-----\n' + pemBody(fixed(4), 4, '\n') + '-----END PUBLIC KEY-----', reason: 'public keys are not secret' },
    { text: 'Paste the -----BEGIN PRIVATE KEY----- line and everything after it into the box, then save it.', reason: 'header mentioned in prose with no key material' },
    { text: '-----BEGIN CERTIFICATE-----\n' + pemBody(fixed(5), 4, '\n') + '-----END CERTIFICATE-----', reason: 'certificates are public' },
  ],
};

const ssh1 = pemOf('OPENSSH PRIVATE KEY', fixed(6));
const ssh2 = pemOf('OPENSSH PRIVATE KEY', fixed(7), '\\n');
export const opensshPrivateKey: Detector = {
  id: 'openssh-private-key',
  category: 'secret',
  description: 'OpenSSH private key block (-----BEGIN OPENSSH PRIVATE KEY----- … END)',
  keywords: ['openssh private key', 'openssh+private+key'],
  pattern: new RegExp(block('OPENSSH PRIVATE KEY'), 'g'),
  validate: blockValid,
  confidence: 'high',
  maxLength: BODY_MAX + 80,
  generate: (rng) => pemOf('OPENSSH PRIVATE KEY', rng, rng.int(3) === 0 ? '\\n' : '\n'),
  positives: [
    { text: `cat ~/.ssh/id_ed25519\n${ssh1}\n$ `, secret: ssh1, reason: 'terminal output' },
    { text: `{"ssh_key":"${ssh2}"}`, secret: ssh2, reason: 'JSON-escaped' },
  ],
  negatives: [
    { text: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5bm90cmVhbGx5YXNlY3JldGF0YWxsMDA user@host', reason: 'public key line' },
    { text: 'The file begins with -----BEGIN OPENSSH PRIVATE KEY----- and is mode 0600.', reason: 'header in prose' },
  ],
};

const pgp1 = pemOf('PGP PRIVATE KEY BLOCK', fixed(8));
const pgp2 = pemOf('PGP PRIVATE KEY BLOCK', fixed(9), '\r\n');
export const pgpPrivateKey: Detector = {
  id: 'pgp-private-key-block',
  category: 'secret',
  description: 'ASCII-armored PGP private key block',
  keywords: ['pgp private key', 'pgp+private+key'],
  pattern: new RegExp(block('PGP PRIVATE KEY BLOCK'), 'g'),
  validate: blockValid,
  confidence: 'high',
  maxLength: BODY_MAX + 80,
  generate: (rng) => pemOf('PGP PRIVATE KEY BLOCK', rng),
  positives: [
    { text: pgp1, secret: pgp1, reason: 'armored block' },
    { text: `gpg --export-secret-keys -a\r\n${pgp2}\r\n`, secret: pgp2, reason: 'CRLF lines' },
  ],
  negatives: [
    { text: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n' + pemBody(fixed(10), 3, '\n') + '-----END PGP PUBLIC KEY BLOCK-----', reason: 'public key block' },
    { text: '-----BEGIN PGP SIGNATURE-----\n' + pemBody(fixed(11), 2, '\n') + '-----END PGP SIGNATURE-----', reason: 'signature block' },
  ],
};

function puttyOf(rng: Rng): string {
  const n = 4 + rng.int(10);
  let lines = '';
  for (let i = 0; i < n; i++) lines += rng.pick(B64, 64) + '\n';
  return `Private-Lines: ${n}\n${lines}`;
}
const putty1 = puttyOf(fixed(12));
export const puttyPrivateKey: Detector = {
  id: 'putty-private-key',
  category: 'secret',
  description: 'PuTTY .ppk private key lines (Private-Lines: N followed by base64 lines)',
  keywords: ['private-lines'],
  pattern: /Private-Lines: [0-9]{1,3}(?:\r?\n|\\r?\\n)[A-Za-z0-9+/=\r\n\\]{64,14000}/g,
  confidence: 'high',
  maxLength: 14030,
  generate: puttyOf,
  positives: [
    { text: `PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n${putty1}Private-MAC: 00`, secret: putty1, reason: 'ppk v3 file' },
    { text: `x\n${putty1}`, secret: putty1, reason: 'lines alone' },
  ],
  negatives: [
    { text: 'Public-Lines: 2\nAAAAC3NzaC1lZDI1NTE5\nAAAAIGx0ZXN0\n', reason: 'public lines' },
    { text: 'Private-Lines: none here', reason: 'no base64 lines' },
  ],
};

const gcp1 = pemOf('PRIVATE KEY', fixed(13), '\\n') + '\\n';
export const gcpServiceAccountKey: Detector = {
  id: 'gcp-service-account-private-key',
  category: 'secret',
  description: 'GCP service-account JSON "private_key" (PKCS#8 PEM with literal \\n escapes)',
  keywords: ['private_key'],
  pattern: /"private_key"\s{0,4}:\s{0,4}"(?<secret>-----BEGIN PRIVATE KEY-----(?:\\n|[A-Za-z0-9+/=]){64,8000}-----END PRIVATE KEY-----(?:\\n)?)"/dg,
  confidence: 'high',
  maxLength: 8120,
  generate: (rng) => `"private_key": "${pemOf('PRIVATE KEY', rng, '\\n')}\\n"`,
  positives: [
    { text: `{"type":"service_account","project_id":"p","private_key_id":"abc","private_key":"${gcp1}","client_email":"x@p.iam.gserviceaccount.com"}`, secret: gcp1, reason: 'service account file' },
    { text: `{\n  "private_key": "${gcp1}"\n}`, secret: gcp1, reason: 'pretty-printed' },
  ],
  negatives: [
    { text: '{"private_key": ""}', reason: 'empty value' },
    { text: '{"private_key": "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n"}', reason: 'elided docs example' },
  ],
};

export const PRIVATE_KEYS: readonly Detector[] = [
  privateKeyPem,
  opensshPrivateKey,
  pgpPrivateKey,
  puttyPrivateKey,
  gcpServiceAccountKey,
];
