// The addresses Nodes report as their own: no pool ever hands one out. Shared by the
// allocator (its exclusions) and `kubectl purelb pools` (the next address it shows).
import { type Exclusion, formatAddress, parseAddress } from '@purelb/ipam-core';
import type { Node } from './purelb-api.ts';

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
