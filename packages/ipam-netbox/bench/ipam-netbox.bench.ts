// Benchmarks for @purelb/ipam-netbox (npm run bench -- ipam-netbox): the client and pool
// against the emulator over loopback (127.0.0.1 only). allocate_p50_ms is one POST to
// available-ips through the whole client (JSON, token, parsing); parallel_50_seconds is 50
// allocations started at once, which Netbox (and the emulator) serialize.
import { NetboxClient, NetboxPool } from '../src/index.ts';
import { DEFAULT_V1_TOKEN, NetboxEmulator } from '../src/testing/index.ts';
import { type BenchSuite, median, nowMs, percentile, repeat } from '../../../bench/lib.ts';

const RUNS = 7;
const SEQUENTIAL = 200;

async function withEmulator<T>(fn: (pool: NetboxPool, e: NetboxEmulator) => Promise<T>, concurrency = 8): Promise<T> {
  const e = await NetboxEmulator.start();
  const client = new NetboxClient({ url: e.url, token: DEFAULT_V1_TOKEN });
  try {
    const p = e.addPrefix({ prefix: '2001:db8:1::/64' });
    const pool = new NetboxPool(client, { prefixId: p.id, concurrency });
    await pool.resolve();
    return await fn(pool, e);
  } finally {
    await client.close();
    await e.close();
  }
}

/** Latencies (ms) of SEQUENTIAL allocations one after the other. */
function sequential(): Promise<number[]> {
  return withEmulator(async (pool) => {
    const out: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t0 = nowMs();
      await pool.allocate(`bench/s${i}`, 'IPv6');
      out.push(nowMs() - t0);
    }
    return out;
  });
}

/** Seconds for 50 allocations started at once; checks they are distinct. */
function parallel50(): Promise<number> {
  return withEmulator(async (pool) => {
    const t0 = nowMs();
    const got = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.allocate(`bench/p${i}`, 'IPv6')));
    const s = (nowMs() - t0) / 1000;
    if (new Set(got.map((g) => g.address)).size !== 50) throw new Error('50 parallel allocations did not get 50 distinct addresses');
    return s;
  }, 50);
}

const suite: BenchSuite = {
  suite: 'ipam-netbox',
  targets: { allocate_p50_ms: ['<=', 5], parallel_50_seconds: ['<=', 1] },
  async run() {
    const runs = await repeat(RUNS, () => sequential(), 1);
    const p50s = runs.map((r) => percentile(r, 50));
    const p99s = runs.map((r) => percentile(r, 99));
    const par = await repeat(RUNS, () => parallel50(), 1);
    return {
      metrics: {
        allocate_p50_ms: Number(median(p50s).toFixed(3)),
        allocate_p99_ms: Number(median(p99s).toFixed(3)),
        parallel_50_seconds: Number(median(par).toFixed(4)),
      },
      notes: { runs: RUNS, allocations_per_run: SEQUENTIAL, transport: 'HTTP/1.1 keep-alive on 127.0.0.1' },
      samples: { allocate_p50_ms: p50s, parallel_50_seconds: par },
    };
  },
};
export default suite;
