// The sidecar stays small: it loads no operator runtime code and no Kubernetes client library (types may be shared).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FORBIDDEN_PACKAGES = ['@kubernetes/client-node', 'kubernetes-fluent-client', 'fastify'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Runtime module specifiers of a file: static imports and re-exports that are not `type`-only, and dynamic imports. */
function runtimeImports(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) found.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found;
}

test('no sidecar module loads operator code or a Kubernetes client library at run time', () => {
  const bad: string[] = [];
  for (const file of sources(join(root, 'sidecar'))) {
    for (const spec of runtimeImports(readFileSync(file, 'utf8'))) {
      const target = spec.startsWith('.') ? relative(root, resolve(dirname(file), spec)) : spec;
      if (target.startsWith('operator/') || FORBIDDEN_PACKAGES.some((p) => target === p || target.startsWith(`${p}/`))) bad.push(`${relative(root, file)} -> ${spec}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('the import scanner sees what it must (a self-check)', () => {
  assert.deepEqual(runtimeImports("import { a } from '../../operator/x.ts';\nimport type { T } from '../../operator/y.ts';\nexport { b } from './z.ts';\nconst m = await import('fastify');"), ['../../operator/x.ts', './z.ts', 'fastify']);
});
