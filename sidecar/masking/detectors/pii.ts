// Personal data: email addresses and payment card numbers (Luhn, IIN ranges, consistent separators).
import type { Detector, Rng } from '../types.ts';
import { ALNUM_LOWER, DIGITS, LOWER, luhnCheckDigit, luhnValid } from './lib.ts';

const FILE_EXT = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'ico', 'js', 'mjs', 'css', 'ts', 'map', 'json', 'txt', 'md', 'html', 'lock', 'yaml', 'yml']);

export const email: Detector = {
  id: 'email',
  category: 'pii',
  description: 'email address (local@domain.tld), not asset names like icon@2x.png',
  keywords: ['@'],
  pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
  validate: (c) => !FILE_EXT.has(c.slice(c.lastIndexOf('.') + 1).toLowerCase()),
  confidence: 'high',
  maxLength: 64 + 1 + 8 * 64 + 24,
  generate: (rng: Rng) => `${rng.pick(LOWER, 3 + rng.int(8))}.${rng.pick(ALNUM_LOWER, 2 + rng.int(6))}@${rng.pick(LOWER, 4 + rng.int(8))}.${['com', 'org', 'io', 'de', 'co.uk'][rng.int(5)] ?? 'com'}`,
  positives: [
    { text: 'INSERT INTO users VALUES (1, \'jane.doe@mail.test.org\');', secret: 'jane.doe@mail.test.org', reason: 'SQL row' },
    { text: '{"email":"j.smith+billing@corp-mail.co.uk"}', secret: 'j.smith+billing@corp-mail.co.uk', reason: 'JSON with plus tag' },
    { text: 'From: Bob <bob@example.com>', secret: 'bob@example.com', reason: 'mail header' },
  ],
  negatives: [
    { text: 'background: url(icon@2x.png)', reason: 'retina asset name' },
    { text: 'npm install @types/node@20.1.0', reason: 'package spec, no letter TLD' },
    { text: 'image: registry.test/app@sha256:0123abcd', reason: 'image digest' },
  ],
};

interface Brand {
  readonly prefix: string;
  readonly len: number;
}
const BRANDS: readonly Brand[] = [
  { prefix: '4', len: 16 }, { prefix: '51', len: 16 }, { prefix: '55', len: 16 }, { prefix: '2221', len: 16 },
  { prefix: '34', len: 15 }, { prefix: '37', len: 15 }, { prefix: '6011', len: 16 }, { prefix: '65', len: 16 },
  { prefix: '3528', len: 16 }, { prefix: '36', len: 14 }, { prefix: '62', len: 16 }, { prefix: '4', len: 19 },
];

/** Issuer ranges and lengths (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). */
export function cardIinValid(d: string): boolean {
  const n = d.length;
  const p2 = Number(d.slice(0, 2));
  const p4 = Number(d.slice(0, 4));
  const p3 = Number(d.slice(0, 3));
  if (d.startsWith('4')) return n === 16 || n === 19;
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n === 16;
  if (p2 === 34 || p2 === 37) return n === 15;
  if (p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649)) return n >= 16 && n <= 19;
  if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19;
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 && n <= 19;
  if (p2 === 62) return n >= 16 && n <= 19;
  if (p2 === 50 || (p2 >= 56 && p2 <= 69)) return n >= 16 && n <= 19;
  return false;
}

/** Separators are all absent or all the same, in 4-4-4-4(-3), 4-6-5 or 4-6-4 groups. */
function groupsValid(c: string): boolean {
  const seps = c.replace(/[0-9]/g, '');
  if (seps.length === 0) return true;
  if (!/^( +|-+)$/.test(seps) || new Set(seps).size !== 1) return false;
  const sizes = c.split(/[ -]/).map((g) => g.length).join(',');
  return /^4(,4){2,3}(,[1-4])?$/.test(sizes) || sizes === '4,6,5' || sizes === '4,6,4';
}

function genCard(rng: Rng): string {
  const b = BRANDS[rng.int(BRANDS.length)] ?? { prefix: '4', len: 16 };
  const body = b.prefix + rng.pick(DIGITS, b.len - b.prefix.length - 1);
  const num = body + luhnCheckDigit(body);
  const style = rng.int(3);
  if (style === 0 || b.len !== 16) return num;
  const sep = style === 1 ? ' ' : '-';
  return (num.match(/.{4}/g) ?? []).join(sep);
}

const v1 = '4111' + '1111' + '1111' + '1111';
const v2 = '5500 0000 0000 0004';
const v3 = '3782-822463-10005';
export const paymentCard: Detector = {
  id: 'payment-card',
  category: 'pii',
  description: 'payment card number (13-19 digits, issuer range, Luhn, consistent separators)',
  keywords: [],
  pattern: /(?<![0-9A-Za-z_.-])[2-6][0-9]{3}(?:[ -]?[0-9]){10,15}(?![0-9A-Za-z_]|[-.][0-9A-Za-z])/g,
  validate: (c) => {
    const d = c.replace(/[ -]/g, '');
    return d.length >= 14 && d.length <= 19 && luhnValid(d) && cardIinValid(d) && groupsValid(c) && !/^(\d)\1+$/.test(d);
  },
  confidence: 'medium',
  maxLength: 19 + 6,
  generate: genCard,
  positives: [
    { text: `card=${v1}&exp=12/30`, secret: v1, reason: 'form field' },
    { text: `| 42 | ${v2} | Jane |`, secret: v2, reason: 'table cell with spaces' },
    { text: `amex ${v3}`, secret: v3, reason: 'Amex 4-6-5 with dashes' },
  ],
  negatives: [
    { text: 'order 4111111111111112 shipped', reason: 'fails Luhn' },
    { text: 'ts=1733325000000123', reason: 'starts outside the issuer ranges' },
    { text: 'phone 4111 1111-1111 1111', reason: 'mixed separators' },
    { text: 'id 5105105105105100999', reason: 'Mastercard prefix with 19 digits' },
  ],
};

export const PII_BASIC: readonly Detector[] = [email, paymentCard];
