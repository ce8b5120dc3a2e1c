// Benchmarks for @purelb/election (npm run bench -- election). Real traffic only on
// loopback (child processes on 127.0.0.1); everything else on the in-memory network with
// simulated time, where the figures are simulated milliseconds.
import { type BenchSuite, median, percentile } from '../../../bench/lib.ts';
import { SimulatedCluster } from '../src/testing/index.ts';
import { MemberGroup } from '../test/fixtures/harness.ts';

const REAL_RUNS = 12;

async function realDetect(): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < REAL_RUNS; i++) {
    const group = await MemberGroup.start(Array.from({ length: 5 }, () => ({ bind: '127.0.0.1', port: 0 })), `bench${process.pid}-${i}`);
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const victim = 1 + (i % 4);
      const since = group.kill(victim);
      const took = await group.deadEverywhere(victim, since, 10_000);
      if (took === undefined) throw new Error(`run ${i}: the killed member was not declared dead everywhere within 10 s`);
      out.push(took);
    } finally {
      await group.stop();
    }
  }
  return out;
}

/** Kills members of a converged simulated cluster one at a time; simulated ms until every survivor has a dead event. */
function simDetect(size: number, kills: number, seed: number): number[] {
  let victim = '';
  let seen = 0;
  const cluster = new SimulatedCluster({
    size,
    seed,
    start: 'converged',
    onEvent: (_observer, e) => {
      if (e.type === 'dead' && e.member.name === victim) seen++;
    },
  });
  cluster.advance(3_000);
  const out: number[] = [];
  for (let k = 0; k < kills; k++) {
    victim = cluster.members[(1 + k * 37) % size]!.name;
    seen = 0;
    const survivors = cluster.running().length - 1;
    cluster.kill(victim);
    const took = cluster.runUntil(() => seen >= survivors, 10_000, 1);
    if (took === undefined) throw new Error(`${size} members: ${victim} was not declared dead everywhere within 10 s simulated`);
    out.push(took);
    cluster.advance(1_500);
  }
  return out;
}

function simFalseDeaths(seed: number): number {
  let deaths = 0;
  const cluster = new SimulatedCluster({ size: 20, seed, loss: 0.05, start: 'converged', onEvent: (_o, e) => void (e.type === 'dead' && deaths++) });
  cluster.advance(600_000);
  return deaths;
}

function simBytes(size: number, seconds: number, seed: number): number {
  const cluster = new SimulatedCluster({ size, seed, start: 'converged' });
  cluster.advance(5_000);
  const total = () => cluster.members.reduce((n, m) => n + m.membership.counters.bytesSent, 0);
  const before = total();
  cluster.advance(seconds * 1_000);
  return (total() - before) / size / seconds;
}

const suite: BenchSuite = {
  suite: 'election',
  targets: {
    detect_dead_p95_ms: ['<=', 700],
    sim_detect_dead_p95_ms_100: ['<=', 700],
    sim_detect_dead_p95_ms_1000: ['<=', 1_200],
    sim_false_deaths: ['<=', 0],
    bytes_per_member_per_second: ['<=', 2_000],
  },
  async run() {
    const real = await realDetect();
    const sim100 = [...simDetect(100, 15, 1), ...simDetect(100, 15, 2)];
    const sim1000 = simDetect(1_000, 12, 3);
    const falseDeaths = [11, 12, 13].map(simFalseDeaths);
    const bytes = [21, 22, 23].map((s) => simBytes(100, 200, s));
    return {
      metrics: {
        detect_dead_p95_ms: percentile(real, 95),
        detect_dead_median_ms: median(real),
        sim_detect_dead_p95_ms_100: percentile(sim100, 95),
        sim_detect_dead_median_ms_100: median(sim100),
        sim_detect_dead_p95_ms_1000: percentile(sim1000, 95),
        sim_detect_dead_median_ms_1000: median(sim1000),
        sim_false_deaths: falseDeaths.reduce((a, b) => a + b, 0),
        bytes_per_member_per_second: median(bytes),
      },
      notes: {
        preset: 'lan-fast (default)',
        detect_dead: `${REAL_RUNS} runs, 5 member processes on 127.0.0.1, SIGKILL one, time until every survivor reported it dead (parent clock, includes stdout pipe latency)`,
        sim_detect_dead_100: `${sim100.length} kills in two converged 100-member clusters, 0.5-1 ms links, simulated ms`,
        sim_detect_dead_1000: `${sim1000.length} kills in a converged 1,000-member cluster, simulated ms`,
        sim_false_deaths: '3 seeds x 10 simulated minutes, 20 members, 5% datagram loss on every link; dead events summed',
        bytes_per_member_per_second: '100 members, 200 simulated s after warm-up, sealed bytes sent (UDP + TCP push-pull), median of 3 seeds',
        sealing: 'AES-256-GCM on every packet in every run',
      },
      samples: { detect_dead_ms: real, sim_detect_dead_ms_100: sim100, sim_detect_dead_ms_1000: sim1000, bytes_per_member_per_second: bytes },
    };
  },
};

export default suite;
