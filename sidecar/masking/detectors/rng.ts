// Deterministic pseudo-random source (mulberry32) for detector examples and the corpus generator.
import type { Rng } from '../types.ts';

/** A seeded mulberry32 generator: same seed, same sequence, on every platform. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = (alphabet: string, len: number): string => {
    let out = '';
    for (let i = 0; i < len; i++) out += alphabet.charAt(int(alphabet.length));
    return out;
  };
  return { int, pick };
}
