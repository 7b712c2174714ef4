// examples/quickstart against the real API server (CRDs and ClusterRoles installed): kubectl server-side dry-run, then a real apply, accept every file; CEL refuses a broken copy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { installPlatform, kubectl, loadQuickstart, QUICKSTART_DIR, type Obj } from '../../examples/demo/platform.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';

let cp: ControlPlane;
let ns: string;
let dir: string;
let files: { file: string; objects: Obj[] }[];

/** The quick start moved into this test's namespace (a shared control plane may already hold the fixed one). */
async function writeInto(target: string, edit: (o: Obj) => Obj = (o) => o): Promise<string> {
  const out = await mkdtemp(join(dir, 'manifests-'));
  for (const f of files) {
    const objs = f.objects.filter((o) => o.kind !== 'Namespace').map((o) => edit({ ...structuredClone(o), metadata: { ...o.metadata, namespace: target } }));
    for (const o of objs) {
      for (const s of (o['subjects'] as { kind: string; namespace?: string }[] | undefined) ?? []) if (s.kind === 'ServiceAccount') s.namespace = target;
    }
    if (objs.length > 0) await writeFile(join(out, f.file), objs.map((o) => stringify(o)).join('---\n'));
  }
  return out;
}

before(async () => {
  cp = await sharedControlPlane();
  await installPlatform(cp);
  ns = await cp.createNamespace('quickstart');
  dir = await mkdtemp(join(tmpdir(), 'chaperone-quickstart-test-'));
  files = await loadQuickstart();
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  if (cp?.owned) await cp.stop();
});

describe('examples/quickstart on the real API server', () => {
  it('00-namespace.yaml passes a server-side dry run', async () => {
    const r = await kubectl(cp.kubeconfig('admin'), ['apply', '--dry-run=server', '-f', join(QUICKSTART_DIR, '00-namespace.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^namespace\/chaperone-quickstart (created|configured|unchanged) \(server dry run\)$/m);
  });

  it('every other file passes a server-side dry run (schemas and CEL rules of the installed CRDs), then applies for real', async () => {
    const out = await writeInto(ns);
    const dry = await kubectl(cp.kubeconfig('admin'), ['apply', '--dry-run=server', '-f', `${out}/`]);
    assert.equal(dry.code, 0, dry.stderr);
    const want = files.flatMap((f) => f.objects).filter((o) => o.kind !== 'Namespace');
    assert.equal(dry.stdout.trim().split('\n').filter((l) => l.endsWith('(server dry run)')).length, want.length, dry.stdout);
    const real = await kubectl(cp.kubeconfig('admin'), ['apply', '-f', `${out}/`]);
    assert.equal(real.code, 0, real.stderr);
    for (const o of want) {
      const got = await kubectl(cp.kubeconfig('admin'), ['get', '-n', ns, `${o.kind.toLowerCase()}/${o.metadata.name}`, '-o', 'name']);
      assert.equal(got.code, 0, `${o.kind}/${o.metadata.name}: ${got.stderr}`);
    }
    const job = await cp.request<{ spec: { template: { metadata: { labels: Record<string, string> } } } }>('admin', 'GET', `/apis/batch/v1/namespaces/${ns}/jobs/coding-agent-task`);
    assert.equal(job.body.spec.template.metadata.labels['chaperone.dev/identity'], 'coding-agent', 'the stored Job keeps the opt-in label');
  });

  it('examples/policies (the reference examples) pass a server-side dry run too', async () => {
    const policies = await loadQuickstart(join(QUICKSTART_DIR, '..', 'policies'));
    const out = await mkdtemp(join(dir, 'policies-'));
    for (const f of policies) await writeFile(join(out, f.file), f.objects.map((o) => stringify({ ...o, metadata: { ...o.metadata, namespace: ns } })).join('---\n'));
    const r = await kubectl(cp.kubeconfig('admin'), ['apply', '--dry-run=server', '-f', `${out}/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').filter((l) => l.endsWith('(server dry run)')).length, policies.flatMap((f) => f.objects).length, r.stdout);
  });

  it('a broken copy (two connections on one localPort) is refused by the CRD\'s CEL rule, with its message', async () => {
    const out = await writeInto(ns, (o) => {
      if (o.kind !== 'AgentIdentity') return o;
      for (const c of (o['spec'] as { connections: { localPort: number }[] }).connections) c.localPort = 5432;
      return o;
    });
    const r = await kubectl(cp.kubeconfig('admin'), ['apply', '--dry-run=server', '-f', join(out, '20-agentidentity.yaml')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /localPort must be unique/);
    assert.match(await readFile(join(QUICKSTART_DIR, '20-agentidentity.yaml'), 'utf8'), /localPort: 8080/, 'the original is untouched');
  });
});
