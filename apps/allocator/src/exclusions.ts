// The addresses Nodes report as their own, as exclusions for the allocation state: no
// pool ever hands one out. A pure function of the Node cache.
import { type Exclusion, type Family, type Group, formatAddress, parseAddress } from '@purelb/ipam-core';
import type { Node } from '@purelb/api';

/**
 * Every IP address in `status.addresses` of every Node (any type: InternalIP,
 * ExternalIP, and a Hostname or DNS entry that happens to hold an IP), each once, with
 * the reason naming the Node and the address type. Nodes are read in name order, so an
 * address two Nodes report names the first.
 */
export function nodeExclusions(nodes: readonly Node[]): Exclusion[] {
  const seen = new Set<string>();
  const out: Exclusion[] = [];
  for (const n of [...nodes].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0))) {
    for (const a of n.status?.addresses ?? []) {
      const parsed = typeof a.address === 'string' ? parseAddress(a.address) : undefined;
      if (!parsed) continue;
      const text = formatAddress(parsed.family, parsed.value);
      if (seen.has(text)) continue;
      seen.add(text);
      out.push({ address: text, reason: `Node ${n.metadata.name} reports it as its own (${a.type})` });
    }
  }
  return out;
}

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
