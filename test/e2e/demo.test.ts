// `make demo` stays true: the narrated Kubernetes session runs to the end, exits 0 only if every step behaved, and says what it showed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installPlatform } from '../../examples/demo/platform.ts';
import { sharedControlPlane } from '../cluster/control-plane.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('make demo: every step behaves and the narration shows masking, the refused DROP, the approved DELETE and a verified recording', () => {
  const env = { ...process.env };
  delete env.KUBECONFIG; // the demo runs everything locally unless told --use-kubeconfig
  const r = spawnSync(join(root, 'node_modules', '.bin', 'node'), ['--import', 'tsx', join(root, 'examples', 'demo', 'demo.ts')], { cwd: root, env, encoding: 'utf8', timeout: 300_000 });
  const out = r.stdout;
  assert.equal(r.status, 0, `demo failed:\n${out}\n${r.stderr}`);
  assert.match(out, /\[MASKED:email\]/);
  assert.match(out, /\[MASKED:aws-access-key-id\]/);
  assert.match(out, /\[MASKED:customer-data\.columns-1\]/, 'the token column rule');
  assert.match(out, /Chaperone refused this statement: rule deny-ddl/);
  assert.match(out, /✔ DROP TABLE was refused by ApprovalRule deny-ddl/);
  assert.match(out, /approvalrequest\/\S+ approved as approver \(1 of 1/);
  assert.match(out, /^ {4}│ DELETE 1$/m);
  assert.match(out, /the webhook recorded the reviewer as approver/);
  assert.match(out, /approved by approver after/);
  assert.match(out, /│ OK \S+sidecar\.stdout: \d+ recording line\(s\)/);
  assert.match(out, /│ FAIL \S+recording-edited\.jsonl: line \d+: chain-broken/);
  assert.match(out, /every process stopped .* and every temp dir removed/);
  assert.match(out, /Demo finished: every step behaved\./);
  for (const s of ['quickstart-FAKE-password-not-a-secret', 'quickstart-FAKE-api-token-not-a-secret', 'ada.lovelace@example.com']) assert.ok(!out.includes(s), `the narration never shows ${s}`);
});

test('demo --help and a bad flag: usage, without starting anything', () => {
  const node = join(root, 'node_modules', '.bin', 'node');
  const demo = join(root, 'examples', 'demo', 'demo.ts');
  const help = spawnSync(node, ['--import', 'tsx', demo, '--help'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--use-kubeconfig/);
  const bad = spawnSync(node, ['--import', 'tsx', demo, '--bogus'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown argument --bogus/);
});

test('demo --use-kubeconfig on a cluster: without the chart it says to install it; with the CRDs it applies the quick start and explains', async () => {
  const cp = await sharedControlPlane();
  try {
    const node = join(root, 'node_modules', '.bin', 'node');
    const run = (): ReturnType<typeof spawnSync> => spawnSync(node, ['--import', 'tsx', join(root, 'examples', 'demo', 'demo.ts'), '--use-kubeconfig', '--kubeconfig', cp.kubeconfig('admin')], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    const crds = await cp.request('admin', 'GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/agentidentities.chaperone.dev');
    if (crds.status === 404) {
      const bare = run();
      assert.equal(bare.status, 1, String(bare.stdout));
      assert.match(String(bare.stderr), /helm install chaperone charts\/chaperone -n chaperone-system --create-namespace/);
    }
    await installPlatform(cp);
    const r = run();
    assert.equal(r.status, 0, `${String(r.stdout)}\n${String(r.stderr)}`);
    assert.match(String(r.stdout), /agentidentity\.chaperone\.dev\/coding-agent (created|configured|unchanged)/);
    assert.match(String(r.stdout), /kubectl chaperone approve NAME -n chaperone-quickstart/);
    assert.match(String(r.stdout), /Quick start applied\./);
  } finally {
    if (cp.owned) await cp.stop();
  }
});
