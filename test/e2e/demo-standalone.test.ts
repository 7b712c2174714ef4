// The standalone demo (the sidecar without Kubernetes) stays true: it runs every step and exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('examples/demo/standalone.ts runs every step and exits 0', () => {
  const r = spawnSync(join(root, 'node_modules', '.bin', 'node'), ['--import', 'tsx', join(root, 'examples', 'demo', 'standalone.ts')], { cwd: root, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `standalone demo failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /\[MASKED:aws-access-key-id\]/);
  assert.match(r.stdout, /rule no-ddl/);
  assert.match(r.stdout, /DELETE 1/);
  assert.match(r.stdout, /Demo finished: every step behaved\./);
});
