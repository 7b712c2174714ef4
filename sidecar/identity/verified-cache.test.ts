// The verified-token LRU: hits inside the window, misses after it, oldest evicted first, size 0 disables it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VerifiedCache } from './verified-cache.ts';

test('given an entry inside its window, returns it; after min(exp, max age), misses', () => {
  const c = new VerifiedCache<string>(10, 60_000);
  c.set('t', 'p', 30_000, 0);
  assert.equal(c.get('t', 29_999), 'p');
  assert.equal(c.get('t', 30_000), undefined, 'never past the token exp');
  c.set('u', 'q', 1e12, 0);
  assert.equal(c.get('u', 59_999), 'q');
  assert.equal(c.get('u', 60_000), undefined, 'never past the max age');
  assert.deepEqual(c.stats, { hits: 2, misses: 2, evictions: 0 });
});

test('given more entries than the size, evicts the least recently used', () => {
  const c = new VerifiedCache<number>(2, 60_000);
  c.set('a', 1, 1e12, 0);
  c.set('b', 2, 1e12, 0);
  assert.equal(c.get('a', 1), 1); // a is now the most recent
  c.set('c', 3, 1e12, 0);
  assert.equal(c.get('b', 1), undefined);
  assert.equal(c.get('a', 1), 1);
  assert.equal(c.get('c', 1), 3);
  assert.equal(c.stats.evictions, 1);
});

test('given size 0, remembers nothing', () => {
  const c = new VerifiedCache<number>(0, 60_000);
  c.set('a', 1, 1e12, 0);
  assert.equal(c.get('a', 1), undefined);
});
