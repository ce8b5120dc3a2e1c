// Runs a share of the random fault schedules and prints one JSON line per cluster, then
// one with the CPU time used. simulation.test.ts starts it as a child process, so the
// simulation runs without the test runner's coverage instrumentation (which slows it down
// by half) and shards can run side by side.
//   node --conditions=@purelb/source test/sim/run.ts <first seed> <seed stride> <schedules>
import { type ClusterResult, planCluster, runCluster } from './schedule.ts';

export interface ClusterLine {
  readonly seed: number;
  readonly schedules: number;
  readonly answered: readonly number[];
  readonly minAnswered: readonly number[];
  /** Per settled schedule: ms from its last fault's end to one holder per address. */
  readonly settleMs: readonly number[];
  readonly failure: string | undefined;
  readonly events: number;
  readonly virtualMs: number;
  readonly stats: Record<string, number>;
}

export function clusterLine(r: ClusterResult): ClusterLine {
  const where = r.violation ? `two holders: ${r.violation.address} answered by ${r.violation.holders.join(' and ')} at ${(r.violation.at / 1000).toFixed(3)} s` : r.liveness;
  return {
    seed: r.plan.seed,
    schedules: r.schedules.length + (where ? 1 : 0),
    answered: r.schedules.map((s) => s.answered),
    minAnswered: r.schedules.map((s) => s.minAnswered),
    settleMs: r.schedules.flatMap((s) => (s.settleMs === undefined ? [] : [s.settleMs])),
    failure: where ? `seed ${r.plan.seed}, after ${r.schedules.length} settled schedule(s): ${where.split('\n')[0]}` : undefined,
    events: r.events,
    virtualMs: r.virtualMs,
    stats: Object.fromEntries(r.world.stats),
  };
}

if (import.meta.main) {
  const [first, stride, quota] = process.argv.slice(2).map(Number) as [number, number, number];
  const c0 = process.cpuUsage();
  let done = 0;
  for (let seed = first; done < quota; seed += stride) {
    const plan = planCluster(seed, { arpLoss: process.env.SIM_ARP_LOSS !== '0' });
    const line = clusterLine(await runCluster(plan, { checkEveryEvent: process.env.SIM_CHECK_EVERY_EVENT === '1' }));
    done += line.schedules;
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  const cu = process.cpuUsage(c0);
  process.stdout.write(`${JSON.stringify({ cpuMs: (cu.user + cu.system) / 1000 })}\n`);
}
