// AWS: access key ids (prefix + 16 base32), secret access keys in context or next to their key id.
import type { Detector } from '../types.ts';
import { B64, entropy, sampleOf, token } from './lib.ts';

const ID_PREFIXES = ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'AGPA', 'AIDA', 'AROA', 'AIPA', 'ANPA', 'ANVA', 'APKA'];
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

// The documented example id (AWS docs) ends in EXAMPLE; so do countless tutorials.
const notExample = (c: string): boolean => !/EXAMPLE/.test(c);

const idBase = token({
  id: 'aws-access-key-id',
  description: 'AWS access key id: AKIA/ASIA/ABIA/ACCA/AIDA/AROA… followed by 16 base32 characters',
  prefix: 'AKIA',
  body: [{ cls: 'A-Z2-7', alphabet: BASE32, min: 16 }],
  validate: notExample,
  before: 'A-Za-z0-9',
  after: 'A-Za-z0-9',
});

export const awsAccessKeyId: Detector = {
  ...idBase,
  keywords: ID_PREFIXES.map((p) => p.toLowerCase()),
  pattern: new RegExp(`(?<![A-Za-z0-9])(?:${ID_PREFIXES.join('|')})[A-Z2-7]{16}(?![A-Za-z0-9])`, 'g'),
  generate: (rng) => (ID_PREFIXES[rng.int(4)] ?? 'AKIA') + rng.pick(BASE32, 16),
  positives: [
    ...idBase.positives,
    { text: 'aws_access_key_id = ASIA' + 'Q2WE3RT4YU5IO6PA', secret: 'ASIA' + 'Q2WE3RT4YU5IO6PA', reason: 'temporary (STS) key id' },
  ],
  negatives: [
    ...idBase.negatives,
    { text: 'aws_access_key_id=AKIA' + 'IOSFODNN7EXAMPLE', reason: 'the documented example key id' },
    { text: 'id AKIA' + 'ABCDEFGHIJKLMNOP1', reason: 'too long: 17 characters after the prefix' },
    { text: 'AKIA' + 'abcdefghijklmnop', reason: 'lower-case body is not base32' },
  ],
};

const SECRET_KEY_NAME = String.raw`(?:aws)?[_.\-]?secret[_.\-]?(?:access[_.\-]?)?key`;
const secretValid = (c: string): boolean => !/EXAMPLE/i.test(c) && entropy(c) >= 3.8 && /[0-9/+]/.test(c) && /[a-z]/.test(c) && /[A-Z]/.test(c);

const genSecret = (rng: import('../types.ts').Rng): string => rng.pick(B64, 40);
const s1 = sampleOf({ generate: genSecret }, 11);
const s2 = sampleOf({ generate: genSecret }, 12);

export const awsSecretAccessKey: Detector = {
  id: 'aws-secret-access-key',
  category: 'secret',
  description: 'AWS secret access key: 40 base64 characters after a secret/access key name (env, ini, JSON, CLI)',
  keywords: ['secret'],
  pattern: new RegExp(
    String.raw`${SECRET_KEY_NAME}(?![A-Za-z0-9])[\s"'\\:=>,]{1,8}(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
    'gid',
  ),
  validate: secretValid,
  confidence: 'high',
  maxLength: 80,
  generate: (rng) => {
    const keys = ['aws_secret_access_key = ', 'AWS_SECRET_ACCESS_KEY=', '"SecretAccessKey": "', 'secret_key: ', '--secret-access-key '];
    return (keys[rng.int(keys.length)] ?? '') + genSecret(rng);
  },
  positives: [
    { text: `[default]\naws_secret_access_key = ${s1}\n`, secret: s1, reason: 'credentials file' },
    { text: `{"AccessKeyId":"ASIAXXX","SecretAccessKey":"${s2}","SessionToken":"x"}`, secret: s2, reason: 'STS JSON' },
    { text: `export AWS_SECRET_ACCESS_KEY="${s1}"`, secret: s1, reason: 'shell export' },
  ],
  negatives: [
    { text: 'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY' + 'EXAMPLEKEY', reason: 'the documented example secret' },
    { text: `commit 3f786850e387550fdab836ed7e6dc881de23001b secret: none`, reason: 'a git SHA is not next to a secret key name' },
    { text: `aws_secret_access_key = ${'a'.repeat(40)}`, reason: 'no entropy' },
    { text: `secret_key: ${s1}XYZ`, reason: 'too long for an AWS secret (43 chars)' },
  ],
};

const idSample = sampleOf(idBase, 21);
export const awsCredentialPair: Detector = {
  id: 'aws-secret-access-key-pair',
  category: 'secret',
  description: 'AWS secret access key right after its access key id (CSV credentials files, tables, logs)',
  keywords: ID_PREFIXES.map((p) => p.toLowerCase()),
  pattern: new RegExp(
    String.raw`(?<![A-Za-z0-9])(?:${ID_PREFIXES.join('|')})[A-Z2-7]{16}[\s"',;:|=]{1,10}(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
    'gd',
  ),
  validate: secretValid,
  confidence: 'high',
  maxLength: 72,
  generate: (rng) => `${idBase.generate?.(rng) ?? ''},${genSecret(rng)}`,
  positives: [
    { text: `User name,Access key ID,Secret access key\nci,${idSample},${s1}\n`, secret: s1, reason: 'console CSV download' },
    { text: `| ${idSample} | ${s2} |`, secret: s2, reason: 'markdown table' },
  ],
  negatives: [
    { text: `${idSample},${'0123456789abcdef0123456789abcdef01234567'}`, reason: 'a hex digest after the id has no upper case' },
    { text: `${idSample} and then some words follow here`, reason: 'no 40-character value after the id' },
  ],
};

export const AWS: readonly Detector[] = [awsAccessKeyId, awsSecretAccessKey, awsCredentialPair];
