// The node agent's /metrics page: the names and types dashboards and alerts rely on.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { STANDARD_PROCESS_METRICS, metricTypes } from '@purelb/k8s-glue/testing';
import type { Membership } from '@purelb/election';
import { createMetrics } from '../src/metrics.ts';
import { VERSION } from '../src/version.ts';

// createMetrics reads only the membership's counters.
const membership = { counters: { probesSent: 0, deaths: 0, suspicions: 0, bytesSent: 0, bytesReceived: 0, dropped: {} } } as unknown as Membership;

t.test('process and runtime metrics under their standard names, and the prefixed names kept', async (t) => {
  const ty = metricTypes(createMetrics(membership).registry.metrics());
  for (const [name, type] of STANDARD_PROCESS_METRICS) {
    t.equal(ty.get(name), type, `# TYPE ${name} ${type}`);
    t.equal(ty.get(`purelb_lbnodeagent_${name}`), type, `# TYPE purelb_lbnodeagent_${name} ${type}`);
  }
});

t.test('purelb_build_info names the node agent, its release and the Node.js version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(VERSION, pkg.version, 'src/version.ts follows package.json');
  const text = createMetrics(membership).registry.metrics();
  t.equal(metricTypes(text).get('purelb_build_info'), 'gauge');
  t.match(text, `\npurelb_build_info{version="${pkg.version}",node_version="${process.version}",component="lbnodeagent"} 1\n`);
});

t.test('API request latency is a histogram by verb and code', async (t) => {
  const m = createMetrics(membership);
  t.equal(metricTypes(m.registry.metrics()).get('purelb_k8s_request_duration_seconds'), 'histogram');
});

t.test('address takeover latency is a histogram by family', async (t) => {
  const m = createMetrics(membership);
  m.takeoverDuration.observe({ family: 'IPv6' }, 0.2);
  const text = m.registry.metrics();
  t.equal(metricTypes(text).get('purelb_address_takeover_duration_seconds'), 'histogram');
  t.match(text, '\npurelb_address_takeover_duration_seconds_bucket{family="IPv6",le="0.25"} 1\n');
});
