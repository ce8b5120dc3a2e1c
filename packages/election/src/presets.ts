// Named timing presets. `lan-fast` is the default: it is tuned so a killed member is
// declared dead by every survivor in well under 700 ms on a LAN, where memberlist's LAN
// defaults take several seconds.
import { ElectionError, ElectionErrorCode } from './errors.ts';

/** Every knob of the protocol. All durations are milliseconds. */
export interface SwimConfig {
  /**
   * `P`: one probe per interval, to the next member of a shuffled round-robin list. Each
   * member is probed by each other member once every `n - 1` intervals, so a dead member
   * is first probed after about `P` whatever the cluster size. Stretched by the local
   * health multiplier (`P * (score + 1)`).
   */
  readonly probeIntervalMs: number;
  /**
   * `T`: how long a direct ping waits for its ack before `indirectChecks` members are
   * asked to probe. Should exceed the network's round trip plus a scheduling hiccup;
   * `2 * T < P` leaves room for the relays' nacks. Stretched like `P`.
   */
  readonly probeTimeoutMs: number;
  /** `k`: members asked to ping the target on our behalf when the direct ping fails. */
  readonly indirectChecks: number;
  /**
   * Suspicion minimum = `suspicionMult * max(1, log10(n)) * P`: how long a suspect has to
   * refute once enough members have confirmed the suspicion.
   */
  readonly suspicionMult: number;
  /** Suspicion maximum = `suspicionMaxTimeoutMult * minimum`: the timeout while nobody has confirmed. */
  readonly suspicionMaxTimeoutMult: number;
  /**
   * Lifeguard's `K`: independent confirmations that bring the suspicion timeout from its
   * maximum down to its minimum, following `max - (max - min) * log(c + 1) / log(K + 1)`.
   * Capped at `n - 2`. memberlist derives it as `suspicionMult - 2`.
   */
  readonly suspicionConfirmations: number;
  /** Gossip sends = `retransmitMult * ceil(log10(n + 1))` per message. */
  readonly retransmitMult: number;
  /** How often queued gossip is sent to `gossipNodes` random members (only when something is queued). */
  readonly gossipIntervalMs: number;
  /** Fan-out of each gossip round. */
  readonly gossipNodes: number;
  /**
   * A member declared dead still receives gossip for this long, so that, if it was only
   * cut off, it learns it was declared dead and refutes (this is how partitions heal).
   */
  readonly gossipToTheDeadMs: number;
  /**
   * Base interval of the TCP full-state exchange with one random member; scaled with
   * cluster size as `base * (ceil(log2(n) - 5) + 1)` above 32 members. A failed member that
   * is still remembered is also tried at this interval (reconnect).
   */
  readonly pushPullIntervalMs: number;
  /**
   * A member declared dead less than `gossipToTheDeadMs` ago is offered a full-state
   * exchange about this often (one such member per round, jittered x0.5-1.5), so a member
   * that was only cut off (a link flap, a blocked port) is back in the membership within
   * about this long of the cut healing, both sides taking part. Gossip to the dead alone
   * does not do it once the news of the death has been sent out (nothing is queued any
   * more). After `gossipToTheDeadMs`, such members are tried at `pushPullIntervalMs`
   * only. 0 turns these rounds off.
   */
  readonly reconnectIntervalMs: number;
  /** Lifeguard's local health: the most the probe interval and timeout are stretched (score 0..max-1). */
  readonly awarenessMaxMultiplier: number;
  /** How long a dead or departed member is remembered (to reject stale `alive` gossip and to reconnect). */
  readonly deadReclaimMs: number;
  /**
   * `canGossip()` turns false when no probe of ours has been answered (directly or through
   * a relay) for this long while live peers exist. Must be shorter than the fastest
   * removal by the others (`P + suspicion minimum`), so an isolated member withdraws
   * before anyone takes over from it.
   */
  readonly isolationTimeoutMs: number;
  /** Largest UDP payload we build (before sealing). Keep under the path MTU. */
  readonly maxPacketBytes: number;
  /** Time limit of one TCP full-state exchange. */
  readonly streamTimeoutMs: number;
}

/** The presets by name. */
export const PRESETS = {
  /**
   * The default: sub-second failure detection on a LAN. Small sealed probes every 80 ms
   * (about 1.7 kB/s per member), suspicion of 140 ms (confirmed) to 420 ms (unconfirmed)
   * in clusters of up to 10 members, x2 at 100 members, x3 at 1,000, and fast gossip.
   */
  'lan-fast': {
    probeIntervalMs: 80,
    probeTimeoutMs: 32,
    indirectChecks: 3,
    suspicionMult: 1.75,
    suspicionMaxTimeoutMult: 3,
    suspicionConfirmations: 2,
    retransmitMult: 4,
    gossipIntervalMs: 20,
    gossipNodes: 3,
    gossipToTheDeadMs: 30_000,
    pushPullIntervalMs: 30_000,
    reconnectIntervalMs: 1_000,
    awarenessMaxMultiplier: 8,
    deadReclaimMs: 60_000,
    isolationTimeoutMs: 200,
    maxPacketBytes: 1_300,
    streamTimeoutMs: 5_000,
  },
  /** memberlist's LAN defaults: 1 s probes, 500 ms probe timeout, suspicion of 4 s to 24 s. */
  lan: {
    probeIntervalMs: 1_000,
    probeTimeoutMs: 500,
    indirectChecks: 3,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 6,
    suspicionConfirmations: 2,
    retransmitMult: 4,
    gossipIntervalMs: 200,
    gossipNodes: 3,
    gossipToTheDeadMs: 30_000,
    pushPullIntervalMs: 30_000,
    reconnectIntervalMs: 5_000,
    awarenessMaxMultiplier: 8,
    deadReclaimMs: 120_000,
    isolationTimeoutMs: 2_500,
    maxPacketBytes: 1_300,
    streamTimeoutMs: 10_000,
  },
  /** memberlist's WAN defaults: 5 s probes, 3 s probe timeout, suspicion of 30 s and more. */
  wan: {
    probeIntervalMs: 5_000,
    probeTimeoutMs: 3_000,
    indirectChecks: 3,
    suspicionMult: 6,
    suspicionMaxTimeoutMult: 6,
    suspicionConfirmations: 4,
    retransmitMult: 4,
    gossipIntervalMs: 500,
    gossipNodes: 4,
    gossipToTheDeadMs: 60_000,
    pushPullIntervalMs: 60_000,
    reconnectIntervalMs: 15_000,
    awarenessMaxMultiplier: 8,
    deadReclaimMs: 300_000,
    isolationTimeoutMs: 12_000,
    maxPacketBytes: 1_300,
    streamTimeoutMs: 30_000,
  },
} as const satisfies Record<string, SwimConfig>;

/** A preset name. */
export type PresetName = keyof typeof PRESETS;

/** The preset used when none is named. */
export const DEFAULT_PRESET: PresetName = 'lan-fast';

/** What a caller passes: a preset name and/or field overrides. */
export interface ConfigInput extends Partial<SwimConfig> {
  readonly preset?: PresetName;
}

const BOUNDS: Record<keyof SwimConfig, readonly [number, number, 'int' | 'num']> = {
  probeIntervalMs: [1, 600_000, 'num'],
  probeTimeoutMs: [1, 600_000, 'num'],
  indirectChecks: [0, 32, 'int'],
  suspicionMult: [0.1, 100, 'num'],
  suspicionMaxTimeoutMult: [1, 100, 'num'],
  suspicionConfirmations: [0, 64, 'int'],
  retransmitMult: [1, 100, 'int'],
  gossipIntervalMs: [1, 600_000, 'num'],
  gossipNodes: [1, 64, 'int'],
  gossipToTheDeadMs: [0, 86_400_000, 'num'],
  pushPullIntervalMs: [0, 86_400_000, 'num'],
  reconnectIntervalMs: [0, 86_400_000, 'num'],
  awarenessMaxMultiplier: [1, 64, 'int'],
  deadReclaimMs: [0, 86_400_000, 'num'],
  isolationTimeoutMs: [1, 86_400_000, 'num'],
  maxPacketBytes: [256, 65_000, 'int'],
  streamTimeoutMs: [1, 600_000, 'num'],
};

/**
 * A preset (default `lan-fast`) with the given fields overridden, validated. Throws
 * `ELECTION_INVALID_CONFIG` naming the field. `pushPullIntervalMs: 0` turns periodic
 * full syncs off (joins still do one).
 */
export function resolveConfig(input: ConfigInput = {}): SwimConfig {
  const presetName = input.preset ?? DEFAULT_PRESET;
  const preset: SwimConfig | undefined = (PRESETS as Record<string, SwimConfig>)[presetName];
  if (!preset) {
    throw new ElectionError(ElectionErrorCode.InvalidConfig, `config.preset: unknown preset "${String(presetName)}" (known: ${Object.keys(PRESETS).join(', ')})`, { field: 'config.preset' });
  }
  const out: Record<string, number> = { ...preset };
  for (const [key, [lo, hi, kind]] of Object.entries(BOUNDS)) {
    const v = (input as Record<string, unknown>)[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (kind === 'int' && !Number.isInteger(v))) {
      throw new ElectionError(ElectionErrorCode.InvalidConfig, `config.${key}: ${JSON.stringify(v)} is not ${kind === 'int' ? 'an integer' : 'a number'} in [${lo}, ${hi}]`, { field: `config.${key}` });
    }
    out[key] = v;
  }
  const c = out as unknown as SwimConfig;
  if (c.probeTimeoutMs >= c.probeIntervalMs) {
    throw new ElectionError(ElectionErrorCode.InvalidConfig, `config.probeTimeoutMs: ${c.probeTimeoutMs} must be below config.probeIntervalMs (${c.probeIntervalMs})`, { field: 'config.probeTimeoutMs' });
  }
  return c;
}
