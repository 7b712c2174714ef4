// Renders the config field reference in docs/sidecar.md from CONFIG_SCHEMA (config-docs.test.ts fails on drift; run this file to rewrite it).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIG_SCHEMA } from './config-schema.ts';

export const DOC_PATH = fileURLToPath(new URL('../../docs/sidecar.md', import.meta.url));
export const BEGIN = '<!-- BEGIN GENERATED: config reference (sidecar/core/config-docs.ts) -->';
export const END = '<!-- END GENERATED: config reference -->';

interface Row {
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  readonly dflt: string;
  readonly description: string;
}

type S = Readonly<Record<string, unknown>>;

function typeOf(s: S): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => `\`${String(v)}\``).join(' | ');
  if (s.type === 'array') {
    const items = (s.items ?? {}) as S;
    if (Array.isArray(items.enum)) return `list of ${typeOf(items)}`;
    return `${items.type === 'object' || items.oneOf ? 'object' : typeOf(items)}[]`;
  }
  const t = typeof s.type === 'string' ? s.type : 'object';
  const range = typeof s.minimum === 'number' ? ` ${s.minimum}–${JSON.stringify(s.maximum)}` : '';
  const pattern = typeof s.pattern === 'string' ? ` \`${s.pattern}\`` : '';
  return `${t}${range}${pattern}`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function walk(s: S, path: string, required: boolean, rows: Row[]): void {
  rows.push({ path, type: typeOf(s), required, dflt: s.default === undefined ? '' : `\`${JSON.stringify(s.default)}\``, description: typeof s.description === 'string' ? s.description : '' });
  children(s, path, rows);
}

function children(s: S, path: string, rows: Row[]): void {
  const props = s.properties as Readonly<Record<string, S>> | undefined;
  const req = new Set((s.required as string[] | undefined) ?? []);
  if (props) for (const [k, v] of Object.entries(props)) walk(v, path === '' ? k : `${path}.${k}`, req.has(k), rows);
  const items = s.items as S | undefined;
  if (s.type === 'array' && items?.properties) children(items, `${path}[]`, rows);
  if (typeof s.additionalProperties === 'object') children(s.additionalProperties as S, `${path}.<id>`, rows);
}

/** One table for the common part and one per connection protocol (the schema's `oneOf` branches). */
export function renderConfigReference(): string {
  const top: Row[] = [];
  children(CONFIG_SCHEMA, '', top);
  const out: string[] = ['### Top level', '', ...table(top.filter((r) => !r.path.startsWith('connections[]')))];
  const conns = ((CONFIG_SCHEMA.properties as Record<string, S>).connections!.items as S).oneOf as S[];
  const fieldOf = (r: Row): string => r.path.slice('connections[].'.length).split(/[.[]/)[0] ?? '';
  const perProtocol = new Set(['protocol', 'upstream', 'credentials', 'policy', 'guardrails']);
  const first: Row[] = [];
  if (conns[0]) children(conns[0], 'connections[]', first);
  out.push('', '### `connections[]`: fields of every protocol', '', ...table(first.filter((r) => !perProtocol.has(fieldOf(r)))));
  for (const branch of conns) {
    const protocol = JSON.stringify((branch.properties as Record<string, S>).protocol!.const).replace(/"/g, '');
    const rows: Row[] = [];
    children(branch, 'connections[]', rows);
    out.push('', `### \`connections[]\` with \`protocol: ${protocol}\``, '', typeof branch.description === 'string' ? branch.description : '', '', ...table(rows.filter((r) => perProtocol.has(fieldOf(r)))));
    const creds = (branch.properties as Record<string, S>).credentials!;
    if (Array.isArray(creds.oneOf)) {
      out.push('', `\`credentials\` of an ${protocol} connection is one of (by \`type\`):`, '');
      for (const alt of creds.oneOf as S[]) {
        const p = alt.properties as Record<string, S>;
        const fields = Object.keys(p).filter((k) => k !== 'type');
        out.push(`- \`type: ${String(p.type!.const)}\`${fields.length > 0 ? ` — ${fields.map((f) => `\`${f}\``).join(', ')}` : ''}: ${typeof alt.description === 'string' ? alt.description : ''}`);
      }
    }
  }
  return out.join('\n') + '\n';
}

function table(rows: readonly Row[]): string[] {
  return ['| field | type | required | default | meaning |', '|---|---|---|---|---|', ...rows.map((r) => `| \`${r.path}\` | ${cell(r.type)} | ${r.required ? 'yes' : ''} | ${cell(r.dflt)} | ${cell(r.description)} |`)];
}

/** docs/sidecar.md with the generated block replaced. */
export function renderDoc(current: string): string {
  const a = current.indexOf(BEGIN);
  const b = current.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOC_PATH} lacks the ${BEGIN} … ${END} markers`);
  return `${current.slice(0, a + BEGIN.length)}\n\n${renderConfigReference()}\n${current.slice(b)}`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(DOC_PATH, renderDoc(readFileSync(DOC_PATH, 'utf8')));
  process.stdout.write(`wrote ${DOC_PATH}\n`);
}

