// The Grafana dashboard and the Prometheus rules name only metrics the code really exports, and parse.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

const root = resolve(import.meta.dirname, '../..');
const files = join(root, 'charts/chaperone/files');

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Metric names registered in code: `name: 'chaperone_…'` and `const name = 'chaperone_…'`. */
function exported(): Set<string> {
  const names = new Set<string>();
  for (const f of [...sources(join(root, 'sidecar')), ...sources(join(root, 'operator'))]) {
    for (const m of readFileSync(f, 'utf8').matchAll(/name(?:: | = )'(chaperone_[a-z0-9_]+)'/g)) names.add(m[1] ?? '');
  }
  return names;
}

function used(text: string): Set<string> {
  return new Set([...text.matchAll(/\b(chaperone_[a-z0-9_]+)/g)].map((m) => (m[1] ?? '').replace(/_(bucket|count|sum)$/, '')));
}

describe('observability files', () => {
  const known = exported();

  test('every metric in the Prometheus rules exists', () => {
    const text = readFileSync(join(files, 'prometheus-rules.yaml'), 'utf8');
    const doc = parse(text) as { groups: { rules: { alert: string; expr: string; annotations: { summary: string } }[] }[] };
    const rules = doc.groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 3);
    for (const r of rules) assert.ok(r.alert && r.expr && r.annotations.summary, `rule ${r.alert} is incomplete`);
    for (const m of used(rules.map((r) => r.expr).join('\n'))) assert.ok(known.has(m), `prometheus-rules.yaml uses ${m}, which no code exports`);
  });

  test('every metric on the Grafana dashboard exists, and panels have unique ids', () => {
    const dash = JSON.parse(readFileSync(join(files, 'grafana-dashboard.json'), 'utf8')) as { uid: string; panels: { id: number; targets: { expr: string }[] }[] };
    assert.equal(dash.uid, 'chaperone-overview');
    const ids = dash.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const m of used(exprs)) assert.ok(known.has(m), `grafana-dashboard.json uses ${m}, which no code exports`);
  });
});
