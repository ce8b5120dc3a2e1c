// The process and runtime metrics a daemon's dashboards use (memory, CPU, file
// descriptors, heap, event loop), under the names Prometheus client libraries use, so
// existing queries keep working. Everything is read when Prometheus scrapes: no timer
// runs between scrapes and nothing observes the garbage collector.
import { readFileSync, readdirSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { Counter, Gauge, type MetricsRegistry } from './metrics.ts';

/**
 * Registers in `registry` the metrics below, once per prefix in `prefix` (a string or a
 * list; `''`, the default, gives the standard names that dashboards and alerts written for
 * Prometheus client libraries look for; `purelb_allocator_` gives e.g.
 * `purelb_allocator_process_resident_memory_bytes`). One reading per scrape feeds every
 * prefix, so the copies always agree:
 *
 * - `process_resident_memory_bytes`: resident set size (`process.memoryUsage.rss()`, the
 *   kernel's count that /proc/self/status shows as VmRSS);
 * - `process_cpu_user_seconds_total`, `process_cpu_system_seconds_total`,
 *   `process_cpu_seconds_total` (their sum), from one `process.cpuUsage()` reading;
 * - `process_start_time_seconds` (Unix time, whole seconds);
 * - `process_open_fds`: entries of /proc/self/fd, and `process_max_fds`: the soft limit
 *   `Max open files` of /proc/self/limits (each left out where /proc does not give it);
 * - `nodejs_heap_size_total_bytes`, `nodejs_heap_size_used_bytes`,
 *   `nodejs_external_memory_bytes` (V8 heap statistics);
 * - `nodejs_heap_space_size_total_bytes{space}`, `nodejs_heap_space_size_used_bytes{space}`,
 *   one series per V8 heap space (`new`, `old`, `code`, `large_object`, ...);
 * - `nodejs_eventloop_lag_seconds`: at each scrape a `setImmediate` is queued and the time
 *   until it runs is measured; the page shows the figure from the previous scrape (0 at the
 *   first), so measuring costs one callback per scrape and no timer in between;
 * - `nodejs_version_info{version,major,minor,patch}` = 1.
 *
 * Throws MetricsError `METRICS_DUPLICATE_METRIC` if a prefix is already registered in the
 * registry (or listed twice).
 */
export function processMetrics(registry: MetricsRegistry, prefix: string | readonly string[] = ''): void {
  const prefixes = typeof prefix === 'string' ? [prefix] : [...prefix];
  // One hook, on the first metric registered here, reads everything at once: the registry
  // runs every hook before writing any metric, so the figures belong to one moment
  // (user + system = total) and each source is read once per scrape.
  const sets = prefixes.map((pre, i) => metricSet(registry, pre, i === 0 ? sample : undefined));

  let lagProbePending = false;
  function sample(): void {
    const cpu = process.cpuUsage();
    const rss = process.memoryUsage.rss();
    // Keep the last figure if /proc went away: 0 would be a lie.
    const fds = openFds();
    const heap = getHeapStatistics();
    const spaces = getHeapSpaceStatistics();
    for (const m of sets) {
      setCounter(m.cpuUser, cpu.user / 1e6);
      setCounter(m.cpuSystem, cpu.system / 1e6);
      setCounter(m.cpuTotal, (cpu.user + cpu.system) / 1e6);
      m.rss.set(rss);
      if (m.fds && fds !== undefined) m.fds.set(fds);
      m.heapTotal.set(heap.total_heap_size);
      m.heapUsed.set(heap.used_heap_size);
      m.external.set(heap.external_memory);
      for (const s of spaces) {
        const space = s.space_name.replace(/_space$/, '');
        m.spaceTotal.set({ space }, s.space_size);
        m.spaceUsed.set({ space }, s.space_used_size);
      }
    }
    if (!lagProbePending) {
      lagProbePending = true;
      const start = process.hrtime.bigint();
      setImmediate(() => {
        lagProbePending = false;
        const lag = Number(process.hrtime.bigint() - start) / 1e9;
        for (const m of sets) m.lag.set(lag);
      }).unref();
    }
  }
}

interface MetricSet {
  readonly cpuUser: Counter;
  readonly cpuSystem: Counter;
  readonly cpuTotal: Counter;
  readonly rss: Gauge;
  readonly fds: Gauge | undefined;
  readonly heapTotal: Gauge;
  readonly heapUsed: Gauge;
  readonly external: Gauge;
  readonly spaceTotal: Gauge<'space'>;
  readonly spaceUsed: Gauge<'space'>;
  readonly lag: Gauge;
}

/** The metrics of one prefix; `collect` goes on the first one (see processMetrics). */
function metricSet(registry: MetricsRegistry, prefix: string, collect: (() => void) | undefined): MetricSet {
  const gauge = <L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Gauge<L> => new Gauge<L>({ name: prefix + name, help, labelNames, registry });
  const counter = (name: string, help: string): Counter => new Counter({ name: prefix + name, help, registry });
  const cpuUser = new Counter({ name: `${prefix}process_cpu_user_seconds_total`, help: 'CPU time spent in user mode, in seconds.', registry, collect });
  const cpuSystem = counter('process_cpu_system_seconds_total', 'CPU time spent in the kernel, in seconds.');
  const cpuTotal = counter('process_cpu_seconds_total', 'CPU time spent in user mode and in the kernel, in seconds.');
  gauge('process_start_time_seconds', 'When the process started, in seconds since the Unix epoch.').set(Math.round(Date.now() / 1000 - process.uptime()));
  const rss = gauge('process_resident_memory_bytes', 'Resident set size (VmRSS) of the process, in bytes.');
  const fds = openFds() === undefined ? undefined : gauge('process_open_fds', 'Open file descriptors of the process.');
  const maxFds = maxOpenFds();
  if (maxFds !== undefined) gauge('process_max_fds', 'The most file descriptors the process may open (its soft limit).').set(maxFds);
  const heapTotal = gauge('nodejs_heap_size_total_bytes', 'Size of the V8 heap, in bytes.');
  const heapUsed = gauge('nodejs_heap_size_used_bytes', 'Bytes of the V8 heap in use.');
  const external = gauge('nodejs_external_memory_bytes', 'Memory held outside the V8 heap by objects it references (buffers), in bytes.');
  const spaceTotal = gauge('nodejs_heap_space_size_total_bytes', 'Size of a V8 heap space, in bytes.', ['space']);
  const spaceUsed = gauge('nodejs_heap_space_size_used_bytes', 'Bytes of a V8 heap space in use.', ['space']);
  const lag = gauge('nodejs_eventloop_lag_seconds', 'Delay before a callback queued at the previous scrape ran, in seconds.');
  const [major = '0', minor = '0', patch = '0'] = process.versions.node.split('.');
  gauge('nodejs_version_info', 'The Node.js version, as labels; the value is always 1.', ['version', 'major', 'minor', 'patch']).set({ version: process.version, major, minor, patch }, 1);
  return { cpuUser, cpuSystem, cpuTotal, rss, fds, heapTotal, heapUsed, external, spaceTotal, spaceUsed, lag };
}

function setCounter(c: Counter, value: number): void {
  c.reset();
  c.inc(value);
}

/** Open descriptors, not counting the one reading the directory; undefined without /proc. */
function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

/** The soft limit on open descriptors (`Max open files` in /proc/self/limits); undefined without /proc or for `unlimited`. */
function maxOpenFds(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Registers `purelb_build_info{version,node_version,component}` = 1: which release of which
 * daemon runs on which Node.js, for joins (`* on (pod) group_left(version)`) and for
 * spotting a mixed rollout. Throws MetricsError `METRICS_DUPLICATE_METRIC` if called twice
 * with one registry.
 */
export function buildInfo(registry: MetricsRegistry, component: string, version: string): Gauge<'version' | 'node_version' | 'component'> {
  const g = new Gauge({
    name: 'purelb_build_info',
    help: 'The daemon (component), its release (version) and the Node.js version it runs on (node_version), as labels; the value is always 1.',
    labelNames: ['version', 'node_version', 'component'],
    registry,
  });
  g.set({ version, node_version: process.version, component }, 1);
  return g;
}
