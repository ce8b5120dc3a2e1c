// Benchmarks for @purelb/ipam-core (npm run bench -- ipam-core). Pure in-memory work:
// no address here is ever configured on an interface or sent a packet. The /16 for the
// exhaustion run is 198.18.0.0/16 from RFC 2544's benchmarking block, because the
// documentation ranges have no IPv4 /16.
import { Ipam, IpamError, type AllocateRequest } from '../src/index.ts';
import { type BenchSuite, gc, median, nowMs, repeat } from '../../../bench/lib.ts';

const RUNS = 5;

function v6Alloc1m(names: readonly string[]): { seconds: number; bytesPerAllocation: number } {
  const ipam = new Ipam();
  ipam.setGroups([{ name: 'default', v6pools: [{ pool: '2001:db8:1::/64', subnet: '2001:db8:1::/64' }] }]);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const families = ['IPv6'] as const;
  const t0 = nowMs();
  for (const service of names) ipam.allocate({ service, families });
  const seconds = (nowMs() - t0) / 1000;
  gc();
  const bytesPerAllocation = (process.memoryUsage().heapUsed - heapBefore) / names.length;
  if (ipam.serviceCount !== names.length) throw new Error('not every allocation was recorded');
  return { seconds, bytesPerAllocation };
}

function v4ExhaustSlash16(): number {
  const ipam = new Ipam();
  ipam.setGroups([{ name: 'default', v4pools: [{ pool: '198.18.0.0/16', subnet: '198.18.0.0/16' }] }]);
  const names = Array.from({ length: 65_537 }, (_, i) => `ns/s${i}`);
  const families = ['IPv4'] as const;
  const t0 = nowMs();
  for (let i = 0; i < 65_536; i++) ipam.allocate({ service: names[i]!, families });
  let failedAsExpected = false;
  try {
    ipam.allocate({ service: names[65_536]!, families });
  } catch (e) {
    failedAsExpected = e instanceof IpamError && e.code === 'IPAM_POOL_EXHAUSTED';
  }
  const ms = nowMs() - t0;
  if (!failedAsExpected) throw new Error('the 65,537th allocation did not fail with IPAM_POOL_EXHAUSTED');
  return ms;
}

/** A small deterministic PRNG so every run does the same work. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function churn(ops: number, seed: number): { opsPerSecond: number; failures: number } {
  const ipam = new Ipam();
  ipam.setGroups([
    {
      name: 'default',
      v4pools: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'].map((c) => ({ pool: c, subnet: c })),
      v6pools: [{ pool: '2001:db8:2::/64', subnet: '2001:db8:2::/64' }],
    },
  ]);
  const rand = mulberry32(seed);
  const SERVICES = 2000;
  const familyChoices = [['IPv4'], ['IPv6'], ['IPv4', 'IPv6']] as const;
  const requests: AllocateRequest[] = Array.from({ length: SERVICES }, (_, i) => ({
    service: `ns/svc-${i}`,
    families: familyChoices[i % 3]!,
    policy: 'PreferDualStack',
    sharingKey: i % 2 === 0 ? `key-${i % 100}` : undefined,
    ports: [{ protocol: 'TCP', port: 1000 + (i % 400) }],
  }));
  const held = new Uint8Array(SERVICES);
  const picks = Array.from({ length: ops }, () => Math.floor(rand() * SERVICES));
  let failures = 0;
  const t0 = nowMs();
  for (const i of picks) {
    if (held[i]) {
      ipam.release(requests[i]!.service);
      held[i] = 0;
    } else {
      try {
        ipam.allocate(requests[i]!);
        held[i] = 1;
      } catch (e) {
        if (!(e instanceof IpamError)) throw e;
        failures++;
      }
    }
  }
  return { opsPerSecond: ops / ((nowMs() - t0) / 1000), failures };
}

const suite: BenchSuite = {
  suite: 'ipam-core',
  targets: {
    v6_alloc_1m_seconds: ['<=', 3],
    v6_bytes_per_allocation: ['<=', 200],
    v4_exhaust_slash16_ms: ['<=', 150],
    churn_ops_per_second: ['>=', 200_000],
  },
  async run() {
    const names = Array.from({ length: 1_000_000 }, (_, i) => `ns/svc-${i}`);
    const v6 = await repeat(RUNS, () => v6Alloc1m(names), 1);
    const exhaust = await repeat(RUNS * 2, () => v4ExhaustSlash16(), 2);
    const churns = await repeat(RUNS, (i) => churn(200_000, 1000 + Math.max(i, 0)), 1);
    const gcOn = typeof (globalThis as { gc?: unknown }).gc === 'function';
    return {
      metrics: {
        v6_alloc_1m_seconds: median(v6.map((r) => r.seconds)),
        v6_bytes_per_allocation: median(v6.map((r) => r.bytesPerAllocation)),
        v4_exhaust_slash16_ms: median(exhaust),
        churn_ops_per_second: median(churns.map((r) => r.opsPerSecond)),
      },
      notes: {
        runs: `${RUNS} (1M v6), ${RUNS * 2} (/16 exhaust), ${RUNS} (churn); medians; one warm-up run each`,
        heap_measured_with_gc: gcOn ? 'yes' : 'no (run with --expose-gc)',
        bytes_counted: 'allocation state only; the service name strings are built before the run and shared, not copied',
        churn: '2000 Services (1/3 v4, 1/3 v6, 1/3 dual), half with one of 100 sharing keys, 768 v4 + a /64 of v6',
        churn_failed_calls_median: median(churns.map((r) => r.failures)),
      },
      samples: {
        v6_alloc_1m_seconds: v6.map((r) => r.seconds),
        v6_bytes_per_allocation: v6.map((r) => r.bytesPerAllocation),
        v4_exhaust_slash16_ms: exhaust,
        churn_ops_per_second: churns.map((r) => r.opsPerSecond),
      },
    };
  },
};

export default suite;
