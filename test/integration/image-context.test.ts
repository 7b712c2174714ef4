// The container image's contents, checked without a Docker engine: what the Dockerfile copies, installed for production only, runs every entry point.
//
// No Docker engine runs on these machines, so this builds the runtime stage by hand: the compiled
// dist/ (tsc, as the build stage does), package.json + lockfile with `npm ci --omit=dev` in a clean
// temp dir, and then each bin's `--help` under Node 24. A runtime import of a devDependency, a file
// the Dockerfile forgets, or a bin that does not start fails here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const node = join(root, 'node_modules/.bin/node');
let dir = '';

interface Pkg {
  bin: Record<string, string>;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'chap-image-'));
  // The build stage: tsc into this dir's dist/ (not the checkout's, so a stale dist/ cannot hide a problem).
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], { cwd: root, stdio: 'pipe' });
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(root, f), join(dir, f));
  cpSync(join(root, 'crds'), join(dir, 'crds'), { recursive: true });
  // The runtime stage's install: production dependencies only, from the lockfile, offline-first.
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, stdio: 'pipe', timeout: 300_000 });
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('image context', () => {
  test('the Dockerfile copies what the runtime needs and names every bin', () => {
    const docker = readFileSync(join(root, 'Dockerfile'), 'utf8');
    for (const what of ['COPY --from=build /src/node_modules', 'COPY --from=build /src/dist', 'npm ci --omit=dev', 'USER 65532:65532']) assert.ok(docker.includes(what), `Dockerfile lacks ${what}`);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Pkg;
    for (const [name, file] of Object.entries(pkg.bin)) {
      assert.ok(docker.includes(`${name}:${file.replace(/^dist\//, '')}`), `the Dockerfile does not link bin ${name} (${file})`);
    }
  });

  test('no devDependency is installed in the production tree', () => {
    for (const dev of ['typescript', 'tsx', 'eslint', 'oidc-provider', 'pg']) assert.equal(existsSync(join(dir, 'node_modules', dev)), false, `${dev} is in the production install`);
  });

  test('every bin starts from the production tree and prints its help', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Pkg;
    assert.ok(Object.keys(pkg.bin).length >= 4);
    for (const [name, file] of Object.entries(pkg.bin)) {
      const path = join(dir, file);
      assert.ok(existsSync(path), `bin ${name}: ${file} was not built`);
      assert.match(readFileSync(path, 'utf8').split('\n')[0] ?? '', /^#!\/usr\/bin\/env (?:-S )?node(?: --[a-z-]+)*$/, `bin ${name} needs a #!/usr/bin/env node line, flags allowed with -S (the image links it onto PATH)`);
      const r = spawnSync(node, [path, '--help'], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' } });
      assert.equal(r.status, 0, `${name} --help exited ${r.status}: ${r.stderr}`);
      assert.match(`${r.stdout}${r.stderr}`, /usage|Usage/, `${name} --help printed no usage`);
    }
  });
});
