// Every timing rule of the protocol as a pure function, so the numbers the presets
// produce can be read off a table and tested without running a cluster.

/**
 * The size factor used for suspicion timeouts: `max(1, log10(max(1, n)))`. A cluster of up
 * to 10 members gets factor 1; 100 gets 2; 1,000 gets 3. The floor of 1 keeps a small
 * cluster from shrinking its timeout below one `suspicionMult` of probe intervals.
 */
export function nodeScale(members: number): number {
  return Math.max(1, Math.log10(Math.max(1, members)));
}

/**
 * The shortest suspicion timeout (ms): `suspicionMult * nodeScale(n) * probeInterval`. A
 * suspect whose suspicion has been confirmed by enough independent members is declared
 * dead after this long.
 */
export function suspicionMinMs(suspicionMult: number, members: number, probeIntervalMs: number): number {
  return suspicionMult * nodeScale(members) * probeIntervalMs;
}

/** The longest suspicion timeout (ms): `suspicionMaxTimeoutMult * suspicionMinMs`, used while nobody confirms. */
export function suspicionMaxMs(suspicionMaxTimeoutMult: number, minMs: number): number {
  return suspicionMaxTimeoutMult * minMs;
}

/**
 * How many independent confirmations a suspicion waits for before it runs at its minimum:
 * the configured number, but no more than the `n - 2` members that could confirm (neither
 * the suspect nor the first accuser), and never negative.
 */
export function expectedConfirmations(configured: number, members: number): number {
  return Math.max(0, Math.min(configured, members - 2));
}

/**
 * Lifeguard's shrinking suspicion timeout (ms) after `confirmations` independent
 * confirmations out of `expected`:
 * `max(min, max - (max - min) * log(c + 1) / log(k + 1))`. With no confirmation it is
 * `max`; with `k` of them it is `min`. With `k = 0` it is `min` from the start.
 */
export function suspicionTimeoutMs(minMs: number, maxMs: number, confirmations: number, expected: number): number {
  if (expected <= 0 || maxMs <= minMs) return minMs;
  const c = Math.min(Math.max(0, confirmations), expected);
  const frac = Math.log(c + 1) / Math.log(expected + 1);
  return Math.max(minMs, Math.floor(maxMs - frac * (maxMs - minMs)));
}

/**
 * How many times one piece of gossip is sent before it leaves the queue:
 * `retransmitMult * ceil(log10(n + 1))`. Enough sends for an infection-style broadcast to
 * reach every member with high probability while the cost grows only with `log n`.
 */
export function retransmitLimit(retransmitMult: number, members: number): number {
  return retransmitMult * Math.ceil(Math.log10(Math.max(0, members) + 1));
}

/**
 * Lifeguard's local health multiplier: a member that misses acks and nacks (its own event
 * loop or network is slow) stretches its probe interval and timeout by `score + 1`, so a
 * slow member slows itself down instead of accusing healthy peers. `score` is clamped to
 * `[0, maxMultiplier - 1]`.
 */
export function awarenessScale(durationMs: number, score: number, maxMultiplier: number): number {
  const s = Math.min(Math.max(0, score), Math.max(0, maxMultiplier - 1));
  return durationMs * (s + 1);
}

/** Clamps a health score after a change, as `awarenessScale` would read it. */
export function applyAwarenessDelta(score: number, delta: number, maxMultiplier: number): number {
  return Math.min(Math.max(0, score + delta), Math.max(0, maxMultiplier - 1));
}

/**
 * The full-state sync interval (ms) for a cluster of `n`: the base interval up to 32
 * members, then one more multiple for every doubling beyond 32
 * (`base * (ceil(log2(n) - log2(32)) + 1)`), so the TCP traffic of full syncs, which grows
 * with `n` per sync, stays near flat per member.
 */
export function pushPullIntervalMs(baseMs: number, members: number): number {
  const threshold = 32;
  if (members <= threshold) return baseMs;
  const multiplier = Math.ceil(Math.log2(members) - Math.log2(threshold)) + 1;
  return baseMs * multiplier;
}

/**
 * When a relay asked to probe on someone's behalf gives up and sends a nack:
 * `nackRatio * probeTimeout` after it sent its own ping, so the nack reaches the origin
 * before the origin's probe interval ends.
 */
export function indirectNackDelayMs(probeTimeoutMs: number, nackRatio = 0.8): number {
  return probeTimeoutMs * nackRatio;
}

/**
 * Expected worst-case time (ms) from a member's death to its removal by a member that
 * probes it at once and gets no confirmation: probe interval (the probe round) + the
 * maximum suspicion timeout. The first probe of a dead member comes, in a cluster of `n`,
 * after about `probeInterval` on average (each of the `n - 1` others probes it once every
 * `n - 1` rounds), so a detection takes `~probeInterval` more than this.
 */
export function detectionBoundMs(probeIntervalMs: number, suspicionMaxTimeoutMs: number): number {
  return probeIntervalMs + suspicionMaxTimeoutMs;
}
