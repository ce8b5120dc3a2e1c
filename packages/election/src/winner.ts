// The per-address election: every member computes the same answer from the same member
// set, with no coordination, and an address only moves when its winner leaves the set.
import { createHash } from 'node:crypto';
import { type Address, cidrContains, parseAddress } from '@purelb/ipam-core';
import type { Member, MemberStatus } from './member-state.ts';

/** `sha256(node + "#" + address)` as lower-case hex: the member's rank for this address. */
export function winnerScore(node: string, address: string): string {
  return createHash('sha256').update(`${node}#${address}`).digest('hex');
}

/** True if one of `subnets` (CIDR text) contains `address` (text), same family. */
export function canAnnounce(subnets: readonly string[], address: string): boolean {
  const a = parseAddress(address);
  return a !== undefined && announces(subnets, a);
}

function announces(subnets: readonly string[], a: Address): boolean {
  return subnets.some((cidr) => cidrContains(cidr, a));
}

/**
 * The member that should announce `address`: among live members whose subnets contain it,
 * the one with the lowest `sha256(node + "#" + address)` (hex order). `undefined` if no
 * live member can announce it or the address text is not an address. The address is used
 * as written for hashing, so pass it in canonical form (as ipam-core formats it). A member
 * that carries a `status` (a `MemberInfo`) takes part only while `alive` or `suspect`.
 */
export function winner(address: string, members: Iterable<Member & { readonly status?: MemberStatus }>): string | undefined {
  const a = parseAddress(address);
  if (!a) return undefined;
  let best: string | undefined;
  let bestScore = '';
  for (const m of members) {
    if (m.status !== undefined && m.status !== 'alive' && m.status !== 'suspect') continue;
    if (!announces(m.subnets, a)) continue;
    const score = winnerScore(m.name, address);
    // Ties only come from a name listed twice; the name order keeps the answer stable.
    if (best === undefined || score < bestScore || (score === bestScore && m.name < best)) {
      best = m.name;
      bestScore = score;
    }
  }
  return best;
}
