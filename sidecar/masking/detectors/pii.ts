// Personal data: email addresses and payment card numbers (Luhn, IIN ranges, consistent separators).
import type { Detector, Rng } from '../types.ts';
import { ALNUM_LOWER, DIGITS, LOWER, luhnCheckDigit, luhnValid } from './lib.ts';

const FILE_EXT = new Set(['png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'ico', 'js', 'mjs', 'css', 'ts', 'map', 'json', 'txt', 'md', 'html', 'lock', 'yaml', 'yml']);

export const email: Detector = {
  id: 'email',
  category: 'pii',
  description: 'email address (local@domain.tld), not asset names like icon@2x.png',
  keywords: ['@'],
  pattern: /(?<![A-Za-z0-9])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])/g,
  validate: (c) => !FILE_EXT.has(c.slice(c.lastIndexOf('.') + 1).toLowerCase()),
  confidence: 'high',
  maxLength: 64 + 1 + 8 * 64 + 24,
  generate: (rng: Rng) => `${rng.pick(LOWER, 3 + rng.int(8))}.${rng.pick(ALNUM_LOWER, 2 + rng.int(6))}@${rng.pick(LOWER, 4 + rng.int(8))}.${['com', 'org', 'io', 'de', 'co.uk'][rng.int(5)] ?? 'com'}`,
  positives: [
    { text: 'INSERT INTO users VALUES (1, \'jane.doe@mail.test.org\');', secret: 'jane.doe@mail.test.org', reason: 'SQL row' },
    { text: '{"email":"j.smith+billing@corp-mail.co.uk"}', secret: 'j.smith+billing@corp-mail.co.uk', reason: 'JSON with plus tag' },
    { text: 'From: Bob <bob@example.com>', secret: 'bob@example.com', reason: 'mail header' },
    { text: 'q=contact:+jane.doe@mail.test.org&x=1', secret: 'jane.doe@mail.test.org', reason: 'after a + (a space in a form body) or a dash: the local part starts at the letter' },
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

// [first digits from, to, (inclusive, compared on as many digits as `from` has), min length, max length]
const IIN_RANGES: readonly (readonly [string, string, number, number])[] = [
  ['4', '4', 16, 19], ['51', '55', 16, 16], ['2221', '2720', 16, 16], ['34', '34', 15, 15], ['37', '37', 15, 15],
  ['6011', '6011', 16, 19], ['65', '65', 16, 19], ['644', '649', 16, 19], ['3528', '3589', 16, 19],
  ['300', '305', 14, 19], ['36', '36', 14, 19], ['38', '39', 14, 19], ['62', '62', 16, 19], ['50', '50', 16, 19],
  ['56', '69', 16, 19],
];

/** Issuer ranges and lengths (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). */
export function cardIinValid(d: string): boolean {
  return IIN_RANGES.some(([from, to, min, max]) => {
    const head = d.slice(0, from.length);
    const visaLength = from !== '4' || d.length === 16 || d.length === 19;
    return head >= from && head <= to && d.length >= min && d.length <= max && visaLength;
  });
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
  pattern: /[2-6](?<![0-9A-Za-z_.-][2-6])[0-9]{3}(?:[ -]?[0-9]){10,15}(?![0-9_]|[A-Za-z](?![A-Za-z])|[A-Za-z]{2,24}[0-9_]|[-.][0-9A-Za-z])/g,
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
    { text: `pan=${v1}USD&amt=10`, secret: v1, reason: 'a word (2+ letters, no digit) glued after the number: currency, unit, field name' },
  ],
  negatives: [
    { text: 'order 4111111111111112 shipped', reason: 'fails Luhn' },
    { text: 'ts=1733325000000123', reason: 'starts outside the issuer ranges' },
    { text: 'phone 4111 1111-1111 1111', reason: 'mixed separators' },
    { text: 'id 5105105105105100999', reason: 'Mastercard prefix with 19 digits' },
    { text: 'order 4111111111111111A shipped', reason: 'one letter after the digits: an id suffix (order 123456789012345A), not a word' },
    { text: 'ref 4111111111111111ab12cd', reason: 'part of a longer alphanumeric id (digits after the letters)' },
  ],
};

export const PII_BASIC: readonly Detector[] = [email, paymentCard];
