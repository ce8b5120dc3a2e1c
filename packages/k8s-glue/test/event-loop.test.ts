import t from 'tap';
import { Histogram, MetricsRegistry, MetricsError, beatLagMs, eventLoopLagHistogram, monitorEventLoopLag } from '../src/index.ts';

t.test('a histogram writes cumulative buckets, sum and count', async (t) => {
  const registry = new MetricsRegistry();
  const h = new Histogram({ name: 'x_seconds', help: 'X.', buckets: [0.1, 1], registry });
  for (const v of [0.05, 0.1, 0.5, 3]) h.observe(v);
  t.equal(h.count, 4);
  t.equal(h.sum, 3.65);
  t.equal(h.quantileBound(0.5), 0.1, 'half of the observations are <= 0.1');
  t.equal(h.quantileBound(0.75), 1);
  t.equal(h.quantileBound(1), Infinity, 'one observation is past every bucket');
  t.equal(
    h.exposition(),
    '# HELP x_seconds X.\n# TYPE x_seconds histogram\nx_seconds_bucket{le="0.1"} 2\nx_seconds_bucket{le="1"} 3\nx_seconds_bucket{le="+Inf"} 4\nx_seconds_sum 3.65\nx_seconds_count 4\n',
  );
  t.match(registry.metrics(), /x_seconds_count 4/);
  t.throws(() => new Histogram({ name: 'y', help: 'Y.', buckets: [1, 1] }), MetricsError, 'buckets must increase');
  t.throws(() => h.observe(Number.NaN), MetricsError);
});

t.test('lag of a beat', async (t) => {
  const rows: [number, number, number, number][] = [
    [150, 100, 50, 0],
    [180, 100, 50, 30],
    [120, 100, 50, 0],
    [4100, 100, 50, 3950],
  ];
  for (const [now, prev, interval, lag] of rows) t.equal(beatLagMs(now, prev, interval), lag, `${now}-${prev} every ${interval}`);
});

t.test('the monitor observes a blocked event loop', async (t) => {
  const registry = new MetricsRegistry();
  const h = eventLoopLagHistogram(registry);
  const stop = monitorEventLoopLag(h, 10);
  t.teardown(stop);
  await new Promise((r) => setTimeout(r, 30));
  const until = performance.now() + 120;
  while (performance.now() < until) {
    // block the loop for 120 ms
  }
  await new Promise((r) => setTimeout(r, 30));
  stop();
  t.ok(h.count >= 2, `beats observed (${h.count})`);
  t.ok(h.quantileBound(1) >= 0.1, 'the 120 ms block shows in the top bucket');
  t.match(registry.metrics(), /purelb_event_loop_lag_seconds_bucket\{le="0.2"\}/);
});
