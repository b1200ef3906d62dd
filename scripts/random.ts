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
