// Who may win local addresses, from this node's point of view.
//
// The guard of @purelb/election decides from SWIM and the Leases: in `swim` mode the live
// SWIM peers (fast failover); in `lease` mode this node is cut off from gossip and claims
// nothing, trusting that the peers, who can still gossip, elect among themselves. That
// trust fails in one case: when gossip is blocked everywhere (a firewall dropping port
// 7934 on every node), every node is cut off and nobody would claim. Each agent
// therefore publishes its guard mode on its own Lease. When every peer with a fresh Lease
// also reports itself cut off, no node can be electing through SWIM, so all of them
// fall back to the same election over the Lease view: the nodes with a fresh Lease that
// report `lease`. That view comes from the API server, so every node computes the same
// winner, and exactly one node claims each address.
import type { GuardDecision } from '@purelb/election';

export type GossipMode = 'swim' | 'lease' | 'fenced';

export interface PeerLease {
  readonly node: string;
  readonly fresh: boolean;
  /** The guard mode the peer last published; undefined if it published none. */
  readonly mode: GossipMode | undefined;
  /** The subnets the peer published (for the Lease-view election). */
  readonly subnets: readonly string[];
}

export interface Candidate {
  readonly name: string;
  readonly subnets: readonly string[];
}

/**
 * The candidate set for the winner function. `swimMembers` are the members as SWIM
 * sees them (name -> subnets).
 */
export function effectiveCandidates(
  self: string,
  decision: Pick<GuardDecision, 'mode' | 'candidates'>,
  swimMembers: ReadonlyMap<string, readonly string[]>,
  selfSubnets: readonly string[],
  peers: readonly PeerLease[],
): { candidates: Candidate[]; basis: 'swim' | 'lease' | 'lease-consensus' | 'fenced' } {
  if (decision.mode === 'fenced') return { candidates: [], basis: 'fenced' };
  const subnetsOf = (name: string): readonly string[] =>
    name === self ? selfSubnets : (swimMembers.get(name) ?? peers.find((p) => p.node === name)?.subnets ?? []);
  if (decision.mode === 'swim') {
    return { candidates: [...decision.candidates].sort().map((name) => ({ name, subnets: subnetsOf(name) })), basis: 'swim' };
  }
  const freshPeers = peers.filter((p) => p.fresh && p.node !== self);
  if (freshPeers.length > 0 && freshPeers.every((p) => p.mode === 'lease')) {
    const names = [self, ...freshPeers.map((p) => p.node)].sort();
    return { candidates: names.map((name) => ({ name, subnets: subnetsOf(name) })), basis: 'lease-consensus' };
  }
  return { candidates: [...decision.candidates].sort().map((name) => ({ name, subnets: subnetsOf(name) })), basis: 'lease' };
}
