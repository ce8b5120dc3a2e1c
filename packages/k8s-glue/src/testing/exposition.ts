// Reading a /metrics page in the daemons' tests.

/** The `# TYPE` lines of a Prometheus text exposition: metric name -> type. */
export function metricTypes(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/**
 * The process and runtime metrics every daemon must serve under their standard names
 * (processMetrics without a prefix), with their types: what dashboards and alerts made for
 * any Node service select.
 */
export const STANDARD_PROCESS_METRICS: readonly (readonly [name: string, type: 'counter' | 'gauge'])[] = [
  ['process_cpu_seconds_total', 'counter'],
  ['process_resident_memory_bytes', 'gauge'],
  ['process_start_time_seconds', 'gauge'],
  ['process_open_fds', 'gauge'],
  ['process_max_fds', 'gauge'],
  ['nodejs_heap_size_used_bytes', 'gauge'],
  ['nodejs_eventloop_lag_seconds', 'gauge'],
];
