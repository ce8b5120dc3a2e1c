// Whole node agents under seeded random fault schedules (test/sim): after every event no
// address may be answered by two nodes, and after each schedule's faults have ended every
// address must come to exactly one holder.
//   SIM_SCHEDULES  how many fault schedules (default 10,000)
//   SIM_BASE_SEED  the first cluster seed (default 1)
//   SIM_JOBS       shards run side by side (default: the machine's cores; the clusters and
//                  their results are the same whatever the count, on a virtual clock)
//   SIM_SEED       replay one cluster exactly, with the agents' logs
//   SIM_ARP_LOSS=0 no cluster loses ARP frames on the LAN (by default some lose 2% or 30%
//                  of them, so an address probe can miss a holder)
//   SIM_CHECK_EVERY_EVENT=1  check every address after every event, not only those whose
//                  kernel state changed (slower; the result must be the same)
// The shards run in child processes (test/sim/run.ts), without the test runner's coverage
// instrumentation.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { ClusterLine } from './sim/run.ts';
import { describePlan, planCluster, runCluster } from './sim/schedule.ts';

const SHARDS = 10;
const RUNNER = fileURLToPath(new URL('./sim/run.ts', import.meta.url));
const ARP_LOSS = process.env.SIM_ARP_LOSS !== '0';
const replayCommand = (seed: number): string => `${ARP_LOSS ? '' : 'SIM_ARP_LOSS=0 '}SIM_SEED=${seed} npx tap test/simulation.test.ts`;

const percentile = (xs: readonly number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** Runs one shard in a child process; resolves with its clusters and its CPU time. */
function runShard(first: number, stride: number, quota: number): Promise<{ clusters: ClusterLine[]; cpuMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@purelb/source', '--disable-warning=ExperimentalWarning', RUNNER, String(first), String(stride), String(quota)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const clusters: ClusterLine[] = [];
    let cpuMs = 0;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const o = JSON.parse(line) as ClusterLine | { cpuMs: number };
      if ('seed' in o) clusters.push(o);
      else cpuMs = o.cpuMs;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ clusters, cpuMs }) : reject(new Error(`simulation shard from seed ${first} exited with ${code}`))));
  });
}

if (process.env.SIM_SEED) {
  const seed = Number(process.env.SIM_SEED);
  t.test(`replay of seed ${seed}`, async (t) => {
    const plan = planCluster(seed, { arpLoss: ARP_LOSS });
    t.comment(describePlan(plan));
    const r = await runCluster(plan, { trace: true, checkEveryEvent: process.env.SIM_CHECK_EVERY_EVENT === '1' });
    const file = join(tmpdir(), `purelb-sim-${seed}.log`);
    writeFileSync(file, `${describePlan(plan)}\n\n${r.world.trace.join('\n')}\n\n${r.world.describe()}\n`);
    t.comment(`${r.schedules.length} schedule(s) settled, ${(r.virtualMs / 1000).toFixed(1)} simulated s, ${r.events} events; the agents' logs are in ${file}`);
    if (r.violation || r.liveness) {
      const at = r.violation?.at ?? r.virtualMs;
      const tail = r.world.trace.filter((line) => Number(line.split(' ')[0]) * 1000 >= at - 4000);
      t.comment(`the last 4 simulated seconds:\n${tail.slice(-300).join('\n')}`);
    }
    t.equal(r.violation, undefined, 'never two holders');
    t.equal(r.liveness, undefined, 'every schedule settles with one holder per address');
  });
} else {
  const target = Number(process.env.SIM_SCHEDULES ?? 10_000);
  // About 5 minutes of CPU on a quiet machine for the default count; a loaded one (or
  // coverage runs of everything else at the same time) can take several times that.
  t.setTimeout(Math.max(600_000, target * 300));
  const base = Number(process.env.SIM_BASE_SEED ?? 1);
  const jobs = Math.max(1, Number(process.env.SIM_JOBS ?? availableParallelism()));
  const lines: ClusterLine[] = [];
  let cpuMs = 0;
  const started = performance.now();

  t.test(`${target} random fault schedules in ${SHARDS} shards`, async (t) => {
    const shards = Array.from({ length: SHARDS }, (_, k) => ({ k, quota: Math.floor((target * (k + 1)) / SHARDS) - Math.floor((target * k) / SHARDS) })).filter((s) => s.quota > 0);
    const queue = [...shards];
    const worker = async (): Promise<void> => {
      for (let s = queue.shift(); s; s = queue.shift()) {
        const w0 = performance.now();
        // Shard k takes seeds base+k, base+k+SHARDS, ...: the same clusters whatever the jobs.
        const r = await runShard(base + s.k, SHARDS, s.quota);
        lines.push(...r.clusters);
        cpuMs += r.cpuMs;
        const n = r.clusters.reduce((a, c) => a + c.schedules, 0);
        const failed = r.clusters.filter((c) => c.failure);
        for (const c of failed) t.fail(`${c.failure}\n  replay: ${replayCommand(c.seed)}`);
        t.ok(failed.length === 0, `shard ${s.k + 1}: ${n} schedules in ${r.clusters.length} clusters, ${(n / ((performance.now() - w0) / 1000)).toFixed(1)} schedules/s`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, shards.length) }, worker));
  });

  t.test('summary', async (t) => {
    const wallMs = performance.now() - started;
    const schedules = lines.reduce((a, c) => a + c.schedules, 0);
    const events = lines.reduce((a, c) => a + c.events, 0);
    const virtualMs = lines.reduce((a, c) => a + c.virtualMs, 0);
    const answered = lines.flatMap((c) => c.answered);
    const minAnswered = lines.flatMap((c) => c.minAnswered);
    const settle = lines.flatMap((c) => c.settleMs);
    const stats = new Map<string, number>();
    for (const c of lines) for (const [k, v] of Object.entries(c.stats)) stats.set(k, (stats.get(k) ?? 0) + v);
    const mean = answered.reduce((a, b) => a + b, 0) / Math.max(1, answered.length);
    const seeds = lines.map((c) => c.seed);
    const slowest = lines.flatMap((c) => c.settleMs.map((ms, i) => ({ seed: c.seed, schedule: i + 1, ms }))).sort((a, b) => b.ms - a.ms)[0];
    t.comment(
      [
        `${schedules} fault schedules in ${lines.length} clusters (seeds ${Math.min(...seeds)}-${Math.max(...seeds)}), ${(virtualMs / 3_600_000).toFixed(1)} simulated hours, ${events} events`,
        `${(wallMs / 1000).toFixed(0)} s (CPU ${(cpuMs / 1000).toFixed(0)} s, ${jobs} job(s)): ${(schedules / (wallMs / 1000)).toFixed(1)} schedules/s, ${(events / cpuMs).toFixed(0)}k events per CPU second`,
        `availability over each schedule (its faults, then settling): an address was answered ${(mean * 100).toFixed(2)}% of the time on average; the worst address of a schedule p50 ${(percentile(minAnswered, 50) * 100).toFixed(1)}%, p5 ${(percentile(minAnswered, 5) * 100).toFixed(1)}%, min ${(percentile(minAnswered, 0) * 100).toFixed(1)}%`,
        `one holder per address again after the last fault ended: p50 ${(percentile(settle, 50) / 1000).toFixed(2)} s, p90 ${(percentile(settle, 90) / 1000).toFixed(2)} s, p99 ${(percentile(settle, 99) / 1000).toFixed(2)} s, max ${(percentile(settle, 100) / 1000).toFixed(2)} s${slowest ? ` (seed ${slowest.seed}, schedule ${slowest.schedule})` : ''}`,
        `what the agents did: ${[...stats].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      ].join('\n'),
    );
    t.ok(schedules >= target, `at least ${target} schedules ran`);
    t.same(
      lines.filter((c) => c.failure).map((c) => c.seed),
      [],
      'no schedule ever had two holders for an address, and every one settled',
    );
  });
}
