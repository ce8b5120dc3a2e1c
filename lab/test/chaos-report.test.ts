// The chaos soak's attribution and figures, on made-up faults and samples.
import t from 'tap';
import { type FaultRecord, type WatchedAddress, FAULT_KINDS, chaosFigures, faultAt, percentile, seededRandom } from '../chaos/report.ts';

const fault = (index: number, kind: FaultRecord['kind'], atMs: number, settled = true): FaultRecord => ({
  index, kind, nodes: ['node-1'], detail: 'test', atMs, undoneAtMs: atMs + 1000, settledAtMs: settled ? atMs + 1500 : undefined,
});

t.test('a time belongs to the last fault injected before it', async (t) => {
  const faults = [fault(1, 'kill', 1000), fault(2, 'link', 5000)];
  t.equal(faultAt(faults, 999), undefined);
  t.equal(faultAt(faults, 1000)?.index, 1);
  t.equal(faultAt(faults, 4999)?.index, 1);
  t.equal(faultAt(faults, 9999)?.index, 2);
});

t.test('figures: faults per kind, duplicates and unanswered runs by the fault they fall in', async (t) => {
  const faults = [fault(1, 'kill', 1000), fault(2, 'link', 5000), fault(3, 'link', 9000, false)];
  const watched: WatchedAddress[] = [
    {
      address: '192.0.2.120', samples: 500, duplicateSamples: 1, maxGapMs: 30,
      duplicates: [{ atMs: 1200, macs: ['aa', 'bb'], answers: [] }, { atMs: 1220, macs: ['aa', 'bb'], answers: [] }, { atMs: 3000, macs: ['aa', 'bb'], answers: [] }],
      unavailability: [{ fromMs: 500, toMs: 600, durationMs: 100, samples: 5 }, { fromMs: 5100, toMs: 5500, durationMs: 400, samples: 20 }],
    },
    {
      address: '192.0.2.121', samples: 500, duplicateSamples: 0, maxGapMs: 45, duplicates: [],
      unavailability: [{ fromMs: 9100, toMs: 9300, durationMs: 200, samples: 10 }, { fromMs: 9500, toMs: undefined, durationMs: 600, samples: 30 }],
    },
  ];
  const f = chaosFigures(faults, watched, 0, 12_000, (m) => ({ aa: 'node-1', bb: 'node-2' })[m] ?? m);
  t.equal(f.metrics.faults_total, 3);
  t.equal(f.metrics.faults_kill, 1);
  t.equal(f.metrics.faults_link, 2);
  for (const k of FAULT_KINDS) t.type(f.metrics[`faults_${k}`], 'number', `faults_${k} is reported even when 0`);
  t.equal(f.metrics.samples, 1000);
  t.equal(f.metrics.duplicate_samples, 1, 'as the sampler counted them');
  t.equal(f.metrics.duplicate_samples_kill, 3, 'by the fault whose window they fall in');
  t.equal(f.metrics.unavailable_runs_none, 1, 'a run before the first fault is nobody\'s');
  t.equal(f.metrics.unavailability_none_max_ms, 100);
  t.equal(f.metrics.unavailable_runs_link, 3);
  t.equal(f.metrics.unavailability_link_max_ms, 600);
  t.equal(f.metrics.unavailability_link_p50_ms, 400);
  t.equal(f.metrics.unavailable_runs_kill, 0);
  t.equal(f.metrics.unavailability_kill_max_ms, 0);
  t.equal(f.metrics.settle_link_max_ms, 500, 'settle: from undo to settled');
  t.equal(f.metrics.unsettled_faults, 1);
  t.equal(f.metrics.sampler_max_gap_ms, 45);
  t.same(f.duplicateLines, [
    '192.0.2.120 fault #1 kill node-1: node-1 and node-2 from +200 to +220 ms (2 samples)',
    '192.0.2.120 fault #1 kill node-1: node-1 and node-2 from +2000 to +2000 ms (1 samples)',
  ], 'consecutive duplicates are one run');
  t.equal(f.timeline.length, 3);
  t.ok(Object.values(f.metrics).every((v) => Number.isFinite(v)), 'every metric is a finite number');
});

t.test('percentile and the seeded generator', async (t) => {
  t.equal(percentile([], 50), 0);
  t.equal(percentile([5, 1, 3], 50), 3);
  t.equal(percentile([0, 10], 95), 9.5);
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 100 }, () => a());
  t.same(xs, Array.from({ length: 100 }, () => b()), 'the same seed, the same sequence');
  t.ok(xs.every((x) => x >= 0 && x < 1));
  t.not(seededRandom(43)(), xs[0], 'another seed, another sequence');
});
