// Custom RE2 patterns are compiled once per process: re2-wasm's fixed heap is never freed by GC, so recompiling on every reload or reconcile ran it out of memory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from './index.ts';

describe('custom pattern cache', () => {
  test('3,000 maskers with the same custom patterns (more than once filled the WASM heap) all work', () => {
    const opts = { detectors: [], customPatterns: [{ id: 'acme', pattern: 'ACME-[0-9]{8}' }, { id: 'tok', pattern: 'tok_[a-z]{20}', ignoreCase: true }] };
    let last = createMasker(opts);
    for (let i = 0; i < 3000; i++) last = createMasker(opts);
    const r = last.maskText('id ACME-12345678 and TOK_abcdefghijklmnopqrst');
    assert.equal(r.changed, true);
    assert.deepEqual(r.findings, { acme: 1, tok: 1 });
  });

  test('a shared pattern keeps no state between maskers', () => {
    const opts = { detectors: [], customPatterns: [{ id: 'acme', pattern: 'ACME-[0-9]{8}' }] };
    const a = createMasker(opts);
    const b = createMasker(opts);
    assert.equal(a.maskText('x ACME-11111111 y ACME-22222222').findings.acme, 2);
    assert.equal(b.maskText('ACME-33333333').findings.acme, 1);
    assert.equal(a.maskText('ACME-44444444').findings.acme, 1);
  });
});
