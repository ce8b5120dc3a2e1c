// The addresses Nodes report as their own, as exclusions for the allocation state: no
// pool ever hands one out. `nodeExclusions` itself lives in @purelb/api (kubectl purelb
// uses it too); this file says which excluded addresses fall in which pools.
import { type Exclusion, type Family, type Group, parseAddress } from '@purelb/ipam-core';

export { nodeExclusions } from '@purelb/api';

/** An excluded address inside a pool of a group: the group is told, once per change. */
export interface ExclusionInPool {
  readonly group: string;
  readonly family: Family;
  /** The pool's field (`v4pools[0]`) and text. */
  readonly field: string;
  readonly pool: string;
  readonly address: string;
  readonly reason: string;
}

/** Which excluded addresses lie in which group's pools, groups and addresses in order. */
export function exclusionsInPools(groups: readonly Group[], exclusions: readonly Exclusion[]): ExclusionInPool[] {
  const parsed = exclusions.map((e) => ({ e, a: parseAddress(e.address) })).filter((x) => x.a !== undefined);
  const out: ExclusionInPool[] = [];
  for (const g of groups) {
    for (const { e, a } of parsed) {
      const pool = g.pools[a!.family].find((p) => a!.value >= p.first && a!.value <= p.last);
      if (pool) out.push({ group: g.name, family: a!.family, field: pool.field, pool: pool.text, address: e.address, reason: e.reason });
    }
  }
  return out;
}
