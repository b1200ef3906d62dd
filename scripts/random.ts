/** Seeded randomness: the same seed gives the same fleet, the same placement ties, the same faults. */
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export interface Random {
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number;
}

export function seeded(seed: number): Random {
  const rng = xoroshiro128plus(seed | 0);
  return { int: (lo, hi) => uniformInt(rng, lo, hi) };
}

/** Shuffle list in place (Fisher-Yates, from the end), drawing from rng; returns it. */
export function shuffle<T>(rng: Random, list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}
