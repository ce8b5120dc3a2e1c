// Whole node agents under seeded random fault schedules (test/sim): after every event no
// address may be answered by two nodes, and after each schedule's faults have ended every
// address must come to exactly one holder. SIM_SCHEDULES sets how many schedules run
// (default 10,000), SIM_BASE_SEED the first cluster seed; SIM_SEED replays one cluster
// exactly, with the agents' logs.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { type ClusterResult, describePlan, planCluster, runCluster } from './sim/schedule.ts';

const SHARDS = 10;
const replayCommand = (seed: number): string => `SIM_SEED=${seed} npx tap test/simulation.test.ts`;

function failureText(r: ClusterResult): string {
  const where = r.violation ? `two holders: ${r.violation.address} answered by ${r.violation.holders.join(' and ')} at ${(r.violation.at / 1000).toFixed(3)} s` : r.liveness!;
  return `seed ${r.plan.seed}, after ${r.schedules.length} settled schedule(s): ${where}\n  replay: ${replayCommand(r.plan.seed)}`;
}

const percentile = (xs: readonly number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

if (process.env.SIM_SEED) {
  const seed = Number(process.env.SIM_SEED);
  t.test(`replay of seed ${seed}`, async (t) => {
    const plan = planCluster(seed);
    t.comment(describePlan(plan));
    const r = await runCluster(plan, { trace: true });
    const file = join(tmpdir(), `purelb-sim-${seed}.log`);
    writeFileSync(file, `${describePlan(plan)}\n\n${r.world.trace.join('\n')}\n\n${r.world.describe()}\n`);
    t.comment(`${r.schedules.length} schedule(s) settled, ${(r.virtualMs / 1000).toFixed(1)} simulated s, ${r.events} events; full trace in ${file}`);
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
  let nextSeed = Number(process.env.SIM_BASE_SEED ?? 1);
  let schedules = 0;
  let clusters = 0;
  let events = 0;
  let virtualMs = 0;
  let cpuMs = 0;
  let wallMs = 0;
  const answered: number[] = [];
  const minAnswered: number[] = [];
  const settle: number[] = [];
  const failures: string[] = [];

  for (let shard = 0; shard < SHARDS; shard++) {
    const quota = Math.floor((target * (shard + 1)) / SHARDS) - Math.floor((target * shard) / SHARDS);
    if (quota === 0) continue;
    t.test(`shard ${shard + 1}/${SHARDS}: ${quota} fault schedules`, async (t) => {
      let done = 0;
      const first = nextSeed;
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      while (done < quota) {
        const seed = nextSeed++;
        const r = await runCluster(planCluster(seed, quota - done));
        clusters++;
        events += r.events;
        virtualMs += r.virtualMs;
        for (const s of r.schedules) {
          answered.push(s.answered);
          minAnswered.push(s.minAnswered);
          if (s.settleMs !== undefined) settle.push(s.settleMs);
        }
        if (r.violation || r.liveness) {
          const text = failureText(r);
          failures.push(text);
          t.fail(text);
          done += r.schedules.length + 1;
        } else done += r.schedules.length;
      }
      const cu = process.cpuUsage(c0);
      const cpu = (cu.user + cu.system) / 1000;
      const wall = performance.now() - w0;
      cpuMs += cpu;
      wallMs += wall;
      schedules += done;
      t.pass(`${done} schedules in clusters ${first}-${nextSeed - 1}: ${(done / (wall / 1000)).toFixed(1)} schedules/s`);
    });
  }

  t.test('summary', async (t) => {
    const mean = answered.reduce((a, b) => a + b, 0) / Math.max(1, answered.length);
    t.comment(
      [
        `${schedules} fault schedules in ${clusters} clusters (seeds ${Number(process.env.SIM_BASE_SEED ?? 1)}-${nextSeed - 1}), ${(virtualMs / 3_600_000).toFixed(1)} simulated hours, ${events} events`,
        `${(wallMs / 1000).toFixed(0)} s (CPU ${(cpuMs / 1000).toFixed(0)} s): ${(schedules / (wallMs / 1000)).toFixed(1)} schedules/s, ${(events / (cpuMs / 1000) / 1000).toFixed(0)}k events per CPU second`,
        `availability during schedules (faults, then settling): mean ${(mean * 100).toFixed(2)}% of the time answered per address; worst address per schedule p50 ${(percentile(minAnswered, 50) * 100).toFixed(1)}%, p5 ${(percentile(minAnswered, 5) * 100).toFixed(1)}%, min ${(percentile(minAnswered, 0) * 100).toFixed(1)}%`,
        `one holder per address again after the last fault ended: p50 ${(percentile(settle, 50) / 1000).toFixed(2)} s, p99 ${(percentile(settle, 99) / 1000).toFixed(2)} s, max ${(percentile(settle, 100) / 1000).toFixed(2)} s`,
      ].join('\n'),
    );
    t.same(failures, [], 'no schedule ever had two holders for an address, and every one settled');
  });
}
