// How late the event loop runs: one timer, its lateness observed into a histogram. Both
// daemons export it as purelb_event_loop_lag_seconds; the node agent also treats a late
// beat past its stall threshold as a freeze (see apps/lbnodeagent).
import { Histogram, type MetricsRegistry } from './metrics.ts';

/** Buckets of purelb_event_loop_lag_seconds: 1 ms to 5 s. */
export const EVENT_LOOP_LAG_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

/** The histogram `purelb_event_loop_lag_seconds`, registered in `registry`. */
export function eventLoopLagHistogram(registry: MetricsRegistry): Histogram {
  return new Histogram({
    name: 'purelb_event_loop_lag_seconds',
    help: 'How late the event loop ran a timer due every interval (a freeze, a long GC pause, CPU starvation).',
    buckets: EVENT_LOOP_LAG_BUCKETS,
    registry,
  });
}

/** Lateness of one beat (ms) given when it ran, when the previous one ran, and the interval. */
export function beatLagMs(now: number, previous: number, intervalMs: number): number {
  return Math.max(0, now - previous - intervalMs);
}

/**
 * Observes the event loop's lag every `intervalMs` (default 50) into `histogram` until
 * the returned function is called. The timer does not keep the process alive.
 */
export function monitorEventLoopLag(histogram: Histogram, intervalMs = 50): () => void {
  let previous = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    histogram.observe(beatLagMs(now, previous, intervalMs) / 1000);
    previous = now;
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
