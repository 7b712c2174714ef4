// The normalizer against PostgreSQL's own lexer (libpg-query scanSync): on random token soups built
// from the lexer's corner cases, the skeleton the normalizer keys on (literals as placeholders,
// comments gone, words lowercased) must be the lexer's. A divergence is a cache-poisoning hazard:
// two texts with one key but different token streams would share one classification.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule, scanSync } from 'libpg-query';
import { normalizeSql } from './sql-normalize.ts';

before(async () => {
  await loadModule();
});

const FRAGMENTS = [
  'SELECT', ' ', ' ', '\n', '\r', '\t', '\v', '\f', '\r\n', '--', '-- c\r', '--c\n', '-', '/*', '*/', '/**/', '/*/*', '*/*/', '*', '/',
  "'", "''", '\\', "\\'", "'a'", "'\\'", "\n'x'", 'E', 'e', "E'\\''", "E'\\\\'", "E'a'\n'\\'", 'U&', 'u&', 'U&"', 'U&"a"', '"', '""',
  ' UESCAPE ', " UESCAPE '!'", '$', '$$', '$a$', '$_$', '$é$', '$a1$', '$$;$$', '$1', '$1a', 'a$', 'a', 'b', 'B', 'x', 'X', 'n', 'N',
  '0', '1', '9', '0x1F', '0b1', '0o7', '1_0', '.5', '1e', 'e5', 'E+', '.', '_', ';', '(', ')', '!', '&', '+', 'é', '\u00a0', '::', ':',
  '[', ']', ',', '=', '<', '>', '@', '#', '%', '^', '|', '`', '?', '~', " DROP TABLE t ", "INT '1'",
];
const STRING_TOKENS = new Set([261, 262, 263, 264]); // SCONST, USCONST, BCONST, XCONST
const NUMBER_TOKENS = new Set([260, 266]); // FCONST, ICONST

function asciiLower(w: string): string {
  return w.replace(/[A-Z]+/g, (x) => x.toLowerCase());
}

/** The lexer's tokens in the normalizer's notation (null when the lexer refuses the text). */
function lexerSkeleton(text: string): string | null {
  let tokens;
  try {
    tokens = scanSync(text).tokens;
  } catch {
    return null;
  }
  let out = '';
  for (const t of tokens) {
    const tx = t.text;
    if (t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT') continue;
    if (STRING_TOKENS.has(t.tokenType)) out += `${asciiLower(tx.slice(0, tx.search(/['$]/)))}\0s`;
    // 0x1F: the normalizer keeps the prefix as a word after the leading 0 (a lower hit rate only).
    else if (NUMBER_TOKENS.has(t.tokenType)) out += /^0[xob]/i.test(tx) ? `\0n${asciiLower(tx.slice(1))}` : '\0n';
    else if (tx.startsWith('"')) out += tx;
    else if (/^u&"/i.test(tx)) out += `u&${tx.slice(2)}`;
    else out += asciiLower(tx);
  }
  return out;
}

/**
 * Whitespace and dots dropped (only the normalizer keeps blanks; `..5` lexes differently but is never
 * valid SQL), adjacent literals merged (a 'a'<newline>'b' continuation is one lexer token; two literals
 * side by side are a syntax error), empty statements dropped.
 */
function comparable(k: string): string {
  return k.replace(/[\s.]/g, '').replace(/(\0s)+/g, '\0s').replace(/(\0n)+/g, '\0n').replace(/;+/g, ';').replace(/^;|;$/g, '');
}

describe('normalizeSql against the PostgreSQL lexer', () => {
  it('finds the same literals, comments and words on 20,000 random token soups', () => {
    let seed = 0x9e3779b9;
    const rnd = (): number => {
      seed ^= seed << 13;
      seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      seed >>>= 0;
      return seed / 4294967296;
    };
    let compared = 0;
    const bad: string[] = [];
    for (let i = 0; i < 20000 && bad.length < 5; i++) {
      const n = 2 + Math.floor(rnd() * 10);
      let text = '';
      for (let j = 0; j < n; j++) text += FRAGMENTS[Math.floor(rnd() * FRAGMENTS.length)] ?? '';
      const norm = normalizeSql(text);
      if (!norm.complete) continue;
      const lexed = lexerSkeleton(text);
      if (lexed === null) continue;
      compared++;
      if (comparable(norm.key) !== comparable(lexed)) bad.push(`${JSON.stringify(text)}: ${JSON.stringify(comparable(norm.key))} vs ${JSON.stringify(comparable(lexed))}`);
    }
    assert.deepEqual(bad, []);
    assert.ok(compared > 4000, `only ${compared} texts compared`);
  });
});
