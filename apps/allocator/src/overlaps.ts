// Pools of different ServiceGroups that overlap. ipam-core allows it (an address held
// through one group counts as in use in both), but it is rarely meant: both groups are
// told. A sweep over the pools sorted by first address, so many groups stay cheap.
import { type Family, type Group, FAMILIES, formatAddress } from '@purelb/ipam-core';

export interface PoolOverlap {
  /** The group told, and its pool. */
  readonly group: string;
  readonly field: string;
  readonly pool: string;
  /** The other group and its pool. */
  readonly other: string;
  readonly otherField: string;
  readonly otherPool: string;
  /** The addresses both hold, as `first-last`. */
  readonly range: string;
}

/** Every overlap between pools of two different groups, reported for each side, in a stable order. */
export function poolOverlaps(groups: readonly Group[]): PoolOverlap[] {
  const out: PoolOverlap[] = [];
  for (const f of FAMILIES) {
    const pools = groups.flatMap((g) => g.pools[f].map((p) => ({ group: g.name, p })));
    pools.sort((a, b) => (a.p.first < b.p.first ? -1 : a.p.first > b.p.first ? 1 : 0));
    const active: typeof pools = [];
    for (const cur of pools) {
      // Drop pools that end before this one starts; the rest overlap it.
      for (let i = active.length - 1; i >= 0; i--) if (active[i]!.p.last < cur.p.first) active.splice(i, 1);
      for (const prev of active) {
        if (prev.group === cur.group) continue;
        const first = cur.p.first;
        const last = prev.p.last < cur.p.last ? prev.p.last : cur.p.last;
        const range = rangeText(f, first, last);
        out.push({ group: prev.group, field: prev.p.field, pool: prev.p.text, other: cur.group, otherField: cur.p.field, otherPool: cur.p.text, range });
        out.push({ group: cur.group, field: cur.p.field, pool: cur.p.text, other: prev.group, otherField: prev.p.field, otherPool: prev.p.text, range });
      }
      active.push(cur);
    }
  }
  return out.sort((a, b) => (a.group + a.field + a.other < b.group + b.field + b.other ? -1 : 1));
}

function rangeText(f: Family, first: bigint, last: bigint): string {
  return first === last ? formatAddress(f, first) : `${formatAddress(f, first)}-${formatAddress(f, last)}`;
}
