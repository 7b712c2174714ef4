// Literal-stripping SQL normalizer: a cache key for the simple protocol that is cheaper than parsing.
//
// The scanner follows the PostgreSQL lexer closely enough to find every string, number, comment and
// statement boundary; it never touches identifiers or operators, so two statements that differ in a
// table or function name always get different keys. What it does:
//   - comments become whitespace, whitespace runs become one space, or one newline if they held one
//     (PostgreSQL joins 'a'<newline>'b' into one literal but rejects 'a' 'b');
//   - unquoted words are ASCII-lowercased (PostgreSQL folds only ASCII in UTF-8);
//   - string literals ('', E'', B'', X'', N'', U&'', $tag$…$tag$) become "\0s", numbers become "\0n"
//     (NUL cannot occur in a PostgreSQL query string, so a placeholder never collides with real text);
//   - a message holding UESCAPE, or a quote continuing an E'…' string, is left incomplete (never shared):
//     the escape literal changes how the preceding U&"…" decodes; E mode carries over a continuation;
//   - line comments end at \n or \r, as in scan.l;
// Anything it does not understand is copied verbatim (a lower hit rate, never a wrong share).

/** One statement of a message, as the scanner split it (top-level `;` outside parentheses). */
export interface NormalizedStatement {
  /** Char offset of the statement's first non-blank character (a comment may start it). */
  readonly start: number;
  /** Char offset just past its last non-blank character (the `;` is not included). */
  readonly end: number;
  /** The normalized statement: the part of the cache key for this statement. */
  readonly normalized: string;
}

export interface NormalizedSql {
  /** The cache key for the whole message. */
  readonly key: string;
  readonly statements: readonly NormalizedStatement[];
  /**
   * False when the text ends inside a quote, comment or dollar-quoted body, or contains NUL:
   * such a text must not be looked up or stored by its normalized key.
   */
  readonly complete: boolean;
}

const PLACEHOLDER_STRING = '\0s';
const PLACEHOLDER_NUMBER = '\0n';

// Character classes as in scan.l: ident_start [A-Za-z\200-\377_], ident_cont adds [0-9$].
function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}
function isIdentCont(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === 36;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** Lowercases ASCII letters only (toLowerCase would also fold É → é, which PostgreSQL does not). */
function asciiLower(word: string): string {
  for (let i = 0; i < word.length; i++) {
    if (word.charCodeAt(i) >= 128) return word.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return word.toLowerCase();
}

class Scanner {
  private i = 0;
  private out = '';
  // 0: none; 1: blanks; 2: blanks with a newline (string continuation 'a'\n'b' needs one).
  private pendingSpace = 0;
  private tokens = 0;
  private segStart = -1;
  private segEnd = -1;
  private depth = 0;
  private lastWord = '';
  private lastWordEnd = -1;
  // The previous token was an E'…' string: a quote after it (past a newline) continues it in E mode.
  private afterEString = false;
  readonly statements: NormalizedStatement[] = [];
  complete = true;

  constructor(private readonly s: string) {}

  run(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (isSpace(c)) {
        if (c === 10 || c === 13) this.pendingSpace = 2;
        else if (this.pendingSpace === 0) this.pendingSpace = 1;
        this.i++;
      } else if (c === 45 && s.charCodeAt(this.i + 1) === 45) {
        this.lineComment();
      } else if (c === 47 && s.charCodeAt(this.i + 1) === 42) {
        if (!this.blockComment()) return;
      } else if (c === 59 && this.depth === 0) {
        this.closeStatement();
        this.i++;
      } else {
        if (!this.token(c)) return;
      }
    }
    this.closeStatement();
  }

  private markBlank(start: number): void {
    // Comments count as statement text (an approval may quote them) but not as tokens.
    if (this.segStart < 0) this.segStart = start;
    this.segEnd = this.i;
  }

  private lineComment(): void {
    // scan.l: comment = "--" [^\n\r]*. A carriage return ends it too: `SELECT 1 -- x\r; DROP TABLE t`
    // is two statements to PostgreSQL, and must not share the key of `SELECT 1`.
    const s = this.s;
    const start = this.i;
    let i = this.i + 2;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 10 || c === 13) break;
      i++;
    }
    this.i = i;
    if (this.pendingSpace === 0) this.pendingSpace = 1;
    this.markBlank(start);
  }

  private blockComment(): boolean {
    // PostgreSQL block comments nest.
    const s = this.s;
    const start = this.i;
    let depth = 0;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 47 && s.charCodeAt(this.i + 1) === 42) {
        depth++;
        this.i += 2;
      } else if (c === 42 && s.charCodeAt(this.i + 1) === 47) {
        depth--;
        this.i += 2;
        if (depth === 0) {
          if (this.pendingSpace === 0) this.pendingSpace = 1;
          this.markBlank(start);
          return true;
        }
      } else {
        this.i++;
      }
    }
    this.complete = false;
    return false;
  }

  private emit(text: string, start: number): void {
    if (this.pendingSpace !== 0 && this.out.length > 0) this.out += this.pendingSpace === 2 ? '\n' : ' ';
    this.pendingSpace = 0;
    this.afterEString = false;
    this.out += text;
    this.tokens++;
    if (this.segStart < 0) this.segStart = start;
    this.segEnd = this.i;
  }

  private token(c: number): boolean {
    const start = this.i;
    const s = this.s;
    if (c === 39) return this.quoteStart(start);
    if (c === 34) return this.quotedIdent(start);
    if (c === 36) return this.dollar(start);
    if (isDigit(c) || (c === 46 && isDigit(s.charCodeAt(this.i + 1)))) {
      this.number();
      this.emit(PLACEHOLDER_NUMBER, start);
      this.lastWord = '';
      return true;
    }
    if (isIdentStart(c)) {
      this.i++;
      while (this.i < s.length && isIdentCont(s.charCodeAt(this.i))) this.i++;
      const word = asciiLower(s.slice(start, this.i));
      if (word === 'uescape') {
        // U&"d!0061ta" UESCAPE '!' (or $$!$$, or E'!'): the escape literal changes what the identifier
        // before it decodes to, so no literal here may be stripped. Rare: always parsed, never shared.
        this.complete = false;
        return false;
      }
      this.emit(word, start);
      this.lastWord = word;
      this.lastWordEnd = this.i;
      return true;
    }
    return this.operatorChar(c, start);
  }

  /** A `'`: which kind of string it opens depends on the word glued to it (E'…', B'…', X'…'). */
  private quoteStart(start: number): boolean {
    const prefix = this.adjacentWord();
    // 'a'<newline>'b' is one literal lexed in the FIRST part's mode: after E'…' a backslash-quote
    // in the second part does not end it (E'a'\n'\' || ' ; DROP TABLE t; -- ' is two statements to
    // PostgreSQL, one to a scanner that reads the second part as a standard string). Not worth
    // modelling: such a text is classified by the parser every time.
    if (prefix === '' && this.afterEString) {
      this.complete = false;
      return false;
    }
    // b'…' and x'…' have no '' escape: x'1''2' is x'1' followed by '2'.
    return this.quoted(start, prefix === 'e' ? 'escape' : prefix === 'b' || prefix === 'x' ? 'bits' : 'standard');
  }

  /** Any other character, copied verbatim; parentheses tracked so `;` inside CREATE RULE (…) is not a split. */
  private operatorChar(c: number, start: number): boolean {
    if (c === 0) {
      this.complete = false;
      return false;
    }
    if (c === 40) this.depth++;
    else if (c === 41 && this.depth > 0) this.depth--;
    this.i++;
    this.emit(this.s[start] ?? '', start);
    this.lastWord = '';
    return true;
  }

  /** The word that ends exactly here (E'…', U&'…' prefixes), or ''. */
  private adjacentWord(): string {
    return this.lastWordEnd === this.i ? this.lastWord : '';
  }

  private quoted(start: number, mode: 'standard' | 'escape' | 'bits'): boolean {
    const s = this.s;
    this.i++;
    for (;;) {
      if (this.i >= s.length) {
        this.complete = false;
        return false;
      }
      const c = s.charCodeAt(this.i);
      if (mode === 'escape' && c === 92) {
        this.i += 2;
      } else if (c === 39) {
        if (mode !== 'bits' && s.charCodeAt(this.i + 1) === 39) this.i += 2;
        else break;
      } else {
        this.i++;
      }
    }
    this.i++;
    this.emit(PLACEHOLDER_STRING, start);
    this.afterEString = mode === 'escape';
    this.lastWord = '';
    return true;
  }

  private quotedIdent(start: number): boolean {
    const s = this.s;
    this.i++;
    for (;;) {
      const q = s.indexOf('"', this.i);
      if (q < 0) {
        this.complete = false;
        return false;
      }
      this.i = q + 1;
      if (s.charCodeAt(this.i) !== 34) break;
      this.i++;
    }
    this.emit(s.slice(start, this.i), start);
    this.lastWord = '';
    return true;
  }

  private dollar(start: number): boolean {
    const s = this.s;
    let j = this.i + 1;
    if (isDigit(s.charCodeAt(j))) {
      // $1: a parameter reference, kept verbatim.
      while (isDigit(s.charCodeAt(j))) j++;
      this.i = j;
      this.emit(s.slice(start, j), start);
      this.lastWord = '';
      return true;
    }
    if (isIdentStart(s.charCodeAt(j)) || s.charCodeAt(j) === 36) {
      while (j < s.length && s.charCodeAt(j) !== 36 && isIdentCont(s.charCodeAt(j))) j++;
      if (s.charCodeAt(j) === 36) {
        const tag = s.slice(start, j + 1);
        const close = s.indexOf(tag, j + 1);
        if (close < 0) {
          this.complete = false;
          return false;
        }
        this.i = close + tag.length;
        this.emit(PLACEHOLDER_STRING, start);
        this.lastWord = '';
        return true;
      }
    }
    // A lone $ (an operator character in some contexts): verbatim.
    this.i++;
    this.emit('$', start);
    this.lastWord = '';
    return true;
  }

  private number(): void {
    // Digits with `_` separators, an optional fraction and exponent; hex/octal/binary prefixes and
    // trailing junk are left to the word scanner (verbatim), which only costs hit rate.
    const s = this.s;
    const digits = (): void => {
      while (isDigit(s.charCodeAt(this.i)) || (s.charCodeAt(this.i) === 95 && isDigit(s.charCodeAt(this.i + 1)))) this.i++;
    };
    digits();
    if (s.charCodeAt(this.i) === 46 && s.charCodeAt(this.i + 1) !== 46) {
      this.i++;
      digits();
    }
    const e = s.charCodeAt(this.i);
    if (e === 101 || e === 69) {
      const n = s.charCodeAt(this.i + 1);
      const sign = n === 43 || n === 45;
      if (isDigit(s.charCodeAt(this.i + (sign ? 2 : 1)))) {
        this.i += sign ? 2 : 1;
        digits();
      }
    }
  }

  private closeStatement(): void {
    if (this.tokens > 0) {
      this.statements.push({ start: this.segStart, end: this.segEnd, normalized: this.out });
    }
    this.out = '';
    this.tokens = 0;
    this.segStart = -1;
    this.segEnd = -1;
    this.pendingSpace = 0;
    this.depth = 0;
    this.lastWord = '';
  }
}

/** Normalizes a (possibly multi-statement) query text. Linear time, no allocation per character. */
export function normalizeSql(text: string): NormalizedSql {
  const sc = new Scanner(text);
  sc.run();
  const key = sc.statements.map((st) => st.normalized).join(';');
  return { key, statements: sc.statements, complete: sc.complete };
}

/** The normalized statement as RE2 patterns see it: every literal placeholder shown as `?`. */
export function patternText(normalized: string): string {
  return normalized.includes('\0') ? normalized.replace(/\0[sn]/g, '?') : normalized;
}
