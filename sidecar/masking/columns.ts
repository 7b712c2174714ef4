// Column and JSON-field rules: case-insensitive globs on a field name or a dotted key path; a match masks the whole value.

/** `names` are globs (`*` any run, `?` one character): `*password*`, `api_key`, `spec.*.token`. */
export interface FieldRule {
  readonly id?: string;
  readonly names: readonly string[];
}

export interface FieldMatcher {
  /** Rule id for a field, given its own name and (for JSON) its dotted path; undefined = no rule. */
  match(name: string, path?: string): string | undefined;
  readonly empty: boolean;
}

const GLOB_MAX = 200;

function globToRegExp(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  // `.*` between literals is linear in V8 for names this short (bounded by GLOB_MAX and field-name length).
  return new RegExp(`^(?:${src})$`, 'is');
}

interface CompiledGlob {
  readonly id: string;
  /** Globs with a dot match the dotted path; the others match the field's own name. */
  readonly onPath: boolean;
  readonly exact: string | undefined;
  readonly re: RegExp;
}

/** Compiles the rules; `seen` collects ids so replacements can refer to them. Throws naming the bad field. */
export function compileFieldRules(rules: readonly FieldRule[], seen: Set<string>): FieldMatcher {
  const globs: CompiledGlob[] = [];
  rules.forEach((r, i) => {
    const id = r.id ?? `field-rule-${i}`;
    if (seen.has(id)) throw new Error(`masking options: fieldRules[${i}]: id ${JSON.stringify(id)} is used twice`);
    seen.add(id);
    if (!Array.isArray(r.names) || r.names.length === 0) throw new Error(`masking options: fieldRules[${i}].names: must be a non-empty list of globs such as "*password*"`);
    r.names.forEach((g, j) => {
      if (typeof g !== 'string' || g.length === 0 || g.length > GLOB_MAX) {
        throw new Error(`masking options: fieldRules[${i}].names[${j}]: must be a glob of 1-${GLOB_MAX} characters`);
      }
      const lower = g.toLowerCase();
      const exact = /[*?]/.test(lower) ? undefined : lower;
      globs.push({ id, onPath: lower.includes('.'), exact, re: globToRegExp(lower) });
    });
  });
  const cache = new Map<string, string | null>();
  return {
    empty: globs.length === 0,
    match(name: string, path?: string): string | undefined {
      if (globs.length === 0) return undefined;
      const key = path === undefined ? name : `${name}\u0000${path}`;
      const hit = cache.get(key);
      if (hit !== undefined) return hit ?? undefined;
      const lname = name.toLowerCase();
      const lpath = path?.toLowerCase();
      let found: string | null = null;
      for (const g of globs) {
        const subject = g.onPath ? lpath : lname;
        if (subject === undefined) continue;
        if (g.exact !== undefined ? g.exact === subject : g.re.test(subject)) {
          found = g.id;
          break;
        }
      }
      // Field names repeat on every row: cache decisions (bounded).
      if (cache.size > 10000) cache.clear();
      cache.set(key, found);
      return found ?? undefined;
    },
  };
}
