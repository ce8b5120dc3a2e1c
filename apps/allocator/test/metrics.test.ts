// The allocator's /metrics page: the names and types dashboards and alerts rely on.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { STANDARD_PROCESS_METRICS, metricTypes } from '@purelb/k8s-glue/testing';
import { createMetrics } from '../src/metrics.ts';
import { VERSION } from '../src/version.ts';

t.test('process and runtime metrics under their standard names, and the prefixed names kept', async (t) => {
  const m = createMetrics();
  const text = m.registry.metrics();
  const ty = metricTypes(text);
  for (const [name, type] of STANDARD_PROCESS_METRICS) {
    t.equal(ty.get(name), type, `# TYPE ${name} ${type}`);
    t.equal(ty.get(`purelb_allocator_${name}`), type, `# TYPE purelb_allocator_${name} ${type}`);
  }
  t.match(text, /^process_resident_memory_bytes [1-9]\d*$/m, 'a resident size is written');
});

t.test('purelb_build_info names the allocator, its release and the Node.js version', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(VERSION, pkg.version, 'src/version.ts follows package.json');
  const text = createMetrics().registry.metrics();
  t.equal(metricTypes(text).get('purelb_build_info'), 'gauge');
  t.match(text, `\npurelb_build_info{version="${pkg.version}",node_version="${process.version}",component="allocator"} 1\n`);
});

t.test('API request latency is a histogram by verb and code', async (t) => {
  const m = createMetrics();
  t.equal(metricTypes(m.registry.metrics()).get('purelb_k8s_request_duration_seconds'), 'histogram');
});

t.test('allocation latency is a histogram', async (t) => {
  t.equal(metricTypes(createMetrics().registry.metrics()).get('purelb_allocation_duration_seconds'), 'histogram');
});
