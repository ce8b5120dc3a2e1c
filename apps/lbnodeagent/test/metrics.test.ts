// The node agent's /metrics page: the names and types dashboards and alerts rely on.
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { Membership } from '@purelb/election';
import { createMetrics } from '../src/metrics.ts';
import { VERSION } from '../src/version.ts';

/** `# TYPE` lines of an exposition, name -> type. */
function types(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

// createMetrics reads only the membership's counters.
const membership = { counters: { probesSent: 0, deaths: 0, suspicions: 0, bytesSent: 0, bytesReceived: 0, dropped: {} } } as unknown as Membership;

t.test('process and runtime metrics under their standard names, and the prefixed names kept', async (t) => {
  const ty = types(createMetrics(membership).registry.metrics());
  const want: [string, string][] = [
    ['process_cpu_seconds_total', 'counter'],
    ['process_resident_memory_bytes', 'gauge'],
    ['process_start_time_seconds', 'gauge'],
    ['process_open_fds', 'gauge'],
    ['process_max_fds', 'gauge'],
    ['nodejs_heap_size_used_bytes', 'gauge'],
    ['nodejs_eventloop_lag_seconds', 'gauge'],
  ];
  for (const [name, type] of want) {
    t.equal(ty.get(name), type, `# TYPE ${name} ${type}`);
    t.equal(ty.get(`purelb_lbnodeagent_${name}`), type, `# TYPE purelb_lbnodeagent_${name} ${type}`);
  }
});

t.test('purelb_build_info names the node agent, its release and the Node.js version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(VERSION, pkg.version, 'src/version.ts follows package.json');
  const text = createMetrics(membership).registry.metrics();
  t.equal(types(text).get('purelb_build_info'), 'gauge');
  t.match(text, `\npurelb_build_info{version="${pkg.version}",node_version="${process.version}",component="lbnodeagent"} 1\n`);
});

t.test('API request latency is a histogram by verb and code', async (t) => {
  const m = createMetrics(membership);
  t.equal(types(m.registry.metrics()).get('purelb_k8s_request_duration_seconds'), 'histogram');
});

t.test('address takeover latency is a histogram by family', async (t) => {
  const m = createMetrics(membership);
  m.takeoverDuration.observe({ family: 'IPv6' }, 0.2);
  const text = m.registry.metrics();
  t.equal(types(text).get('purelb_address_takeover_duration_seconds'), 'histogram');
  t.match(text, '\npurelb_address_takeover_duration_seconds_bucket{family="IPv6",le="0.25"} 1\n');
});
