// The per-address election: every member computes the same answer from the same member
// set, with no coordination, and an address only moves when its winner leaves the set.
import { createHash } from 'node:crypto';
import { parseAddress, parseSubnet, type Subnet } from '@purelb/ipam-core';
import type { MemberStatus } from './member-state.ts';

/** What `winner` needs to know about a member. */
export interface WinnerCandidate {
  readonly name: string;
  /** CIDRs the member can announce on; host bits are ignored. Unparseable entries never match. */
  readonly subnets: readonly string[];
  /** If given, only `alive` and `suspect` members take part. */
  readonly status?: MemberStatus;
}

/** `sha256(node + "#" + address)` as lower-case hex: the member's rank for this address. */
export function winnerScore(node: string, address: string): string {
  return createHash('sha256').update(`${node}#${address}`).digest('hex');
}

const subnetCache = new Map<string, Subnet | null>();

function subnetOf(text: string): Subnet | undefined {
  let s = subnetCache.get(text);
  if (s === undefined) {
    s = parseSubnet(text) ?? null;
    // Bounded: subnet texts are configuration, but a hostile peer could send many.
    if (subnetCache.size >= 4096) subnetCache.clear();
    subnetCache.set(text, s);
  }
  return s ?? undefined;
}

/** True if one of `subnets` contains `address` (text), same family. */
export function canAnnounce(subnets: readonly string[], address: string): boolean {
  const a = parseAddress(address);
  if (!a) return false;
  return subnets.some((t) => {
    const s = subnetOf(t);
    if (!s || s.family !== a.family) return false;
    const bits = s.family === 'IPv4' ? 32 : 128;
    const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - s.prefixLength)) - 1n);
    return (a.value & mask) === s.network;
  });
}

/**
 * The member that should announce `address`: among live members whose subnets contain it,
 * the one with the lowest `sha256(node + "#" + address)` (hex order). `undefined` if no
 * live member can announce it or the address text is not an address. The address is used
 * as written for hashing, so pass it in canonical form (as ipam-core formats it).
 */
export function winner(address: string, members: Iterable<WinnerCandidate>): string | undefined {
  const a = parseAddress(address);
  if (!a) return undefined;
  let best: string | undefined;
  let bestScore = '';
  for (const m of members) {
    if (m.status !== undefined && m.status !== 'alive' && m.status !== 'suspect') continue;
    if (!canAnnounce(m.subnets, address)) continue;
    const score = winnerScore(m.name, address);
    // Ties only come from a name listed twice; the name order keeps the answer stable.
    if (best === undefined || score < bestScore || (score === bestScore && m.name < best)) {
      best = m.name;
      bestScore = score;
    }
  }
  return best;
}
