// jsonPatch: applying the diff to the original yields exactly the desired document, on pods and on edge shapes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { escapePointer, jsonPatch, type Operation } from '../../operator/webhooks/pod-mutate/patch.ts';
import { desiredPod } from '../../operator/webhooks/pod-mutate/build.ts';
import { agentPod, barePod, readyIdentity } from '../../operator/webhooks/testdata/pods.ts';

/** A strict RFC 6902 applier (add/remove/replace) written from the RFC, independent of patch.ts. */
function unescape(t: string): string {
  return t.replace(/~1/g, '/').replace(/~0/g, '~');
}

function apply(doc: unknown, ops: readonly Operation[]): unknown {
  let root = structuredClone(doc);
  for (const op of ops) {
    if (op.path === '') {
      assert.equal(op.op, 'replace');
      root = structuredClone((op as { value: unknown }).value);
      continue;
    }
    assert.ok(op.path.startsWith('/'), `pointer ${op.path}`);
    const tokens = op.path.slice(1).split('/').map(unescape);
    const last = tokens.pop()!;
    let parent = root as Record<string, unknown> | unknown[];
    for (const t of tokens) {
      const next = Array.isArray(parent) ? parent[Number(t)] : parent[t];
      assert.ok(typeof next === 'object' && next !== null, `${op.path}: parent ${t} missing`);
      parent = next as Record<string, unknown> | unknown[];
    }
    if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      assert.ok(Number.isInteger(i) && i >= 0, `${op.path}: bad index`);
      if (op.op === 'add') {
        assert.ok(i <= parent.length, `${op.path}: index past end`);
        parent.splice(i, 0, structuredClone(op.value));
      } else {
        assert.ok(i < parent.length, `${op.path}: no element`);
        if (op.op === 'remove') parent.splice(i, 1);
        else parent[i] = structuredClone(op.value);
      }
    } else if (op.op === 'add') {
      parent[last] = structuredClone(op.value);
    } else {
      assert.ok(last in parent, `${op.path}: ${op.op} of a missing member`);
      if (op.op === 'remove') delete parent[last];
      else parent[last] = structuredClone(op.value);
    }
  }
  return root;
}

/** Pods as JSON (what the API server sends): no undefined members. */
function json<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('jsonPatch on injected pods', () => {
  const pods: { name: string; pod: V1Pod }[] = [
    { name: 'with the default API token, env and annotations', pod: agentPod() },
    { name: 'bare (no volumes, no initContainers, no annotations, no env)', pod: barePod() },
    { name: 'with existing init containers', pod: agentPod({ initContainers: [{ name: 'migrate', image: 'm' }] }) },
    { name: 'with an existing fsGroup and two containers', pod: agentPod({ securityContext: { fsGroup: 7 }, containers: [{ name: 'a', image: 'a', env: [{ name: 'PGPORT', value: '1' }] }, { name: 'b', image: 'b' }] }) },
    { name: 'with no metadata at all', pod: { spec: { containers: [{ name: 'a', image: 'a' }] } } },
  ];
  for (const { name, pod } of pods) {
    for (const nativeSidecars of [true, false]) {
      it(`apply(original, jsonPatch(original, desired)) equals desired: pod ${name}, native ${nativeSidecars}`, () => {
        const original = json(pod);
        const desired = json(desiredPod(original, readyIdentity(), 'cm', { nativeSidecars }));
        const ops = jsonPatch(original, desired);
        assert.ok(ops.length > 0);
        assert.deepEqual(apply(original, ops), desired);
        assert.deepEqual(jsonPatch(desired, desired), []);
      });
    }
  }

  it('the annotation key chaperone.dev/injected is escaped as chaperone.dev~1injected', () => {
    const original = json(agentPod());
    const ops = jsonPatch(original, json(desiredPod(original, readyIdentity(), 'cm')));
    assert.ok(ops.some((o) => o.op === 'add' && o.path === '/metadata/annotations/chaperone.dev~1injected'));
  });

  it('missing annotations are created as a whole map, not as a member of a missing parent', () => {
    const original = json(barePod());
    const ops = jsonPatch(original, json(desiredPod(original, readyIdentity(), 'cm')));
    const ann = ops.find((o) => o.path.startsWith('/metadata/annotations'));
    assert.equal(ann?.path, '/metadata/annotations');
    assert.equal(ann?.op, 'add');
  });
});

describe('jsonPatch edge shapes', () => {
  const cases: { name: string; a: unknown; b: unknown; ops?: Operation[] }[] = [
    { name: 'equal documents give no operations', a: { x: [1, { y: 2 }] }, b: { x: [1, { y: 2 }] }, ops: [] },
    { name: 'a new key is added', a: {}, b: { k: 1 }, ops: [{ op: 'add', path: '/k', value: 1 }] },
    { name: 'a dropped key is removed', a: { k: 1, j: 2 }, b: { j: 2 }, ops: [{ op: 'remove', path: '/k' }] },
    { name: 'an undefined member counts as absent', a: { k: undefined, j: 1 }, b: { j: 1 }, ops: [] },
    { name: 'a changed scalar is replaced', a: { k: 1 }, b: { k: '1' }, ops: [{ op: 'replace', path: '/k', value: '1' }] },
    { name: 'keys with ~ and / are escaped (~0, ~1)', a: { m: {} }, b: { m: { 'a/b~c': 1 } }, ops: [{ op: 'add', path: '/m/a~1b~0c', value: 1 }] },
    { name: 'an appended array gets index adds', a: { l: [1] }, b: { l: [1, 2, 3] }, ops: [{ op: 'add', path: '/l/1', value: 2 }, { op: 'add', path: '/l/2', value: 3 }] },
    { name: 'a prepended array is replaced whole', a: { l: [2] }, b: { l: [1, 2] }, ops: [{ op: 'replace', path: '/l', value: [1, 2] }] },
    { name: 'a shortened array is replaced whole', a: { l: [1, 2] }, b: { l: [1] }, ops: [{ op: 'replace', path: '/l', value: [1] }] },
    { name: 'same-length arrays diff by index', a: { l: [{ n: 1 }, { n: 2 }] }, b: { l: [{ n: 1 }, { n: 3 }] }, ops: [{ op: 'replace', path: '/l/1/n', value: 3 }] },
    { name: 'object to array is replaced', a: { k: { a: 1 } }, b: { k: [1] }, ops: [{ op: 'replace', path: '/k', value: [1] }] },
    { name: 'null to object is replaced', a: { k: null }, b: { k: { a: 1 } }, ops: [{ op: 'replace', path: '/k', value: { a: 1 } }] },
    { name: 'an empty array is added whole', a: {}, b: { l: [] }, ops: [{ op: 'add', path: '/l', value: [] }] },
    { name: 'a numeric-looking key in an object stays a key', a: { m: { '0': 'a' } }, b: { m: { '0': 'b' } }, ops: [{ op: 'replace', path: '/m/0', value: 'b' }] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const ops = jsonPatch(c.a, c.b);
      if (c.ops) assert.deepEqual(ops, c.ops);
      assert.deepEqual(apply(json(c.a), ops), json(c.b));
    });
  }

  it('added values are JSON copies, not references into desired', () => {
    const b = { k: { deep: [1] } };
    const [op] = jsonPatch({}, b);
    assert.ok(op && op.op === 'add');
    assert.notEqual(op.value, b.k);
  });

  it('escapePointer escapes ~ before / (RFC 6901)', () => {
    assert.equal(escapePointer('~1'), '~01');
    assert.equal(escapePointer('a/b'), 'a~1b');
  });
});
