// API server latency as a daemon sees it, from the records KubeClient publishes on
// requestChannel: the daemon subscribes, the client itself keeps no metrics.
import { type RequestRecord, requestChannel } from './client.ts';
import { Histogram, type MetricsRegistry } from './metrics.ts';

/** Buckets of purelb_k8s_request_duration_seconds: 5 ms to 30 s (the client's default timeout is 30 s). */
export const K8S_REQUEST_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The histogram of API requests and the call that stops feeding it. */
export interface K8sRequestMetrics {
  readonly duration: Histogram<'verb' | 'code'>;
  /** Unsubscribes from requestChannel. */
  stop(): void;
}

/**
 * Registers `purelb_k8s_request_duration_seconds{verb,code}` in `registry` and feeds it from
 * requestChannel: one observation per request sent (a retry is another request), `verb` the
 * HTTP method, `code` the HTTP status (`0`: no answer: refused, reset, timed out, aborted).
 * Watches are left out: a watch lasts minutes by design, and its end says nothing about
 * latency.
 */
export function k8sRequestMetrics(registry: MetricsRegistry): K8sRequestMetrics {
  const duration = new Histogram({
    name: 'purelb_k8s_request_duration_seconds',
    help: 'Kubernetes API requests (watches left out) by HTTP method (verb) and status (code; 0: no answer), from sending to the end of the answer, in seconds.',
    labelNames: ['verb', 'code'],
    buckets: K8S_REQUEST_DURATION_BUCKETS,
    registry,
  });
  const onRecord = (message: unknown): void => {
    const r = message as RequestRecord;
    if (r.method === 'WATCH') return;
    duration.observe({ verb: r.method, code: r.status }, r.durationMs / 1000);
  };
  requestChannel.subscribe(onRecord);
  return { duration, stop: () => void requestChannel.unsubscribe(onRecord) };
}
