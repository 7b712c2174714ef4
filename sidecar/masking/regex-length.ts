// Bounds on the length of a JavaScript regex source's matches: a text shorter than the lower one is
// skipped unscanned; the upper one (how far past its start an attempt can read) lets a stream stop
// rescanning where no match can begin any more.
//
// Handles the syntax detectors use (groups, lookaround, classes, escapes, quantifiers, alternation,
// backreferences); anything it does not recognise gives 0 (lower) or Infinity (upper), which only
// costs speed, never a miss.

class Unsupported extends Error {}

const QUANT = /^\{(\d+)(?:,(\d*))?\}/;

/** Minimum number of UTF-16 units a match of `source` spans (0 when unsure). */
export function minMatchLength(source: string): number {
  return bound(source, false);
}

/**
 * Most UTF-16 units an attempt to match `source` (flags without `u`/`v`) reads from where it
 * starts: the longest match plus what its lookaheads read past it (Infinity when unbounded or unsure).
 */
export function maxReadLength(source: string): number {
  return bound(source, true);
}

function bound(source: string, max: boolean): number {
  const pick = max ? Math.max : Math.min;
  // Upper bounds of capturing groups, group k at index k - 1 (for backreferences).
  const groups: number[] = [];
  let i = 0;
  const src = source;

  const skipTo = (ch: string): void => {
    const at = src.indexOf(ch, i);
    if (at < 0) throw new Unsupported(ch);
    i = at + 1;
  };

  /** A backreference may match empty; at most what its (already closed) group matched. */
  const backreference = (e: string): number => {
    if (e === 'k') {
      skipTo('>');
      return max ? Infinity : 0;
    }
    const from = i - 1;
    while (/[0-9]/.test(src.charAt(i))) i++;
    return max ? (groups[Number(src.slice(from, i)) - 1] ?? Infinity) : 0;
  };

  const escape = (): number => {
    const e = src.charAt(i + 1);
    i += 2;
    if (e === 'b' || e === 'B') return 0;
    if ((e >= '1' && e <= '9') || e === 'k') return backreference(e);
    if (e === 'u') {
      if (src.charAt(i) === '{') skipTo('}');
      else i += 4;
      return 1;
    }
    if (e === 'x') i += 2;
    else if (e === 'c') i += 1;
    else if (e === 'p' || e === 'P') {
      if (src.charAt(i) === '{') skipTo('}');
    }
    return 1;
  };

  const charClass = (): number => {
    i++;
    if (src.charAt(i) === '^') i++;
    if (src.charAt(i) === ']') i++;
    while (i < src.length && src.charAt(i) !== ']') {
      if (src.charAt(i) === '[') throw new Unsupported('nested class');
      i += src.charAt(i) === '\\' ? 2 : 1;
    }
    if (i >= src.length) throw new Unsupported('unterminated class');
    i++;
    return 1;
  };

  /** Reads a group's modifier (after its `(`): what kind of group it opens. */
  const groupKind = (): 'capture' | 'plain' | 'ahead' | 'behind' => {
    if (src.charAt(i) !== '?') return 'capture';
    const a = src.charAt(i + 1);
    const b = src.charAt(i + 2);
    if (a === ':') {
      i += 2;
      return 'plain';
    }
    if (a === '=' || a === '!') {
      i += 2;
      return 'ahead';
    }
    if (a === '<' && (b === '=' || b === '!')) {
      i += 3;
      return 'behind';
    }
    if (a === '<') {
      skipTo('>');
      return 'capture';
    }
    throw new Unsupported('group modifier');
  };

  const group = (): number => {
    i++;
    const kind = groupKind();
    const n = kind === 'capture' ? groups.push(Infinity) - 1 : -1;
    const len = alternation();
    if (src.charAt(i) !== ')') throw new Unsupported('unbalanced');
    i++;
    if (n >= 0) groups[n] = len;
    // A lookaround consumes nothing; a lookahead still reads ahead (the upper bound counts it), a lookbehind reads back.
    if (kind === 'behind' || (kind === 'ahead' && !max)) return 0;
    return len;
  };

  const atom = (): number => {
    const ch = src.charAt(i);
    if (ch === '(') return group();
    if (ch === '[') return charClass();
    if (ch === '\\') return escape();
    i++;
    return ch === '^' || ch === '$' ? 0 : 1;
  };

  const quantifier = (): number => {
    const ch = src.charAt(i);
    let min = 1;
    let most = 1;
    if (ch === '*' || ch === '?') {
      min = 0;
      most = ch === '*' ? Infinity : 1;
      i++;
    } else if (ch === '+') {
      most = Infinity;
      i++;
    } else if (ch === '{') {
      const m = QUANT.exec(src.slice(i, i + 24));
      if (m === null) return 1; // a literal brace
      min = Number(m[1]);
      most = m[2] === undefined ? min : m[2] === '' ? Infinity : Number(m[2]);
      i += m[0].length;
    } else return 1;
    if (src.charAt(i) === '?') i++;
    return max ? most : min;
  };

  const sequence = (): number => {
    let total = 0;
    while (i < src.length && src.charAt(i) !== '|' && src.charAt(i) !== ')') {
      const a = atom();
      const q = quantifier();
      total += a === 0 ? 0 : a * q; // 0 * Infinity (a quantified empty atom) reads nothing
    }
    return total;
  };

  function alternation(): number {
    let best = sequence();
    while (src.charAt(i) === '|') {
      i++;
      best = pick(best, sequence());
    }
    return best;
  }

  const unsure = max ? Infinity : 0;
  try {
    const len = alternation();
    return i === src.length && Number.isFinite(len) ? len : unsure;
  } catch {
    return unsure;
  }
}
