// The chaos soak's figures, from the faults it injected and what the ARP samplers saw.
// Pure: no I/O, so the attribution rules are tested on their own.
import type { ArpSample, Unavailability } from '../src/index.ts';

export const FAULT_KINDS = ['kill', 'freeze', 'gossip', 'partition', 'partition_api', 'link', 'api'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRecord {
  readonly index: number;
  readonly kind: FaultKind;
  /** The nodes it hit (the cut-off side of a partition). */
  readonly nodes: readonly string[];
  /** How, in a few words (hold time, link side, API mode). */
  readonly detail: string;
  /** Injected (ms since the epoch). */
  readonly atMs: number;
  /** Undone. */
  readonly undoneAtMs: number;
  /** When every watched address answered from one node again and the agents saw every member; undefined if that did not happen in time. */
  readonly settledAtMs: number | undefined;
}

export interface WatchedAddress {
  readonly address: string;
  readonly samples: number;
  readonly duplicateSamples: number;
  readonly duplicates: readonly ArpSample[];
  readonly unavailability: readonly Unavailability[];
  readonly maxGapMs: number;
}

/** The fault whose window holds `atMs`: from its injection to the next one's (the last: to the end). */
export function faultAt(faults: readonly FaultRecord[], atMs: number): FaultRecord | undefined {
  let found: FaultRecord | undefined;
  for (const f of faults) if (f.atMs <= atMs) found = f;
  return found;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export interface ChaosFigures {
  readonly metrics: Record<string, number>;
  /** Each run of duplicate samples: address, the fault, the MACs, from and to (after the fault), how many samples. */
  readonly duplicateLines: readonly string[];
  /** One line per fault. */
  readonly timeline: readonly string[];
}

/**
 * Metrics: faults per kind, samples, duplicate samples (in all and per kind of the fault
 * whose window they fall in), and per kind the p50/p95/max of the unanswered runs that
 * began in a window of that kind (`none`: before the first fault), and how long the
 * cluster took to settle after the fault was undone.
 */
export function chaosFigures(faults: readonly FaultRecord[], watched: readonly WatchedAddress[], startedAtMs: number, endedAtMs: number, nodeOfMac: (mac: string) => string): ChaosFigures {
  const metrics: Record<string, number> = {};
  const kinds = [...FAULT_KINDS, 'none'] as const;
  metrics.duration_seconds = (endedAtMs - startedAtMs) / 1000;
  metrics.faults_total = faults.length;
  for (const k of FAULT_KINDS) metrics[`faults_${k}`] = faults.filter((f) => f.kind === k).length;
  metrics.samples = watched.reduce((n, w) => n + w.samples, 0);
  metrics.duplicate_samples = watched.reduce((n, w) => n + w.duplicateSamples, 0);
  metrics.watched_addresses = watched.length;
  const runs = new Map<string, number[]>(kinds.map((k) => [k, []]));
  const dups = new Map<string, number>(kinds.map((k) => [k, 0]));
  const worst = new Map<number, number>();
  const duplicateLines: string[] = [];
  for (const w of watched) {
    for (const u of w.unavailability) {
      const f = faultAt(faults, u.fromMs);
      runs.get(f?.kind ?? 'none')!.push(u.durationMs);
      if (f) worst.set(f.index, Math.max(worst.get(f.index) ?? 0, u.durationMs));
    }
    // Consecutive duplicate samples of one address under one fault, with the same MACs, are one run.
    let run: { fault: FaultRecord | undefined; macs: string; from: number; to: number; count: number } | undefined;
    const endRun = (): void => {
      if (!run || duplicateLines.length >= 50) return;
      const f = run.fault;
      const base = f?.atMs ?? startedAtMs;
      const span = `+${Math.round(run.from - base)} to +${Math.round(run.to - base)} ms`;
      duplicateLines.push(`${w.address} ${f ? `fault #${f.index} ${f.kind} ${f.nodes.join('+')}` : 'before any fault'}: ${run.macs} from ${span} (${run.count} samples)`);
    };
    for (const d of w.duplicates) {
      const f = faultAt(faults, d.atMs);
      dups.set(f?.kind ?? 'none', dups.get(f?.kind ?? 'none')! + 1);
      const macs = d.macs.map(nodeOfMac).join(' and ');
      if (run && run.fault === f && run.macs === macs && d.atMs - run.to < 1000) {
        run.to = d.atMs;
        run.count++;
      } else {
        endRun();
        run = { fault: f, macs, from: d.atMs, to: d.atMs, count: 1 };
      }
    }
    endRun();
  }
  for (const k of kinds) {
    const r = runs.get(k)!;
    metrics[`duplicate_samples_${k}`] = dups.get(k)!;
    metrics[`unavailable_runs_${k}`] = r.length;
    metrics[`unavailability_${k}_p50_ms`] = round(percentile(r, 50));
    metrics[`unavailability_${k}_p95_ms`] = round(percentile(r, 95));
    metrics[`unavailability_${k}_max_ms`] = round(r.length ? Math.max(...r) : 0);
    if (k === 'none') continue;
    const settle = faults.filter((f) => f.kind === k && f.settledAtMs !== undefined).map((f) => f.settledAtMs! - f.undoneAtMs);
    metrics[`settle_${k}_p50_ms`] = round(percentile(settle, 50));
    metrics[`settle_${k}_max_ms`] = round(settle.length ? Math.max(...settle) : 0);
  }
  metrics.unsettled_faults = faults.filter((f) => f.settledAtMs === undefined).length;
  metrics.sampler_max_gap_ms = round(Math.max(0, ...watched.map((w) => w.maxGapMs)));
  const timeline = faults.map(
    (f) =>
      `#${f.index} +${((f.atMs - startedAtMs) / 1000).toFixed(1)} s ${f.kind} ${f.nodes.join('+')} (${f.detail}): longest unanswered run ${Math.round(worst.get(f.index) ?? 0)} ms, ${f.settledAtMs === undefined ? 'not settled' : `settled ${((f.settledAtMs - f.undoneAtMs) / 1000).toFixed(1)} s after undo`}`,
  );
  return { metrics, duplicateLines, timeline };
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** A seeded generator (mulberry32): the same seed, the same faults at the same offsets. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
