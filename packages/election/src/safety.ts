// The safety rule: who may hold which local address now. One pure module, so that the
// whole argument for "never two nodes answer for one address" can be read in one place and
// tested without a cluster. The node agent only gathers the inputs and applies the result.
//
// The argument, in five steps:
// 1. A node holds local addresses only while it `mayHold`: it reaches a majority of the
//    known agents by gossip with a view that is fresh (an answered probe sent within
//    `isolationTimeoutMs`, and sent after its last stall), or, when gossip is down on every
//    node, through the same Lease view as every other node (`lease-consensus`).
// 2. It refreshes an address's kernel lifetime only while `mayHold` holds at that very
//    moment, so a node that dies, freezes or is cut off stops answering by itself at most
//    `addressLifetimeMs + kernelSlackMs` after its last fresh contact (the kernel removes
//    the address; nothing in the node has to run).
// 3. An address has one rightful holder in a view: the node that announces it, while it
//    stays a candidate able to announce it (stickiness), else the hash winner.
// 4. A node takes over from an announcer it can no longer see only once it has proof that
//    the announcer withdrew (a Lease renewal after it vanished, publishing a mode in which it
//    holds nothing, or the announcement removed), or else once `hardFenceMs` has passed
//    since it vanished: by then the announcer's kernel has dropped the address (step 2).
//    Views can disagree (a member keeps the death verdicts it reached while it was cut off
//    itself): an announcer that renews its Lease after it vanished, in a mode in which it
//    may hold, is fenced only from when that Lease lapses.
// 5. Before it adds an address the node probes the LAN (ARP probe / DAD) and adds nothing
//    while another host answers; and it claims the address at the API server first, with
//    a resourceVersion precondition, so two takers with stale caches cannot both add.
// Steps 1-4 are this module; step 5 is the agent with @purelb/linux-net.
import type { Member, MemberStatus } from './member-state.ts';
import { canAnnounce, winner } from './winner.ts';

/**
 * How a node stands:
 * - `swim`: it reaches a majority by gossip; SWIM's verdicts apply at once.
 * - `settling`: back in contact (or just started), waiting `holdDownMs` so that its `alive`
 *   reaches everyone before it claims anything.
 * - `lease`: cut off from the majority while its own Lease is fresh: it holds nothing.
 * - `lease-consensus`: gossip is down on every node with a fresh Lease, all of them have
 *   said so on their Leases for `consensusStableMs`: all elect over that same Lease view.
 * - `fenced`: cut off from the majority and its own Lease has expired: it holds nothing.
 * - `stalled`: its process stalled (a freeze, a long GC pause); it holds nothing until it
 *   has a round trip sent after the stall.
 */
export type SafetyMode = 'swim' | 'settling' | 'lease' | 'lease-consensus' | 'fenced' | 'stalled';

/** The modes in which a node holds no local address. */
export const WITHDRAWN_MODES: ReadonlySet<SafetyMode> = new Set(['settling', 'lease', 'fenced', 'stalled']);

/** True if `text` names a mode (as published on a Lease). */
export function isSafetyMode(text: string | undefined): text is SafetyMode {
  return text === 'swim' || text === 'settling' || text === 'lease' || text === 'lease-consensus' || text === 'fenced' || text === 'stalled';
}

/**
 * Modes that count as one for `SafetyLease.modeSince`: `lease` and `lease-consensus` both
 * mean "cut off from gossip". A peer moving from one to the other has not changed its
 * mind, so the stability clock must not restart (or the nodes would keep each other out
 * of consensus forever).
 */
export function modeClass(mode: SafetyMode | undefined): string {
  return mode === 'lease' || mode === 'lease-consensus' ? 'cut-off' : (mode ?? 'unknown');
}

/** The time constants of the rule; see `safetyTiming` for how they follow from the SWIM preset. */
export interface SafetyTiming {
  /** SWIM's `isolationTimeoutMs`: contact older than this is not contact. */
  readonly isolationTimeoutMs: number;
  /** Wait after regaining contact (or after start) before claiming anything. */
  readonly holdDownMs: number;
  /** Valid lifetime of a local address in the kernel (whole seconds, as ms). */
  readonly addressLifetimeMs: number;
  /** How late the kernel may remove an expired address (its lifetime check runs on whole seconds). */
  readonly kernelSlackMs: number;
  /** How long every fresh peer must have published a cut-off mode before `lease-consensus`. */
  readonly consensusStableMs: number;
}

/**
 * The longest a holder that can no longer be seen may still answer:
 * `isolationTimeoutMs + addressLifetimeMs + kernelSlackMs`. It stops refreshing at most
 * `isolationTimeoutMs` after its last fresh contact (before anyone can have declared it
 * lost), and the kernel drops the address a lifetime (plus the kernel's slack) later.
 */
export function hardFenceMs(t: SafetyTiming): number {
  return t.isolationTimeoutMs + t.addressLifetimeMs + t.kernelSlackMs;
}

/**
 * The timing for a SWIM `isolationTimeoutMs` and a kernel address lifetime (seconds):
 * hold-down = 2 x isolation (an `alive` reaches every member within that on a LAN),
 * consensus stability = max(2 s, 4 x isolation), kernel slack 1 s.
 */
export function safetyTiming(isolationTimeoutMs: number, addressLifetimeS: number, overrides: Partial<SafetyTiming> = {}): SafetyTiming {
  return {
    isolationTimeoutMs,
    holdDownMs: 2 * isolationTimeoutMs,
    addressLifetimeMs: addressLifetimeS * 1000,
    kernelSlackMs: 1000,
    consensusStableMs: Math.max(2000, 4 * isolationTimeoutMs),
    ...overrides,
  };
}

/** A SWIM member as this node sees it (this node included). */
export interface SafetyMember extends Member {
  readonly status: MemberStatus;
}

/** Another agent's Lease, as this node observed it (times on this node's clock). */
export interface SafetyLease {
  /** When this node last saw the Lease's renewTime change. */
  readonly renewedAt: number;
  readonly leaseDurationMs: number;
  /** The mode the agent published with its last renewal. */
  readonly mode: SafetyMode | undefined;
  /** Since when this node has seen the agent publish that mode, or another of its `modeClass`. */
  readonly modeSince: number;
  readonly subnets: readonly string[];
}

/** Everything the rule reads, at one instant. */
export interface SafetyInput {
  readonly self: string;
  readonly now: number;
  readonly selfSubnets: readonly string[];
  /** The SWIM view (this node may be included; it is ignored). */
  readonly members: readonly SafetyMember[];
  /** Send time of this node's latest probe that was answered (`Membership.lastContactAt()`). */
  readonly lastContactAt: number | undefined;
  /** Every other agent's Lease in the cache, fresh or not, by node name. */
  readonly leases: ReadonlyMap<string, SafetyLease>;
  /** When this node's own Lease renewal last succeeded (its send time). */
  readonly ownLeaseRenewedAt: number | undefined;
  readonly ownLeaseDurationMs: number;
  /** When this node last found itself stalled (event loop late past its threshold). */
  readonly stalledAt: number | undefined;
  /**
   * Nodes named by announcing annotations: tracked in `lostAt` like the population, so a
   * node that announces an address without being known otherwise is fenced from the first
   * time it was seen, not forever.
   */
  readonly announcers?: Iterable<string>;
  readonly timing: SafetyTiming;
}

/** What the rule remembers between calls. Start with `initialSafetyState(now)`. */
export interface SafetyState {
  /** Since when the majority conditions have held without a break. */
  readonly swimSince: number | undefined;
  /** When each known agent stopped being a live peer (or was first seen not live). */
  readonly lostAt: ReadonlyMap<string, number>;
}

export function initialSafetyState(): SafetyState {
  return { swimSince: undefined, lostAt: new Map() };
}

export interface SafetyDecision {
  readonly mode: SafetyMode;
  /** May this node hold (keep, refresh, add) local addresses at all. */
  readonly mayHold: boolean;
  /** The nodes that may win local addresses in this view, with their subnets (this node included when it may hold). */
  readonly candidates: ReadonlyMap<string, readonly string[]>;
  /** Why, in a few words, for logs, Events and status. */
  readonly reason: string;
  /** When the decision can change with time alone (re-evaluate then; Infinity: never). */
  readonly nextCheckAt: number;
  /** Pass back as `state` on the next call. */
  readonly state: SafetyState;
  /** The known agents (the majority's denominator). */
  readonly population: number;
  /** Of them, how many this node reaches (itself included). */
  readonly reached: number;
}

const isLive = (s: MemberStatus): boolean => s === 'alive' || s === 'suspect';
const leaseFresh = (l: { renewedAt: number; leaseDurationMs: number } | undefined, now: number): boolean => l !== undefined && now - l.renewedAt < l.leaseDurationMs;

/**
 * Decides how this node stands. The population is this node, every agent with a Lease in
 * the cache (fresh or not: a node cut off from the API server keeps the last list it saw,
 * so its population never shrinks while it is cut off) and every SWIM member that did not
 * leave on purpose (live or declared dead). This node
 * reaches itself and its live SWIM peers; it has a majority when it reaches more than half
 * of the population, or exactly half including the population's lowest name. Two disjoint
 * groups of nodes can never both have a majority of the same population.
 */
export function decideSafety(input: SafetyInput, state: SafetyState): SafetyDecision {
  const { self, now, timing } = input;
  const live = new Map<string, readonly string[]>();
  for (const m of input.members) if (m.name !== self && isLive(m.status)) live.set(m.name, m.subnets);
  // Members SWIM declared dead still count (they may only be cut off); members that left
  // on purpose do not, unless their Lease is still there.
  const known = input.members.filter((m) => m.status !== 'left').map((m) => m.name);
  const population = new Set<string>([self, ...input.leases.keys(), ...known]);
  population.delete('');

  // When each known agent was lost from view: kept while it stays lost, cleared when it is back.
  const lostAt = new Map<string, number>();
  for (const name of [...population, ...(input.announcers ?? [])]) {
    if (name === self || live.has(name)) continue;
    lostAt.set(name, state.lostAt.get(name) ?? now);
  }

  const reached = 1 + [...live.keys()].filter((n) => population.has(n)).length;
  const lowest = [...population].reduce((a, b) => (b < a ? b : a));
  const majority = 2 * reached > population.size || (2 * reached === population.size && (lowest === self || live.has(lowest)));
  const contactFresh = input.lastContactAt !== undefined && now - input.lastContactAt <= timing.isolationTimeoutMs;
  const canGossip = live.size === 0 || contactFresh;
  const stalled = input.stalledAt !== undefined && (input.lastContactAt === undefined || input.lastContactAt <= input.stalledAt) && live.size > 0;
  const ownLeaseFresh = input.ownLeaseRenewedAt !== undefined && now - input.ownLeaseRenewedAt < input.ownLeaseDurationMs;

  // Times at which the decision may change by themselves.
  let next = Infinity;
  const at = (t: number): void => {
    if (t > now && t < next) next = t;
  };
  if (input.lastContactAt !== undefined && live.size > 0) at(input.lastContactAt + timing.isolationTimeoutMs + 1);
  if (input.ownLeaseRenewedAt !== undefined) at(input.ownLeaseRenewedAt + input.ownLeaseDurationMs);
  for (const l of input.leases.values()) {
    at(l.renewedAt + l.leaseDurationMs);
    at(l.modeSince + timing.consensusStableMs);
  }

  const base = { population: population.size, reached };
  const none = new Map<string, readonly string[]>();
  const withdrawn = (mode: SafetyMode, reason: string, swimSince: number | undefined): SafetyDecision => ({
    mode,
    mayHold: false,
    candidates: mode === 'lease' ? leaseCandidates() : none,
    reason,
    nextCheckAt: next,
    state: { swimSince, lostAt },
    ...base,
  });
  // In `lease` mode this node holds nothing, but it still knows who may: the peers with a
  // fresh Lease (for metrics, and so that it never waits for itself).
  function leaseCandidates(): Map<string, readonly string[]> {
    const out = new Map<string, readonly string[]>();
    for (const [name, l] of input.leases) if (leaseFresh(l, now)) out.set(name, live.get(name) ?? l.subnets);
    return out;
  }

  if (stalled) return withdrawn('stalled', 'the process stalled; waiting for a round trip sent after the stall', undefined);

  if (canGossip && majority) {
    const swimSince = state.swimSince ?? now;
    if (now - swimSince < timing.holdDownMs) {
      at(swimSince + timing.holdDownMs);
      return withdrawn('settling', `in contact with ${reached} of ${population.size} agents; settling for ${timing.holdDownMs} ms`, swimSince);
    }
    const candidates = new Map<string, readonly string[]>([[self, input.selfSubnets], ...live]);
    return {
      mode: 'swim',
      mayHold: true,
      candidates,
      reason: `gossip reaches ${reached} of ${population.size} agents`,
      nextCheckAt: next,
      state: { swimSince, lostAt },
      ...base,
    };
  }

  const why = canGossip ? `gossip reaches only ${reached} of ${population.size} agents` : 'no answered probe within the isolation timeout';
  if (!ownLeaseFresh) return withdrawn('fenced', `${why}, and own Lease expired`, undefined);

  // Gossip down everywhere? Every other agent with a fresh Lease says it is cut off too,
  // and has said so long enough that a flap of one node does not make all of them switch.
  const fresh = [...input.leases].filter(([, l]) => leaseFresh(l, now));
  const allCutOff =
    fresh.length > 0 &&
    fresh.every(([, l]) => (l.mode === 'lease' || l.mode === 'lease-consensus') && now - l.modeSince >= timing.consensusStableMs);
  if (allCutOff) {
    const candidates = new Map<string, readonly string[]>([[self, input.selfSubnets]]);
    for (const [name, l] of fresh) candidates.set(name, l.subnets);
    return {
      mode: 'lease-consensus',
      mayHold: true,
      candidates,
      reason: `${why}; every agent with a fresh Lease (${fresh.length + 1}) is cut off too: electing over the Leases`,
      nextCheckAt: next,
      state: { swimSince: undefined, lostAt },
      ...base,
    };
  }
  return withdrawn('lease', `${why}, while holding a fresh Lease`, undefined);
}

/** What this node does about one local address. */
export type AddressVerdict =
  /** Hold it: keep and refresh it, or (absent) probe, claim and add it. */
  | { readonly action: 'hold'; readonly holder: string }
  /** Do not hold it (withdraw it if present). `holder`: who should, in this view. */
  | { readonly action: 'release'; readonly holder: string | undefined }
  /** This node should hold it, but must first wait: for `until` (a time), or for the announcer to hand over. */
  | { readonly action: 'wait'; readonly holder: string; readonly until: number | undefined; readonly reason: string };

/**
 * Decides about one local address. `announcedBy` is the node the Service's announcing
 * annotation names (undefined: nobody announces it).
 *
 * The holder is the announcer while it is a candidate able to announce the address
 * (stickiness: a node that comes back does not pull addresses back to itself), else the
 * lowest `sha256(node#address)` among the candidates that can announce it.
 *
 * `selects`, when given, narrows the candidates for this address to the nodes it accepts
 * (a ServiceGroup's node selector): every node must pass the same answer for the same
 * node, or their winners differ. A live announcer it refuses is waited for like one whose
 * subnets changed: it withdraws by itself and then removes its announcement.
 */
export function addressVerdict(
  decision: SafetyDecision,
  input: Pick<SafetyInput, 'self' | 'now' | 'leases' | 'timing'>,
  address: string,
  announcedBy: string | undefined,
  selects?: (node: string) => boolean,
): AddressVerdict {
  const { self, now } = input;
  const eligible = (name: string): boolean => {
    const subnets = decision.candidates.get(name);
    return subnets !== undefined && canAnnounce(subnets, address) && (selects === undefined || selects(name));
  };
  let holder: string | undefined;
  if (announcedBy !== undefined && eligible(announcedBy)) holder = announcedBy;
  else {
    const candidates = [...decision.candidates].filter(([name]) => selects === undefined || selects(name));
    holder = winner(address, candidates.map(([name, subnets]) => ({ name, subnets })));
  }
  if (!decision.mayHold || holder !== self) return { action: 'release', holder };
  if (announcedBy === undefined || announcedBy === self) return { action: 'hold', holder };
  // Another node announces it and is not eligible in this view.
  if (decision.candidates.has(announcedBy)) {
    // It is live but cannot announce this address any more (its subnets changed, or
    // `selects` refuses it): it withdraws and removes its announcement by itself.
    return { action: 'wait', holder, until: undefined, reason: `${announcedBy} is live and still announces it` };
  }
  // Not passed in `announcers` and unknown: fence from now (the caller should pass it).
  const lost = decision.state.lostAt.get(announcedBy) ?? now;
  const l = input.leases.get(announcedBy);
  if (l && l.renewedAt > lost && l.mode !== undefined && WITHDRAWN_MODES.has(l.mode)) return { action: 'hold', holder };
  const fence = hardFenceMs(input.timing);
  let until = lost + fence;
  // It renewed its Lease after we lost it, in a mode in which it may hold: it is alive and
  // in contact, and only our view lost it (a member keeps the verdicts it reached while it
  // was cut off itself, until a full-state exchange). Its address may still answer: fence
  // from when its Lease lapses (it renews well within its duration while it runs).
  if (l && l.renewedAt > lost) until = Math.max(until, l.renewedAt + l.leaseDurationMs + fence);
  if (now >= until) return { action: 'hold', holder };
  return { action: 'wait', holder, until, reason: `${announcedBy} was lost ${now - lost} ms ago and has not shown it withdrew; fencing until its address has expired` };
}
