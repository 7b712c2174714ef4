// Lower bound on the length of any match of a JavaScript regex source: a text shorter than that is skipped unscanned.
//
// Handles the syntax detectors use (groups, lookaround, classes, escapes, quantifiers, alternation,
// backreferences); anything it does not recognise gives 0, which only costs speed, never a miss.

class Unsupported extends Error {}

const QUANT = /^\{(\d+)(?:,(\d*))?\}/;

/** Minimum number of UTF-16 units a match of `source` spans (0 when unsure). */
export function minMatchLength(source: string): number {
  let i = 0;
  const src = source;

  const skipTo = (ch: string): void => {
    const at = src.indexOf(ch, i);
    if (at < 0) throw new Unsupported(ch);
    i = at + 1;
  };

  const escape = (): number => {
    const e = src.charAt(i + 1);
    i += 2;
    if (e === 'b' || e === 'B') return 0;
    if (e >= '1' && e <= '9') {
      while (/[0-9]/.test(src.charAt(i))) i++;
      return 0; // a backreference may match empty
    }
    if (e === 'k') {
      skipTo('>');
      return 0;
    }
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

  const group = (): number => {
    i++;
    let zero = false;
    if (src.charAt(i) === '?') {
      const a = src.charAt(i + 1);
      const b = src.charAt(i + 2);
      if (a === ':') i += 2;
      else if (a === '=' || a === '!') {
        i += 2;
        zero = true;
      } else if (a === '<' && (b === '=' || b === '!')) {
        i += 3;
        zero = true;
      } else if (a === '<') skipTo('>');
      else throw new Unsupported('group modifier');
    }
    const len = alternation();
    if (src.charAt(i) !== ')') throw new Unsupported('unbalanced');
    i++;
    return zero ? 0 : len;
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
    if (ch === '*' || ch === '?') {
      min = 0;
      i++;
    } else if (ch === '+') i++;
    else if (ch === '{') {
      const m = QUANT.exec(src.slice(i, i + 24));
      if (m === null) return 1; // a literal brace
      min = Number(m[1]);
      i += m[0].length;
    } else return 1;
    if (src.charAt(i) === '?') i++;
    return min;
  };

  const sequence = (): number => {
    let total = 0;
    while (i < src.length && src.charAt(i) !== '|' && src.charAt(i) !== ')') {
      const a = atom();
      total += a * quantifier();
    }
    return total;
  };

  function alternation(): number {
    let best = sequence();
    while (src.charAt(i) === '|') {
      i++;
      best = Math.min(best, sequence());
    }
    return best;
  }

  try {
    const len = alternation();
    return i === src.length && Number.isFinite(len) ? len : 0;
  } catch {
    return 0;
  }
}
