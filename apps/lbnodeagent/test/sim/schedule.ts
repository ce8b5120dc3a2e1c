// Random fault schedules for the simulation, from one seed: a cluster (nodes, Services,
// loss, ...) and a run of fault schedules, each from a healthy cluster to healed and settled.
import { seededRandom } from '@purelb/election/testing';
import { type SimNode, type Violation, World } from './world.ts';

export type FaultKind = 'kill' | 'graceful-restart' | 'freeze' | 'gossip-block' | 'one-way' | 'partition' | 'api-cut' | 'link-flap' | 'gossip-outage' | 'api-outage';

export interface Fault {
  readonly kind: FaultKind;
  /** Start and end, ms from the schedule's start. */
  readonly start: number;
  readonly end: number;
  /** Node indexes: the node (kill, freeze, ...), group A (partition), or from and to (one-way). */
  readonly nodes: readonly number[];
  /** partition: which side also loses its API path. */
  readonly apiCut?: 'none' | 'a' | 'b';
  /** link-flap: the whole NIC (gossip and API path too), not only the LAN link's frames. */
  readonly wholeNic?: boolean;
}

export interface FaultSchedule {
  /** How long faults may last (ms); every fault has ended by then. */
  readonly windowMs: number;
  readonly faults: readonly Fault[];
}

export interface ClusterPlan {
  readonly seed: number;
  readonly nodes: number;
  readonly services: readonly { readonly name: string; readonly address: string; readonly shared: boolean }[];
  readonly loss: number;
  readonly sendgarp: boolean;
  readonly watchLagMs: number;
  /** Probability that one ARP frame is lost on the LAN. */
  readonly lanLoss: number;
  /** When the first schedule starts: undefined once the cluster has settled, else this many ms after boot (faults during startup). */
  readonly firstAtMs: number | undefined;
  readonly schedules: readonly FaultSchedule[];
}

/** Settled: every address held by exactly one node for this long (then the next schedule starts). */
export const STABLE_MS = 500;
/** After a cluster's last schedule: settled for this long. */
export const FINAL_STABLE_MS = 2_000;
/** The longest a cluster may take to settle after the last fault ends. */
export const MAX_SETTLE_MS = 60_000;

function pick<T>(r: () => number, weighted: readonly (readonly [T, number])[]): T {
  const total = weighted.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [v, w] of weighted) if ((x -= w) < 0) return v;
  return weighted[weighted.length - 1]![0];
}

const between = (r: () => number, lo: number, hi: number): number => Math.round(lo + r() * (hi - lo));

/**
 * The cluster and its fault schedules for `seed`. `arpLoss`: ARP frames on the LAN are lost
 * at the drawn rate (0, 2% or 30% per frame); otherwise a probe always hears a holder.
 */
export function planCluster(seed: number, options: { readonly arpLoss?: boolean } = {}): ClusterPlan {
  const r = seededRandom(seed * 40_503 + 7);
  const nodes = pick(r, [
    [3, 65],
    [4, 22],
    [5, 13],
  ]);
  // 5 to 20 Services, more often few (each agent pass costs in proportion).
  const count = 5 + Math.floor(16 * r() * r());
  const services: { name: string; address: string; shared: boolean }[] = [];
  for (let i = 0; i < count; i++) services.push({ name: `svc-${i}`, address: `192.0.2.${100 + i}`, shared: false });
  // Sometimes a Service shares its address with another (allow-shared-ip).
  if (r() < 0.3) {
    const pairs = between(r, 1, 2);
    for (let p = 0; p < pairs; p++) {
      const i = Math.floor(r() * count);
      services[i]!.shared = true;
      services.push({ name: `shared-${p}`, address: services[i]!.address, shared: true });
    }
  }
  const loss = pick(r, [
    [0, 60],
    [0.01, 25],
    [0.05, 15],
  ]);
  const sendgarp = r() < 0.5;
  const watchLagMs = pick(r, [
    [50, 60],
    [300, 30],
    [1500, 10],
  ]);
  const lanLoss = pick(r, [
    [0, 80],
    [0.02, 15],
    [0.3, 5],
  ]);
  const firstAtMs = r() < 0.25 ? between(r, 0, 2500) : undefined;
  const n = between(r, 1, 16);
  const schedules: FaultSchedule[] = [];
  for (let i = 0; i < n; i++) schedules.push(planSchedule(r, nodes));
  return { seed, nodes, services, loss, sendgarp, watchLagMs, lanLoss: options.arpLoss ? lanLoss : 0, firstAtMs, schedules };
}

function planSchedule(r: () => number, nodes: number): FaultSchedule {
  // Mostly short windows (the races are around detection, the fence and lifetimes: 0.2-3 s),
  // some long enough for Leases to expire (10 s) and for lease-consensus.
  const w = r();
  const windowMs = w < 0.75 ? between(r, 1_000, 3_000) : w < 0.92 ? between(r, 3_000, 7_000) : between(r, 10_000, 16_000);
  const k = pick(r, [
    [1, 50],
    [2, 35],
    [3, 15],
  ]);
  const faults: Fault[] = [];
  for (let i = 0; i < k; i++) {
    const kind = pick<FaultKind>(r, [
      ['kill', 18],
      ['graceful-restart', 7],
      ['freeze', 18],
      ['gossip-block', 13],
      ['one-way', 5],
      ['partition', 13],
      ['api-cut', 13],
      ['link-flap', 13],
      ['gossip-outage', 4],
      ['api-outage', 4],
    ]);
    const start = between(r, 0, windowMs * 0.8);
    const node = Math.floor(r() * nodes);
    const [lo, hi] = {
      kill: [200, 6_000],
      'graceful-restart': [200, 4_000],
      freeze: [100, 5_000],
      'gossip-block': [100, 8_000],
      'one-way': [200, 8_000],
      partition: [200, 12_000],
      'api-cut': [200, 15_000],
      'link-flap': [50, 3_000],
      'gossip-outage': [500, 12_000],
      'api-outage': [500, 15_000],
    }[kind];
    const end = Math.min(windowMs, start + between(r, lo!, hi!));
    if (kind === 'partition') {
      const a: number[] = [];
      const order = Array.from({ length: nodes }, (_, j) => j);
      for (let j = order.length - 1; j > 0; j--) {
        const x = Math.floor(r() * (j + 1));
        [order[j], order[x]] = [order[x]!, order[j]!];
      }
      const size = between(r, 1, nodes - 1);
      for (let j = 0; j < size; j++) a.push(order[j]!);
      const apiCut = pick<'none' | 'a' | 'b'>(r, [
        ['none', 40],
        ['a', 30],
        ['b', 30],
      ]);
      faults.push({ kind, start, end, nodes: a.sort(), apiCut });
    } else if (kind === 'one-way') {
      const to = (node + 1 + Math.floor(r() * (nodes - 1))) % nodes;
      faults.push({ kind, start, end, nodes: [node, to] });
    } else if (kind === 'link-flap') faults.push({ kind, start, end, nodes: [node], wholeNic: r() < 0.4 });
    else faults.push({ kind, start, end, nodes: [node] });
  }
  faults.sort((x, y) => x.start - y.start);
  return { windowMs, faults };
}

export function describeFault(f: Fault, names: (i: number) => string): string {
  const span = `${(f.start / 1000).toFixed(3)}-${(f.end / 1000).toFixed(3)} s`;
  const who = f.nodes.map(names).join(',');
  if (f.kind === 'partition') return `${span} partition {${who}} | rest${f.apiCut === 'a' ? ', {' + who + '} without API' : f.apiCut === 'b' ? ', rest without API' : ''}`;
  if (f.kind === 'link-flap') return `${span} link-flap ${who}${f.wholeNic ? ' (whole NIC: gossip and API too)' : ''}`;
  if (f.kind === 'kill') return `${span} kill ${who}, restart at the end`;
  if (f.kind === 'graceful-restart') return `${span} SIGTERM ${who}, restart at the end (or when it has exited)`;
  if (f.kind === 'gossip-outage') return `${span} gossip port blocked on every node`;
  if (f.kind === 'api-outage') return `${span} API server unreachable from every node`;
  if (f.kind === 'one-way') return `${span} gossip ${names(f.nodes[0]!)} -> ${names(f.nodes[1]!)} dropped`;
  return `${span} ${f.kind} ${who}`;
}

export function describePlan(p: ClusterPlan): string {
  const name = (i: number): string => `node-${i + 1}`;
  const lines = [
    `seed ${p.seed}: ${p.nodes} nodes, ${p.services.length} Services on ${new Set(p.services.map((s) => s.address)).size} addresses, gossip loss ${p.loss}, sendgarp ${p.sendgarp}, watch lag up to ${p.watchLagMs} ms, ARP frame loss ${p.lanLoss}${p.firstAtMs !== undefined ? `, first faults ${p.firstAtMs} ms after boot` : ''}`,
  ];
  p.schedules.forEach((s, i) => {
    lines.push(`  schedule ${i + 1} (window ${(s.windowMs / 1000).toFixed(1)} s):`);
    for (const f of s.faults) lines.push(`    ${describeFault(f, name)}`);
  });
  return lines.join('\n');
}

/** Starts a fault at world time `t0 + f.start` and ends it at `t0 + f.end`. */
function applyFault(w: World, t0: number, f: Fault): void {
  const node = (i: number): SimNode => w.nodes[i]!;
  const n = node(f.nodes[0]!);
  let undo: (() => void)[] = [];
  w.at(t0 + f.start, () => {
    switch (f.kind) {
      case 'kill':
        w.kill(n);
        undo = [() => w.restart(n)];
        break;
      case 'graceful-restart':
        w.stopGracefully(n);
        undo = [() => w.restart(n)];
        break;
      case 'one-way':
        undo = [w.blockOneWay(n, node(f.nodes[1]!))];
        break;
      case 'gossip-outage':
        undo = w.nodes.map((x) => w.blockGossip(x));
        break;
      case 'api-outage':
        undo = w.nodes.map((x) => w.cutApi(x));
        break;
      case 'freeze':
        undo = [w.freeze(n)];
        break;
      case 'gossip-block':
        undo = [w.blockGossip(n)];
        break;
      case 'api-cut':
        undo = [w.cutApi(n)];
        break;
      case 'link-flap':
        undo = [w.linkDown(n)];
        if (f.wholeNic) undo.push(w.blockGossip(n), w.cutApi(n));
        break;
      case 'partition': {
        const a = f.nodes.map(node);
        const b = w.nodes.filter((x) => !a.includes(x));
        undo = [w.partition(a, b)];
        if (f.apiCut === 'a') undo.push(...a.map((x) => w.cutApi(x)));
        if (f.apiCut === 'b') undo.push(...b.map((x) => w.cutApi(x)));
        break;
      }
    }
  });
  w.at(t0 + f.end, () => {
    for (const u of undo) u();
  });
}

export interface ScheduleResult {
  readonly index: number;
  readonly startedAt: number;
  readonly healedAt: number;
  /** ms from the end of the last fault until every address had exactly one holder (for good), or undefined. */
  readonly settleMs: number | undefined;
  /** Mean over addresses of the fraction of the schedule's time an address was answered. */
  readonly answered: number;
  readonly minAnswered: number;
}

export interface ClusterResult {
  readonly plan: ClusterPlan;
  readonly schedules: ScheduleResult[];
  readonly violation: Violation | undefined;
  /** Why the run failed without a violation (no single holder after settling, or at boot). */
  readonly liveness: string | undefined;
  readonly events: number;
  readonly virtualMs: number;
  readonly world: World;
}

const settled = (w: World, since: number, stableMs = STABLE_MS): boolean => w.allSingleSince !== undefined && w.now() - Math.max(w.allSingleSince, since) >= stableMs;

/** Runs a cluster through its schedules; stops at the first violation or liveness failure. */
export async function runCluster(plan: ClusterPlan, options: { trace?: boolean; checkEveryEvent?: boolean } = {}): Promise<ClusterResult> {
  const w = new World({ seed: plan.seed, nodes: plan.nodes, services: plan.services, loss: plan.loss, sendgarp: plan.sendgarp, watchLagMs: plan.watchLagMs, lanLoss: plan.lanLoss, ...options });
  await w.setup();
  const results: ScheduleResult[] = [];
  const done = (liveness: string | undefined): ClusterResult => ({ plan, schedules: results, violation: w.violations[0], liveness, events: w.events, virtualMs: w.now(), world: w });
  for (const n of w.nodes) w.at(Math.floor(w.random() * 300), () => w.boot(n));
  if (plan.firstAtMs !== undefined) await w.runUntil(plan.firstAtMs);
  else {
    await w.runUntil(MAX_SETTLE_MS, () => settled(w, 0));
    if (w.violations.length > 0) return done(undefined);
    if (!settled(w, 0)) return done(`no single holder for every address ${MAX_SETTLE_MS / 1000} s after boot\n${w.describe()}`);
  }
  for (let i = 0; i < plan.schedules.length; i++) {
    const s = plan.schedules[i]!;
    const t0 = w.now();
    w.note(`schedule ${i + 1} starts`);
    w.measureFrom();
    for (const f of s.faults) applyFault(w, t0, f);
    await w.runUntil(t0 + s.windowMs);
    if (w.violations.length > 0) return done(undefined);
    const healedAt = w.now();
    w.note(`schedule ${i + 1}: every fault has ended`);
    const stableMs = i === plan.schedules.length - 1 ? FINAL_STABLE_MS : STABLE_MS;
    await w.runUntil(healedAt + MAX_SETTLE_MS, () => settled(w, healedAt, stableMs));
    if (w.violations.length > 0) return done(undefined);
    const ok = settled(w, healedAt, stableMs);
    const a = w.availability();
    results.push({
      index: i,
      startedAt: t0,
      healedAt,
      settleMs: ok ? Math.max(w.allSingleSince!, healedAt) - healedAt : undefined,
      answered: a.reduce((x, y) => x + y.answered, 0) / a.length,
      minAnswered: Math.min(...a.map((x) => x.answered)),
    });
    if (!ok) return done(`schedule ${i + 1}: not every address had exactly one holder ${MAX_SETTLE_MS / 1000} s after the faults ended\n${w.describe()}`);
  }
  return done(undefined);
}
