// Shared pieces for benchmark suites: repeated runs, medians and percentiles, the
// machine description. A suite reports; it never fails the test run.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, loadavg, release } from 'node:os';

/** What a suite module exports (as its default export). */
export interface BenchSuite {
  /** The name used on the command line and in bench-results/<suite>.json. */
  readonly suite: string;
  /** Targets to print beside the figures: metric -> [comparison, bound]. */
  readonly targets?: Readonly<Record<string, readonly ['<=' | '>=', number]>>;
  /** Runs the measurements; returns metric -> number (already a median/percentile). */
  run(): Promise<BenchOutput>;
}

export interface BenchOutput {
  readonly metrics: Record<string, number>;
  /** Extra facts about the run (sample counts, sizes), stored under env. */
  readonly notes?: Record<string, string | number>;
  /** Raw samples for CSV output: metric -> values. */
  readonly samples?: Record<string, number[]>;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Runs fn `runs` times (after `warmup` unrecorded runs) and returns each run's result. */
export async function repeat<T>(runs: number, fn: (i: number) => T | Promise<T>, warmup = 0): Promise<T[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const out: T[] = [];
  for (let i = 0; i < runs; i++) out.push(await fn(i));
  return out;
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Forces a full GC if the process runs with --expose-gc. */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

export function machine(): Record<string, string | number> {
  const c = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${release()}`,
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    loadavg_1m: Number(loadavg()[0]!.toFixed(2)),
    date: new Date().toISOString(),
  };
}

/** A process's resident memory (VmRSS), MB. */
export function vmRssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** CPU time a process has used (user + system), seconds, from /proc/<pid>/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** What else keeps the machine busy: load average and the busiest processes (for notes). */
export function machineLoad(): string {
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  let top = '';
  try {
    top = execFileSync('ps', ['-eo', 'pcpu=,comm=', '--sort=-pcpu'], { encoding: 'utf8', timeout: 5000 }).split('\n').slice(0, 6).map((l) => l.trim().replace(/\s+/, '% ')).join('; ');
  } catch {
    top = 'ps unavailable';
  }
  return `load ${load}; busiest: ${top}`;
}

/** The totals each part of the bad-input suite counts. */
export interface BadInputTotals {
  readonly inputs_tried: number;
  readonly daemon_crashes: number;
  readonly healthy_addresses_changed: number;
  readonly node_addresses_touched: number;
  readonly silent_inputs: number;
}

/** The suites that make up the bad-input totals, each writing its own part. */
export const BAD_INPUT_PARTS = ['allocator', 'lbnodeagent'] as const;
export type BadInputPart = (typeof BAD_INPUT_PARTS)[number];
const BAD_INPUT_METRICS = ['inputs_tried', 'daemon_crashes', 'healthy_addresses_changed', 'node_addresses_touched', 'silent_inputs'] as const;

export interface BadInputResults {
  readonly suite: 'badinput';
  readonly metrics: BadInputTotals;
  readonly env: Record<string, string | number>;
}

/**
 * bench-results/badinput.json with one part replaced: the part's totals and notes go to
 * env as `<part>_<name>`, the machine description is the latest writer's, and metrics is
 * the sum of every part present, so the allocator's suite and the node agent's never
 * overwrite each other. A file written before there were parts is the allocator's.
 */
export function mergeBadInputResults(existing: unknown, part: BadInputPart, totals: BadInputTotals, notes: Record<string, string | number>, machineEnv: Record<string, string | number>): BadInputResults {
  const prev = typeof existing === 'object' && existing !== null && (existing as { suite?: unknown }).suite === 'badinput' ? (existing as Partial<BadInputResults>) : undefined;
  const env: Record<string, string | number> = { ...(prev?.env ?? {}) };
  if (prev && !BAD_INPUT_PARTS.some((p) => `${p}_inputs_tried` in env)) {
    for (const m of BAD_INPUT_METRICS) env[`allocator_${m}`] = Number(prev.metrics?.[m] ?? 0);
    for (const [k, v] of Object.entries(env)) {
      if (k.startsWith('rows_') || k === 'restarts') {
        env[`allocator_${k}`] = v;
        delete env[k];
      }
    }
  }
  for (const k of Object.keys(env)) if (k.startsWith(`${part}_`)) delete env[k];
  for (const m of BAD_INPUT_METRICS) env[`${part}_${m}`] = totals[m];
  for (const [k, v] of Object.entries(notes)) env[`${part}_${k}`] = v;
  if (machineEnv.date !== undefined) env[`${part}_date`] = machineEnv.date;
  Object.assign(env, machineEnv);
  const metrics = Object.fromEntries(BAD_INPUT_METRICS.map((m) => [m, BAD_INPUT_PARTS.reduce((sum, p) => sum + (typeof env[`${p}_${m}`] === 'number' ? (env[`${p}_${m}`] as number) : 0), 0)])) as unknown as BadInputTotals;
  return { suite: 'badinput', metrics, env };
}

/** Read-modify-write of one part of bench-results/badinput.json (see mergeBadInputResults). */
export function recordBadInputPart(file: string, part: BadInputPart, totals: BadInputTotals, notes: Record<string, string | number>): BadInputResults {
  let existing: unknown;
  if (existsSync(file)) {
    try {
      existing = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      existing = undefined;
    }
  }
  const merged = mergeBadInputResults(existing, part, totals, notes, machine());
  writeFileSync(file, JSON.stringify(merged, null, 2) + '\n');
  return merged;
}

/**
 * The node agent's timing targets, shared by its suite in the process lab (lbnodeagent)
 * and on real nodes (cluster), so the two stay comparable.
 */
export const AGENT_TIMING_TARGETS = {
  create_to_address_on_nic_p95_ms: ['<=', 150],
  delete_to_withdrawn_everywhere_p95_ms: ['<=', 150],
  create_to_first_http_answer_p95_ms: ['<=', 300],
  node_lost_to_answer_again_p95_ms: ['<=', 1000],
  agent_killed_to_answer_again_p95_ms: ['<=', 3000],
  duplicate_answer_samples: ['<=', 0],
} as const satisfies Record<string, readonly ['<=' | '>=', number]>;
