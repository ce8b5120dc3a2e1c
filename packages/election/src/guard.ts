// The split-brain guard. SWIM alone removes a member fast, but a member whose gossip port
// is blocked sees every peer die and would claim everything. Each agent also renews a
// Kubernetes Lease; this pure function combines both views into the set of members this
// node may treat as live when it computes winners.
import type { MemberStatus } from './member-state.ts';

/** A member as the SWIM view reports it. */
export interface GuardSwimMember {
  readonly name: string;
  readonly status: MemberStatus;
}

/** One node's Lease as read from the API server. */
export interface GuardLease {
  /** When the holder last renewed it (ms, same clock as `now`). */
  readonly renewedAt: number;
  /** How long a renewal stays valid (ms). */
  readonly leaseDurationMs: number;
}

/** This node's own health. */
export interface GuardHealth {
  /** This node's name. */
  readonly self: string;
  /** Whether this node hears from its peers over gossip (`Membership.canGossip()`). */
  readonly canGossip: boolean;
  /** When this node last renewed its own Lease (`undefined`: never). */
  readonly leaseRenewedAt: number | undefined;
  /** This node's Lease duration (ms). */
  readonly leaseDurationMs: number;
  /** The current time (ms), on the Lease clock. */
  readonly now: number;
  /**
   * Since when SWIM conditions have held without a break: `swimSince` of the previous
   * decision (`undefined` at the first call or after a non-`swim` decision).
   */
  readonly swimSince?: number | undefined;
  /**
   * How long SWIM conditions must hold before this node claims anything after it was cut
   * off, or at start (default 0). Covers the time its `alive` takes to reach everyone, so
   * that a member coming back never claims an address a peer still holds for it. About
   * twice `isolationTimeoutMs` is plenty.
   */
  readonly holdDownMs?: number;
}

/**
 * - `swim`: SWIM's verdicts apply at once (fast failover); candidates are this node and
 *   its live SWIM peers.
 * - `lease`: this node treats itself as the faulty one; candidates are the peers with a
 *   fresh Lease, without this node, so it claims nothing another node might also claim.
 * - `fenced`: this node can neither gossip nor renew its Lease: no candidates at all, it
 *   withdraws every address.
 */
export type GuardMode = 'swim' | 'lease' | 'fenced';

export interface GuardDecision {
  readonly mode: GuardMode;
  /** The members to treat as live when computing winners. */
  readonly candidates: ReadonlySet<string>;
  /** Why, in a few words, for logs and Events. */
  readonly reason: string;
  /** Pass back as `health.swimSince` on the next call. */
  readonly swimSince: number | undefined;
}

/** True if the Lease is still within its duration at `now`. */
export function leaseFresh(lease: GuardLease | undefined, now: number): boolean {
  return lease !== undefined && now - lease.renewedAt < lease.leaseDurationMs;
}

/**
 * Decides which members this node may consider live.
 *
 * The rule: let F be the nodes holding a fresh Lease (this node among them only if its
 * own Lease is fresh) and R this node with the peers it sees live over gossip. SWIM
 * decides while this node can gossip *and* R holds a majority of F (on an exact half, the
 * half holding F's lowest name wins; an empty F means no Lease information, and SWIM
 * decides alone). Otherwise this node has been cut off: with a fresh Lease of its own it
 * follows the Lease view without itself, so it claims nothing; without one it is fenced.
 *
 * Why the majority: an isolated node sees every peer die and, if SWIM alone decided,
 * would claim every address while the others claim them too. Two disjoint groups cannot
 * both hold a majority of the same F, so the cut-off side (the isolated node, or the
 * smaller side of a partition) stands down while the larger side fails over at SWIM
 * speed. With no fresh Lease anywhere (the API server is down for everyone) SWIM decides
 * alone, so an API outage never takes addresses down; only a gossip partition during
 * such an outage is beyond the guard. The price: when one of two nodes really dies, the survivor waits for the dead
 * node's Lease to expire unless its own name is the lower one.
 */
export function guard(
  swim: Iterable<GuardSwimMember>,
  leases: ReadonlyMap<string, GuardLease>,
  health: GuardHealth,
): GuardDecision {
  const { self, now } = health;
  const ownLeaseFresh = health.leaseRenewedAt !== undefined && now - health.leaseRenewedAt < health.leaseDurationMs;
  const liveSwimPeers = new Set<string>();
  for (const m of swim) if (m.name !== self && (m.status === 'alive' || m.status === 'suspect')) liveSwimPeers.add(m.name);
  const freshPeers = new Set<string>();
  for (const [name, lease] of leases) if (name !== self && leaseFresh(lease, now)) freshPeers.add(name);

  const population = ownLeaseFresh ? [self, ...freshPeers] : [...freshPeers];
  let reached = ownLeaseFresh ? 1 : 0;
  for (const p of freshPeers) if (liveSwimPeers.has(p)) reached++;
  let majority = true;
  if (population.length > 0) {
    const lowest = population.reduce((a, b) => (b < a ? b : a));
    majority = 2 * reached > population.length || (2 * reached === population.length && (lowest === self || liveSwimPeers.has(lowest)));
  }

  if (health.canGossip && majority) {
    const swimSince = health.swimSince ?? now;
    const holdDown = health.holdDownMs ?? 0;
    if (now - swimSince >= holdDown) {
      return {
        mode: 'swim',
        candidates: new Set([self, ...liveSwimPeers]),
        reason: population.length === 0 ? 'no fresh lease anywhere; gossip decides' : `gossip reaches ${reached} of ${population.length} fresh leases`,
        swimSince,
      };
    }
    // Settling: back in contact, but not long enough for everyone to have heard so.
    return { mode: 'lease', candidates: ownLeaseFresh ? freshPeers : new Set(), reason: `settling for ${holdDown} ms after regaining contact`, swimSince };
  }
  if (!ownLeaseFresh) {
    return {
      mode: 'fenced',
      candidates: new Set(),
      reason: health.canGossip ? 'gossip reaches a minority and own lease expired' : 'cannot gossip and own lease expired',
      swimSince: undefined,
    };
  }
  return {
    mode: 'lease',
    candidates: freshPeers,
    reason: health.canGossip ? `gossip reaches only ${reached} of ${population.length} fresh leases` : 'cannot gossip while holding a fresh lease',
    swimSince: undefined,
  };
}
