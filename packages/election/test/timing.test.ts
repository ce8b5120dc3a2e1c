import t from 'tap';
import {
  applyAwarenessDelta,
  awarenessScale,
  detectionBoundMs,
  ElectionError,
  expectedConfirmations,
  indirectNackDelayMs,
  nodeScale,
  PRESETS,
  pushPullIntervalMs,
  resolveConfig,
  retransmitLimit,
  suspicionMaxMs,
  suspicionMinMs,
  suspicionTimeoutMs,
} from '../src/index.ts';

t.test('nodeScale = max(1, log10(max(1, n)))', async (t) => {
  const table: [number, number][] = [[0, 1], [1, 1], [5, 1], [10, 1], [100, 2], [1000, 3], [10_000, 4]];
  for (const [n, want] of table) t.equal(nodeScale(n), want, `n=${n}`);
  t.ok(Math.abs(nodeScale(20) - Math.log10(20)) < 1e-12, 'n=20 is log10(20)');
});

t.test('suspicion minimum and maximum', async (t) => {
  const table: [number, number, number, number][] = [
    // mult, n, probe interval, want min
    [2, 5, 100, 200],
    [2, 100, 100, 400],
    [2, 1000, 100, 600],
    [4, 5, 1000, 4000],
    [4, 100, 1000, 8000],
    [6, 1, 5000, 30_000],
  ];
  for (const [mult, n, p, want] of table) t.equal(suspicionMinMs(mult, n, p), want, `mult=${mult} n=${n} P=${p}`);
  t.equal(suspicionMaxMs(3, 200), 600);
  t.equal(suspicionMaxMs(6, 4000), 24_000);
});

t.test('expected confirmations are capped at n - 2 and never negative', async (t) => {
  const table: [number, number, number][] = [[2, 5, 2], [2, 4, 2], [2, 3, 1], [2, 2, 0], [2, 1, 0], [0, 50, 0], [4, 1000, 4]];
  for (const [k, n, want] of table) t.equal(expectedConfirmations(k, n), want, `k=${k} n=${n}`);
});

t.test('Lifeguard timeout shrinks from max to min with confirmations', async (t) => {
  const table: [number, number, number, number, number][] = [
    // min, max, confirmations, expected, want
    [200, 600, 0, 2, 600],
    [200, 600, 1, 2, Math.floor(600 - 400 * (Math.log(2) / Math.log(3)))],
    [200, 600, 2, 2, 200],
    [200, 600, 7, 2, 200],
    [200, 600, 0, 0, 200],
    [4000, 24_000, 1, 2, Math.floor(24_000 - 20_000 * (Math.log(2) / Math.log(3)))],
    [500, 500, 0, 3, 500],
  ];
  for (const [min, max, c, k, want] of table) t.equal(suspicionTimeoutMs(min, max, c, k), want, `min=${min} max=${max} c=${c} k=${k}`);
  t.equal(suspicionTimeoutMs(200, 600, 1, 2), 347, 'one of two confirmations: 347 ms');
  let last = Infinity;
  for (let c = 0; c <= 5; c++) {
    const v = suspicionTimeoutMs(300, 1800, c, 5);
    t.ok(v <= last, `non-increasing at c=${c}`);
    last = v;
  }
});

t.test('retransmit limit = mult * ceil(log10(n + 1))', async (t) => {
  const table: [number, number, number][] = [[4, 0, 0], [4, 1, 4], [4, 5, 4], [4, 9, 4], [4, 10, 8], [4, 99, 8], [4, 100, 12], [4, 1000, 16], [3, 20, 6]];
  for (const [mult, n, want] of table) t.equal(retransmitLimit(mult, n), want, `mult=${mult} n=${n}`);
});

t.test('local health multiplier', async (t) => {
  const table: [number, number, number, number][] = [[100, 0, 8, 100], [100, 1, 8, 200], [100, 3, 8, 400], [100, 7, 8, 800], [100, 20, 8, 800], [100, -2, 8, 100], [40, 2, 1, 40]];
  for (const [d, s, max, want] of table) t.equal(awarenessScale(d, s, max), want, `d=${d} score=${s} max=${max}`);
  const deltas: [number, number, number, number][] = [[0, -1, 8, 0], [0, 3, 8, 3], [6, 3, 8, 7], [7, -1, 8, 6], [2, 5, 1, 0]];
  for (const [s, d, max, want] of deltas) t.equal(applyAwarenessDelta(s, d, max), want, `score=${s} delta=${d} max=${max}`);
});

t.test('push-pull interval grows one multiple per doubling beyond 32', async (t) => {
  const table: [number, number][] = [[1, 30_000], [32, 30_000], [33, 60_000], [64, 60_000], [65, 90_000], [100, 90_000], [128, 90_000], [1000, 180_000]];
  for (const [n, want] of table) t.equal(pushPullIntervalMs(30_000, n), want, `n=${n}`);
});

t.test('nack delay and detection bound', async (t) => {
  t.equal(indirectNackDelayMs(40), 32);
  t.equal(indirectNackDelayMs(500, 0.5), 250);
  t.equal(detectionBoundMs(100, 600), 700);
});

t.test('presets', async (t) => {
  t.same(resolveConfig(), PRESETS['lan-fast'], 'lan-fast is the default');
  t.equal(resolveConfig({ preset: 'lan' }).probeIntervalMs, 1000);
  t.equal(resolveConfig({ preset: 'wan', gossipNodes: 5 }).gossipNodes, 5, 'fields override the preset');
  for (const [name, p] of Object.entries(PRESETS)) {
    t.ok(2 * p.probeTimeoutMs < p.probeIntervalMs || name === 'lan' || name === 'wan', `${name}: room for nacks`);
    t.ok(p.probeTimeoutMs < p.probeIntervalMs, `${name}: timeout below interval`);
    t.same(resolveConfig({ preset: name as keyof typeof PRESETS }), p, `${name} resolves to itself`);
  }
  // lan-fast's promise: with 5 members, probe round + the longest suspicion stays within 700 ms,
  // and an isolated member notices before anyone can remove it (P + suspicion minimum).
  const f = PRESETS['lan-fast'];
  const min5 = suspicionMinMs(f.suspicionMult, 5, f.probeIntervalMs);
  t.ok(detectionBoundMs(f.probeIntervalMs, suspicionMaxMs(f.suspicionMaxTimeoutMult, min5)) <= 700, 'lan-fast bound <= 700 ms at n=5');
  t.ok(f.isolationTimeoutMs < f.probeIntervalMs + min5, 'isolation noticed before the fastest removal');
  // memberlist's LAN numbers: 4 s minimum suspicion at 5 members, 24 s maximum.
  const l = PRESETS.lan;
  t.equal(suspicionMinMs(l.suspicionMult, 5, l.probeIntervalMs), 4000);
  t.equal(suspicionMaxMs(l.suspicionMaxTimeoutMult, 4000), 24_000);
});

t.test('bad configuration is refused, naming the field', async (t) => {
  const bad: [Record<string, unknown>, string][] = [
    [{ probeIntervalMs: 0 }, 'config.probeIntervalMs'],
    [{ probeIntervalMs: Number.NaN }, 'config.probeIntervalMs'],
    [{ indirectChecks: 1.5 }, 'config.indirectChecks'],
    [{ gossipNodes: '3' }, 'config.gossipNodes'],
    [{ probeTimeoutMs: 100 }, 'config.probeTimeoutMs'],
    [{ preset: 'lan-slow' }, 'config.preset'],
    [{ maxPacketBytes: 100 }, 'config.maxPacketBytes'],
  ];
  for (const [input, field] of bad) {
    let caught: unknown;
    try {
      resolveConfig(input);
    } catch (e) {
      caught = e;
    }
    t.ok(caught instanceof ElectionError, `${field}: throws an ElectionError`);
    t.match(caught, { code: 'ELECTION_INVALID_CONFIG', context: { field }, message: new RegExp(`^${field.replace('.', '\\.')}: `) }, field);
  }
});
