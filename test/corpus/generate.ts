// Deterministic corpus of synthesized secrets in realistic carriers, plus hard negatives by class. No real secret ever.
//
// Every positive sample records each embedded secret (detector id, exact value as it appears in the
// text, offsets). Values come from the detectors' own generate(rng), so prefixes, lengths, charsets
// and checksums are right; the carriers (SQL rows, JSON API responses, YAML, env files, logs, stack
// traces, URLs) are what the sidecar sees. Negatives are things that look like secrets but are not.
import { writeFileSync } from 'node:fs';
import type { Detector, Rng } from '../../sidecar/masking/types.ts';
import { DETECTORS, createRng, generateSample } from '../../sidecar/masking/detectors/index.ts';

export type Carrier = 'sql-row' | 'psql-table' | 'json-api' | 'yaml' | 'env' | 'log' | 'stack-trace' | 'url' | 'plain' | 'k8s-secret-base64' | 'form-urlencoded';

export type NegativeClass =
  | 'uuid'
  | 'git-sha'
  | 'sha256'
  | 'md5'
  | 'base64-image'
  | 'example-key'
  | 'lorem'
  | 'luhn-fail'
  | 'version'
  | 'date'
  | 'identifier';

export interface EmbeddedSecret {
  readonly detector: string;
  /** The secret exactly as it appears in `text` (JSON-escaped inside JSON, etc.). */
  readonly value: string;
  readonly start: number;
  readonly end: number;
  /** Prefixed formats (`ghp_`, `sk_live_`…) vs context-only ones (a key name makes them a secret). */
  readonly kind: 'prefixed' | 'context';
}

export interface PositiveSample {
  readonly id: string;
  readonly carrier: Carrier;
  readonly text: string;
  readonly secrets: readonly EmbeddedSecret[];
}

export interface NegativeSample {
  readonly id: string;
  readonly negClass: NegativeClass;
  readonly text: string;
}

/** A text to stream with chunk boundaries placed inside its secrets. */
export interface SplitSample {
  readonly id: string;
  readonly text: string;
  readonly secrets: readonly EmbeddedSecret[];
  /** Byte offsets where one chunk ends and the next begins. */
  readonly cuts: readonly number[];
}

export interface Corpus {
  readonly seed: number;
  readonly positives: readonly PositiveSample[];
  readonly negatives: readonly NegativeSample[];
  readonly splits: readonly SplitSample[];
}

export interface CorpusOptions {
  readonly seed?: number;
  /** Positive samples per detector (each in a different carrier). Default 3. */
  readonly perDetector?: number;
  /** Negative samples per class. Default 40. */
  readonly perNegativeClass?: number;
  /** Detectors to draw from (default: all with a generator, IP detectors excluded). */
  readonly detectors?: readonly Detector[];
}

const HEX = '0123456789abcdef';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat'.split(' ');
const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi'];

function choose<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function words(rng: Rng, n: number): string {
  return Array.from({ length: n }, () => choose(rng, WORDS)).join(' ');
}

function date(rng: Rng): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `202${rng.int(6)}-${p(1 + rng.int(12))}-${p(1 + rng.int(28))}T${p(rng.int(24))}:${p(rng.int(60))}:${p(rng.int(60))}Z`;
}

/** A carrier with one hole `\u0000` where the snippet goes, and how the snippet is encoded there. */
interface Frame {
  readonly carrier: Carrier;
  readonly before: string;
  readonly after: string;
  readonly encode: (s: string) => string;
  /** The encoding does not map substrings to substrings (base64): the whole encoded snippet is the secret. */
  readonly whole?: boolean;
}

const asIs = (s: string): string => s;
const jsonInner = (s: string): string => JSON.stringify(s).slice(1, -1);
const sqlQuote = (s: string): string => s.replace(/'/g, "''");

function frames(rng: Rng, multiline: boolean): Frame[] {
  const id = 1000 + rng.int(9000);
  const name = choose(rng, NAMES);
  const all: Frame[] = [
    { carrier: 'sql-row', before: `INSERT INTO settings (id, owner, value, updated_at) VALUES (${id}, '${name}', '`, after: `', '${date(rng)}');`, encode: sqlQuote },
    { carrier: 'json-api', before: `{"data":{"id":${id},"type":"config","attributes":{"owner":"${name}","value":"`, after: `","enabled":true,"count":${rng.int(100)}}},"meta":{"requestId":"${rng.pick(HEX, 16)}"}}`, encode: jsonInner },
    { carrier: 'log', before: `${date(rng)} INFO  [worker-${rng.int(8)}] loaded settings for ${name}: `, after: ` (took ${rng.int(900)}ms)`, encode: asIs },
    { carrier: 'stack-trace', before: `Error: request failed with config\n    at Client.send (/app/node_modules/client/index.js:${rng.int(400)}:${rng.int(40)})\n    context: `, after: `\n    at async main (/app/src/main.ts:${rng.int(200)}:5)`, encode: asIs },
    { carrier: 'plain', before: `${words(rng, 6)}\n`, after: `\n${words(rng, 5)}`, encode: asIs },
    { carrier: 'k8s-secret-base64', before: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"app-${id}"},"data":{"config":"`, after: `"},"type":"Opaque"}`, encode: (x) => Buffer.from(x).toString('base64'), whole: true },
    { carrier: 'form-urlencoded', before: `grant_type=client_credentials&client_id=${name}&client_secret=`, after: `&scope=read`, encode: encodeURIComponent },
  ];
  if (!multiline) {
    all.push(
      { carrier: 'psql-table', before: ` id | owner | value\n----+-------+------\n ${id} | ${name} | `, after: `\n(1 row)`, encode: asIs },
      { carrier: 'env', before: `# generated ${date(rng)}\nAPP_ENV=production\nSETTING=`, after: `\nLOG_LEVEL=info`, encode: asIs },
      { carrier: 'yaml', before: `apiVersion: v1\nkind: ConfigMap\ndata:\n  owner: ${name}\n  setting: "`, after: `"\n  replicas: "3"`, encode: (s) => jsonInner(s) },
    );
  }
  return all;
}

function isPrefixed(d: Detector, sample: { text: string; secret: string }): 'prefixed' | 'context' {
  return sample.text === sample.secret && d.keywords.length > 0 ? 'prefixed' : 'context';
}

function embed(d: Detector, sample: { text: string; secret: string }, f: Frame, id: string): PositiveSample | undefined {
  const enc = f.encode(sample.text);
  const encSecret = f.whole === true ? enc : f.encode(sample.secret);
  const at = enc.indexOf(encSecret);
  if (at < 0) return undefined;
  const text = f.before + enc + f.after;
  const start = f.before.length + at;
  return { id, carrier: f.carrier, text, secrets: [{ detector: d.id, value: encSecret, start, end: start + encSecret.length, kind: isPrefixed(d, sample) }] };
}

/** A URL with credentials (connection strings, basic auth in links). */
function urlSample(rng: Rng, i: number): PositiveSample {
  const scheme = choose(rng, ['postgres', 'postgresql', 'mysql', 'mongodb+srv', 'redis', 'amqp', 'https']);
  const user = choose(rng, NAMES);
  const pass = rng.pick(ALNUM, 12 + rng.int(12)) + choose(rng, ['', '!', '-', '_']) + rng.pick(ALNUM, 4);
  const host = `${choose(rng, ['db', 'cache', 'mq', 'api'])}-${rng.int(9)}.internal.example.test`;
  const before = `${choose(rng, ['DATABASE_URL=', 'connecting to ', '{"url":"', 'dsn: '])}${scheme}://${user}:`;
  const text = `${before}${pass}@${host}:${5000 + rng.int(1000)}/app`;
  return { id: `url-${i}`, carrier: 'url', text, secrets: [{ detector: 'connection-url-password', value: pass, start: before.length, end: before.length + pass.length, kind: 'context' }] };
}

function luhnFailing(rng: Rng): string {
  for (;;) {
    const digits = '4' + rng.pick('0123456789', 15);
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let v = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
      sum += v;
    }
    if (sum % 10 !== 0) return digits;
  }
}

const EXAMPLE_KEYS = [
  'AKIAIOSFODNN7EXAMPLE',
  'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY' + 'EXAMPLEKEY',
  'sk_test_' + '4eC39HqLyjWDarjtT1zdp7dc',
  'ghp_' + 'x'.repeat(36),
  'xoxb-' + 'your-bot-token-here',
  'password: "<your-password>"',
  'api_key: ${API_KEY}',
  'token: "REPLACE_ME"',
  'Authorization: Bearer <token>',
  'postgres://user:password@localhost:5432/db',
];

type NegGen = (rng: Rng) => string;

const NEGATIVES: Readonly<Record<NegativeClass, NegGen>> = {
  uuid: (rng) => `request_id=${rng.pick(HEX, 8)}-${rng.pick(HEX, 4)}-4${rng.pick(HEX, 3)}-a${rng.pick(HEX, 3)}-${rng.pick(HEX, 12)} status=200`,
  'git-sha': (rng) => `commit ${rng.pick(HEX, 40)}\nMerge: ${rng.pick(HEX, 7)} ${rng.pick(HEX, 7)}\n\n    fix: ${words(rng, 4)} (${rng.pick(HEX, 12)})`,
  sha256: (rng) => `sha256:${rng.pick(HEX, 64)}  dist/app-${rng.int(9)}.${rng.int(20)}.tar.gz`,
  md5: (rng) => `"etag": "${rng.pick(HEX, 32)}", "size": ${rng.int(99999)}`,
  'base64-image': (rng) => `<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA${rng.pick(B64, 200 + rng.int(400))}==" alt="logo">`,
  'example-key': (rng) => `# docs example\n${choose(rng, EXAMPLE_KEYS)}\n`,
  lorem: (rng) => words(rng, 30 + rng.int(30)),
  'luhn-fail': (rng) => `order ${rng.int(99999)} ref ${luhnFailing(rng)} total ${rng.int(999)}.${rng.int(99)}`,
  version: (rng) => `"version": "${rng.int(20)}.${rng.int(50)}.${rng.int(200)}", "node": ">=${18 + rng.int(8)}.0.0", build ${rng.int(9)}.${rng.int(9)}.${rng.int(9)}-rc.${rng.int(9)}`,
  date: (rng) => `created_at=${date(rng)} updated=${date(rng)} epoch=${1600000000 + rng.int(99999999)}`,
  identifier: (rng) => `const ${rng.pick('abcdefghijklmnopqrstuvwxyz', 6)}SecretManagerClientFactory = new ${rng.pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 1)}${rng.pick('abcdefghijklmnopqrstuvwxyz', 8)}Provider(); // getPasswordResetTokenExpiry`,
};

export const NEGATIVE_CLASSES = Object.keys(NEGATIVES) as NegativeClass[];

/** Builds the corpus; the same options give the same corpus, byte for byte. */
export function generateCorpus(opts: CorpusOptions = {}): Corpus {
  const seed = opts.seed ?? 20240501;
  const rng = createRng(seed);
  const per = opts.perDetector ?? 3;
  const detectors = (opts.detectors ?? DETECTORS).filter((d) => d.generate !== undefined && d.enabledByDefault !== false);
  const positives: PositiveSample[] = [];
  for (const d of detectors) {
    for (let k = 0; k < per; k++) {
      const sample = generateSample(d, rng);
      if (sample === undefined) continue;
      const fs = frames(rng, sample.text.includes('\n'));
      const f = fs[(k + rng.int(fs.length)) % fs.length]!;
      const p = embed(d, sample, f, `${d.id}-${k}`);
      if (p !== undefined) positives.push(p);
    }
  }
  for (let i = 0; i < Math.max(10, per * 10); i++) positives.push(urlSample(rng, i));
  const negatives: NegativeSample[] = [];
  for (const cls of NEGATIVE_CLASSES) {
    for (let i = 0; i < (opts.perNegativeClass ?? 40); i++) negatives.push({ id: `${cls}-${i}`, negClass: cls, text: NEGATIVES[cls](rng) });
  }
  return { seed, positives, negatives, splits: splitSamples(rng, positives) };
}

/** Joins positives into longer texts and cuts chunks inside each secret (middle, 1 byte in, 1 byte before the end). */
function splitSamples(rng: Rng, positives: readonly PositiveSample[]): SplitSample[] {
  const out: SplitSample[] = [];
  for (let i = 0; i < positives.length; i += 5) {
    let text = '';
    const secrets: EmbeddedSecret[] = [];
    const cuts: number[] = [];
    for (const p of positives.slice(i, i + 5)) {
      text += words(rng, 20 + rng.int(200)) + '\n';
      const off = Buffer.byteLength(text);
      for (const s of p.secrets) {
        const start = off + Buffer.byteLength(p.text.slice(0, s.start));
        const len = Buffer.byteLength(s.value);
        secrets.push({ ...s, start: text.length + s.start, end: text.length + s.end });
        cuts.push(start + choose(rng, [1, Math.floor(len / 2), Math.max(1, len - 1)]));
      }
      text += p.text + '\n';
    }
    out.push({ id: `split-${i / 5}`, text, secrets, cuts: cuts.sort((a, b) => a - b) });
  }
  return out;
}

// `node --import tsx test/corpus/generate.ts [out.json]` writes the corpus for inspection.
if (import.meta.url === `file://${process.argv[1]}`) {
  const c = generateCorpus();
  const out = JSON.stringify(c, null, 1);
  const path = process.argv[2];
  if (path !== undefined) {
    writeFileSync(path, out);
    console.log(`wrote ${c.positives.length} positives, ${c.negatives.length} negatives, ${c.splits.length} split texts to ${path}`);
  } else console.log(`${c.positives.length} positives, ${c.negatives.length} negatives, ${c.splits.length} split texts (pass a path to write them)`);
}
