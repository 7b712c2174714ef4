// Personal data: phone numbers, IBANs (mod-97), US SSNs (invalid ranges excluded), IPv4/IPv6 (off by default).
import { isIPv4, isIPv6 } from 'node:net';
import type { Detector, Rng } from '../types.ts';
import { DIGITS, HEX } from './lib.ts';

function digitCount(s: string): number {
  return s.replace(/[^0-9]/g, '').length;
}

/** Separators inside a national number are all the same kind; E.164 allows any mix. */
function phoneValid(c: string): boolean {
  const n = digitCount(c);
  const digits = c.replace(/[^0-9]/g, '');
  if (/^(\d)\1+$/.test(digits)) return false;
  if (c.startsWith('+')) return n >= 8 && n <= 15;
  const seps = new Set(c.replace(/[0-9()]/g, ''));
  return n >= 9 && n <= 12 && seps.size <= 1 + (c.includes('(') ? 1 : 0);
}

function genPhone(rng: Rng): string {
  const f = rng.int(4);
  if (f === 0) return `+1 ${2 + rng.int(8)}${rng.pick(DIGITS, 2)} ${2 + rng.int(8)}${rng.pick(DIGITS, 2)} ${rng.pick(DIGITS, 4)}`;
  if (f === 1) return `+44 ${7 + rng.int(2)}${rng.pick(DIGITS, 3)} ${rng.pick(DIGITS, 6)}`;
  if (f === 2) return `(${2 + rng.int(8)}${rng.pick(DIGITS, 2)}) ${2 + rng.int(8)}${rng.pick(DIGITS, 2)}-${rng.pick(DIGITS, 4)}`;
  return `+49${1 + rng.int(9)}${rng.pick(DIGITS, 9)}`;
}

export const phone: Detector = {
  id: 'phone-number',
  category: 'pii',
  description: 'phone number: E.164 (+CC…, spaces/dots/dashes allowed), North American (555) 123-4567 / 555-123-4567, French 01 23 45 67 89',
  keywords: [],
  pattern: /(?<![A-Za-z0-9+_.-])(?:\+[1-9](?:[ .-]?[0-9]|[ .-]?\([0-9]{1,4}\)){7,16}|\(?[2-9][0-9]{2}\)?[ .-][2-9][0-9]{2}[ .-][0-9]{4}|0[1-9](?:[ .][0-9]{2}){4}|0[1-9][0-9]{1,4}[ -][0-9]{3,4}[ -]?[0-9]{3,4})(?![0-9]|[.-][0-9])/g,
  validate: phoneValid,
  confidence: 'medium',
  maxLength: 40,
  generate: genPhone,
  positives: [
    { text: '{"phone":"+1 415 555 2671"}', secret: '+1 415 555 2671', reason: 'E.164 with spaces' },
    { text: 'call (212) 555-0143 today', secret: '(212) 555-0143', reason: 'US national' },
    { text: 'INSERT INTO c VALUES (7, \'+442071838750\');', secret: '+442071838750', reason: 'compact E.164 in SQL' },
    { text: 'tel: 01 42 68 53 00', secret: '01 42 68 53 00', reason: 'French format' },
    { text: 'Tel. 020 7946 0958 (office)', secret: '020 7946 0958', reason: 'UK national with trunk 0' },
    { text: 'mobile: 07700 900123', secret: '07700 900123', reason: 'UK mobile' },
  ],
  negatives: [
    { text: 'released 2024-11-05 12:34:56', reason: 'date and time' },
    { text: 'version 10.2.3.4512 build', reason: 'version number' },
    { text: 'order id 1234567890123', reason: 'a bare id without separators' },
    { text: 'uuid 123e4567-e89b-12d3-a456-426614174000', reason: 'UUID' },
    { text: 'total: +5', reason: 'a signed small number' },
  ],
};

const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21, CR: 22, CY: 28,
  CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18,
  GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32,
  LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24,
  PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28,
  TL: 23, TN: 24, TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
};

/**
 * One alternative per IBAN length: the countries of that length, two check digits, then exactly
 * the BBAN's characters, compact or in groups of 4. An exact length lets the number end where a
 * word glued to it begins (`…3000EUR`); a single letter or letters running into digits or `_`
 * after it (an id suffix, a longer identifier) still refuse the match.
 */
const IBAN_SOURCE = ((): string => {
  const byLength = new Map<number, string[]>();
  for (const [cc, n] of Object.entries(IBAN_LENGTHS)) byLength.set(n, [...(byLength.get(n) ?? []), cc]);
  const alts = [...byLength.entries()].sort((a, b) => a[0] - b[0]).map(([n, ccs]) => {
    const body = n - 4;
    const rest = body % 4;
    return `(?:${ccs.sort().join('|')})[0-9]{2}(?: ?[A-Z0-9]{4}){${Math.floor(body / 4)}}${rest > 0 ? `(?: ?[A-Z0-9]{${rest}})` : ''}`;
  });
  return String.raw`(?<![A-Za-z0-9])(?:${alts.join('|')})(?![0-9_]|[A-Za-z](?![A-Za-z])|[A-Za-z]{2,24}[0-9_])`;
})();

function mod97(s: string): number {
  let r = 0;
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    const v = code >= 65 ? String(code - 55) : ch;
    for (const dch of v) r = (r * 10 + (dch.charCodeAt(0) - 48)) % 97;
  }
  return r;
}

/** ISO 13616: known country, its exact length, and mod-97 of the rearranged number equals 1. */
export function ibanValid(c: string): boolean {
  const s = c.replace(/ /g, '').toUpperCase();
  const len = IBAN_LENGTHS[s.slice(0, 2)];
  if (len === undefined || s.length !== len) return false;
  return mod97(s.slice(4) + s.slice(0, 4)) === 1;
}

function genIban(rng: Rng): string {
  const countries = ['DE', 'GB', 'FR', 'NL', 'ES', 'IT', 'CH', 'BE'];
  const cc = countries[rng.int(countries.length)] ?? 'DE';
  const len = IBAN_LENGTHS[cc] ?? 22;
  const bban = (cc === 'GB' || cc === 'NL' ? rng.pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 4) : rng.pick(DIGITS, 4)) + rng.pick(DIGITS, len - 8);
  const check = String(98 - mod97(bban + cc + '00')).padStart(2, '0');
  const iban = cc + check + bban;
  return rng.int(2) === 0 ? iban : (iban.match(/.{1,4}/g) ?? []).join(' ');
}

export const iban: Detector = {
  id: 'iban',
  category: 'pii',
  description: 'IBAN (country code, check digits, BBAN; length per country; mod-97 checked), compact or in groups of 4',
  keywords: [],
  pattern: new RegExp(IBAN_SOURCE, 'g'),
  validate: ibanValid,
  confidence: 'high',
  maxLength: 42,
  generate: genIban,
  positives: [
    { text: 'IBAN: DE89 3704 0044 0532 0130 00', secret: 'DE89 3704 0044 0532 0130 00', reason: 'grouped German IBAN' },
    { text: '{"iban":"GB82WEST12345698765432"}', secret: 'GB82WEST12345698765432', reason: 'compact UK IBAN' },
    { text: 'to DE89370400440532013000EUR 10.00', secret: 'DE89370400440532013000', reason: 'a currency glued after the number' },
    { text: 'FR1420041010050500013M02606', secret: 'FR1420041010050500013M02606', reason: 'a letter inside the BBAN' },
  ],
  negatives: [
    { text: 'IBAN: DE89 3704 0044 0532 0130 01', reason: 'fails mod-97' },
    { text: 'GB82WEST1234569876543', reason: 'wrong length for GB' },
    { text: 'ZZ12 3456 7890 1234', reason: 'unknown country' },
    { text: 'ref DE89370400440532013000A', reason: 'one letter after it: an id suffix' },
    { text: 'id DE89370400440532013000ABC9', reason: 'part of a longer identifier' },
  ],
};

function ssnValid(c: string): boolean {
  const seps = c.replace(/[0-9]/g, '');
  if (seps !== '--' && seps !== '  ') return false;
  const d = c.replace(/[^0-9]/g, '');
  const area = Number(d.slice(0, 3));
  if (area === 0 || area === 666 || area >= 900) return false;
  if (d.slice(3, 5) === '00' || d.slice(5) === '0000') return false;
  return d !== '078051120' && d !== '219099999' && d !== '123456789';
}

export const usSsn: Detector = {
  id: 'us-ssn',
  category: 'pii',
  description: 'US Social Security number AAA-GG-SSSS (area 000/666/9xx, group 00, serial 0000 and advertising numbers excluded)',
  keywords: [],
  pattern: /(?<![0-9A-Za-z-])[0-8][0-9]{2}([- ])[0-9]{2}\1[0-9]{4}(?![0-9A-Za-z]|-[0-9])/g,
  validate: ssnValid,
  confidence: 'medium',
  maxLength: 11,
  generate: (rng) => {
    const area = String(1 + rng.int(665)).padStart(3, '0');
    return `${area === '666' ? '667' : area}-${String(1 + rng.int(98)).padStart(2, '0')}-${String(1 + rng.int(9998)).padStart(4, '0')}`;
  },
  positives: [
    { text: 'ssn=536-22-8841', secret: '536-22-8841', reason: 'form field' },
    { text: "(42, 'Jane', '123 45 6780')", secret: '123 45 6780', reason: 'space separated in SQL' },
  ],
  negatives: [
    { text: 'ssn 666-12-3456', reason: 'area 666 is never issued' },
    { text: 'ssn 900-12-3456', reason: 'area 9xx is never issued' },
    { text: 'ssn 123-00-4567', reason: 'group 00' },
    { text: 'ssn 123-45-0000', reason: 'serial 0000' },
    { text: 'ssn 078-05-1120', reason: 'the Woolworth advertising number' },
    { text: 'phone 555-123-4567', reason: 'phone shape, not SSN' },
    { text: 'date 2023-11-05', reason: 'a date' },
  ],
};

const SSN_CTX = /(?:ssn|social[ _-]?security(?:[ _-]?(?:number|no|num))?)[A-Za-z_]{0,10}(?:\\?["'])?[ \t]{0,3}[:=#]?[ \t]{0,3}(?:\\?["'])?(?<secret>[0-8][0-9]{8})(?![0-9])/gid;
export const usSsnInContext: Detector = {
  id: 'us-ssn-in-context',
  category: 'pii',
  description: 'US SSN written as 9 bare digits right after an ssn / social security name',
  keywords: ['ssn', 'social'],
  pattern: SSN_CTX,
  validate: (c) => ssnValid(`${c.slice(0, 3)}-${c.slice(3, 5)}-${c.slice(5)}`),
  confidence: 'medium',
  maxLength: 56,
  generate: (rng) => `ssn: ${String(1 + rng.int(665)).padStart(3, '0').replace('666', '667')}${String(1 + rng.int(98)).padStart(2, '0')}${String(1 + rng.int(9998)).padStart(4, '0')}`,
  positives: [
    { text: '{"name":"Jane","ssn":"536228841"}', secret: '536228841', reason: 'JSON field' },
    { text: 'Social Security Number: 212097694', secret: '212097694', reason: 'form text' },
  ],
  negatives: [
    { text: 'ssn: 666228841', reason: 'area 666' },
    { text: 'ssn_count: 123456', reason: 'not nine digits' },
  ],
};

export const ipv4: Detector = {
  id: 'ipv4-address',
  category: 'pii',
  description: 'IPv4 address (off by default)',
  keywords: ['.'],
  pattern: /(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9]|\.[0-9])/g,
  validate: (c) => isIPv4(c),
  confidence: 'low',
  enabledByDefault: false,
  maxLength: 15,
  generate: (rng) => `${10 + rng.int(200)}.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(254)}`,
  positives: [
    { text: 'client=203.0.113.42 GET /', secret: '203.0.113.42', reason: 'access log' },
    { text: '{"ip":"10.12.0.7"}', secret: '10.12.0.7', reason: 'JSON' },
  ],
  negatives: [
    { text: 'value 256.1.1.1', reason: 'octet out of range' },
    { text: 'version 1.2.3', reason: 'three parts' },
  ],
};

export const ipv6: Detector = {
  id: 'ipv6-address',
  category: 'pii',
  description: 'IPv6 address, full or compressed (off by default)',
  keywords: [':'],
  pattern: /(?<![A-Za-z0-9:.])(?:[0-9a-fA-F]{0,4}:){2,7}(?:[0-9a-fA-F]{1,4}|(?:[0-9]{1,3}\.){3}[0-9]{1,3})?(?![A-Za-z0-9:])/g,
  validate: (c) => isIPv6(c) && c.replace(/[^0-9a-fA-F]/g, '').length >= 3,
  confidence: 'low',
  enabledByDefault: false,
  maxLength: 45,
  generate: (rng) => `2001:db8:${rng.pick(HEX, 4)}:${rng.pick(HEX, 4)}::${rng.pick(HEX, 3)}`,
  positives: [
    { text: 'from 2001:db8:85a3::8a2e:370:7334 port 22', secret: '2001:db8:85a3::8a2e:370:7334', reason: 'compressed' },
    { text: '{"addr":"fe80:0:0:0:202:b3ff:fe1e:8329"}', secret: 'fe80:0:0:0:202:b3ff:fe1e:8329', reason: 'full form' },
  ],
  negatives: [
    { text: 'at 12:30:45 UTC', reason: 'a time' },
    { text: 'std::vector<int>', reason: 'C++ scope operator' },
  ],
};

export const PII_EXTRA: readonly Detector[] = [phone, iban, usSsn, usSsnInContext, ipv4, ipv6];
