// The allocator daemon against the real kube-apiserver of the lab: every rule of
// DESIGN section 4 that a user can observe on Services, ServiceGroups and Events.
import t from 'tap';
import { installPureLB, startAllocator, withLab } from '@purelb/lab';
import {
  NS,
  applyGroup,
  createService,
  ensureNamespace,
  events,
  fromAllocator,
  getGroup,
  getService,
  ips,
  settle,
  v4,
  v6,
  waitForAddresses,
  waitForEvent,
} from './e2e-helpers.ts';
import { waitFor } from '@purelb/lab';
import { STANDARD_PROCESS_METRICS, metricTypes } from '@purelb/k8s-glue/testing';

const lab = await withLab(t, { nodes: 1 });
const admin = lab.controlPlane.admin;
await installPureLB(admin, { defaults: false });
await ensureNamespace(admin);
await applyGroup(admin, 'default', { local: { v4pools: [v4('192.0.2.200-192.0.2.209')], v6pools: [v6('2001:db8::200-2001:db8::209')] } });
await applyGroup(admin, 'v4only', { local: { v4pools: [v4('198.51.100.10-198.51.100.19', '198.51.100.0/24')] } });
await applyGroup(admin, 'tiny', { local: { v4pools: [v4('203.0.113.5-203.0.113.5', '203.0.113.0/24')] } });
const allocator = await startAllocator(lab.controlPlane, { identity: 'a1' });
t.teardown(() => allocator.stop());

t.test('single v4, single v6 and dual stack', async (t) => {
  await createService(admin, 'one-v4');
  t.same(await waitForAddresses(admin, 'one-v4', 1), ['192.0.2.200']);
  await createService(admin, 'one-v6', { families: ['IPv6'] });
  t.same(await waitForAddresses(admin, 'one-v6', 1), ['2001:db8::200']);
  await createService(admin, 'dual-require', { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' });
  t.same(await waitForAddresses(admin, 'dual-require', 2), ['192.0.2.201', '2001:db8::201']);
  await createService(admin, 'dual-prefer-v6first', { families: ['IPv6', 'IPv4'], policy: 'PreferDualStack' });
  t.same(await waitForAddresses(admin, 'dual-prefer-v6first', 2), ['2001:db8::202', '192.0.2.202'], 'addresses follow spec.ipFamilies order');
  await createService(admin, 'prefer-no-v6', { families: ['IPv4', 'IPv6'], policy: 'PreferDualStack', annotations: { 'purelb.io/service-group': 'v4only' } });
  t.same(await waitForAddresses(admin, 'prefer-no-v6', 1), ['198.51.100.10'], 'PreferDualStack takes the family the group has');
  await createService(admin, 'require-no-v6', { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack', annotations: { 'purelb.io/service-group': 'v4only' } });
  const e = await waitForEvent(admin, 'require-no-v6', 'AllocationFailed');
  t.match(e.message, /ServiceGroup "v4only" has no IPv6 pool/);
  t.equal(e.type, 'Warning');
  t.same(ips(await getService(admin, 'require-no-v6')), [], 'no ingress on failure');
  const s = await getService(admin, 'dual-require');
  t.equal(s.metadata.annotations?.['purelb.io/allocated-by'], 'PureLB');
  t.equal(s.metadata.annotations?.['purelb.io/allocated-from'], 'default');
  t.ok((await events(admin, 'dual-require')).some((x) => x.reason === 'AddressAssigned' && x.message.includes('192.0.2.201')), 'AddressAssigned Event');
});

t.test('specific addresses: in a pool, outside every pool, already taken', async (t) => {
  await createService(admin, 'want-205', { annotations: { 'purelb.io/addresses': '192.0.2.205' } });
  t.same(await waitForAddresses(admin, 'want-205', 1), ['192.0.2.205']);
  await createService(admin, 'want-outside', { annotations: { 'purelb.io/addresses': '203.0.113.77' } });
  t.match((await waitForEvent(admin, 'want-outside', 'AllocationFailed')).message, /203\.0\.113\.77 is in no pool/);
  await createService(admin, 'want-taken', { annotations: { 'purelb.io/addresses': '192.0.2.205' } });
  t.match((await waitForEvent(admin, 'want-taken', 'AllocationFailed')).message, /192\.0\.2\.205 .* is held by Service e2e\/want-205/);
  await createService(admin, 'legacy-lbip', { loadBalancerIP: '192.0.2.206' });
  t.same(await waitForAddresses(admin, 'legacy-lbip', 1), ['192.0.2.206'], 'spec.loadBalancerIP still works');
  t.ok(await waitForEvent(admin, 'legacy-lbip', 'LoadBalancerIPDeprecated'), 'with a deprecation warning');
  t.same(ips(await getService(admin, 'want-outside')), []);
  t.same(ips(await getService(admin, 'want-taken')), []);
});

t.test('an exhausted pool fails, and the Service gets the address once one is freed', async (t) => {
  const tiny = { 'purelb.io/service-group': 'tiny' };
  await createService(admin, 'tiny-1', { annotations: tiny });
  t.same(await waitForAddresses(admin, 'tiny-1', 1), ['203.0.113.5']);
  await createService(admin, 'tiny-2', { annotations: tiny });
  t.match((await waitForEvent(admin, 'tiny-2', 'AllocationFailed')).message, /every IPv4 pool of ServiceGroup "tiny" is full/);
  await admin.delete(`/api/v1/namespaces/${NS}/services/tiny-1`);
  t.same(await waitForAddresses(admin, 'tiny-2', 1), ['203.0.113.5'], 'retried when an address was released');
});

t.test('sharing: same key and disjoint ports share; a port conflict fails', async (t) => {
  const key = { 'purelb.io/allow-shared-ip': 'web', 'purelb.io/service-group': 'v4only' };
  await createService(admin, 'share-http', { annotations: key, ports: [{ port: 80 }] });
  await createService(admin, 'share-https', { annotations: key, ports: [{ port: 443 }] });
  const a = await waitForAddresses(admin, 'share-http', 1);
  const b = await waitForAddresses(admin, 'share-https', 1);
  t.same(a, b, 'one address for both');
  await createService(admin, 'share-clash', { annotations: key, ports: [{ port: 80 }] });
  t.match((await waitForEvent(admin, 'share-clash', 'AllocationFailed')).message, /port TCP\/80 on shared address .* is already used by Service e2e\/share-http/);
});

t.test('release on delete and on type change; another class is left alone', async (t) => {
  await createService(admin, 'rel-delete', { annotations: { 'purelb.io/service-group': 'v4only' } });
  const [addr] = await waitForAddresses(admin, 'rel-delete', 1);
  await admin.delete(`/api/v1/namespaces/${NS}/services/rel-delete`);
  await createService(admin, 'rel-after', { annotations: { 'purelb.io/service-group': 'v4only', 'purelb.io/addresses': addr! } });
  t.same(await waitForAddresses(admin, 'rel-after', 1), [addr], 'the deleted Service\'s address is free again');

  await createService(admin, 'rel-type', { annotations: { 'purelb.io/service-group': 'v4only' } });
  const [typed] = await waitForAddresses(admin, 'rel-type', 1);
  await admin.mergePatch(`/api/v1/namespaces/${NS}/services/rel-type`, { spec: { type: 'ClusterIP', allocateLoadBalancerNodePorts: null, externalTrafficPolicy: null } });
  await waitFor('our marks to be removed', async () => ((await getService(admin, 'rel-type')).metadata.annotations?.['purelb.io/allocated-by'] === undefined ? true : undefined), 10_000);
  t.same(ips(await getService(admin, 'rel-type')), []);
  await createService(admin, 'rel-type-after', { annotations: { 'purelb.io/service-group': 'v4only', 'purelb.io/addresses': typed! } });
  t.same(await waitForAddresses(admin, 'rel-type-after', 1), [typed], 'the address is free after the type change');

  await createService(admin, 'other-class', { loadBalancerClass: 'example.com/other' });
  await settle(1500);
  const other = await getService(admin, 'other-class');
  t.same(ips(other), [], 'no address for another class');
  t.equal(other.metadata.annotations?.['purelb.io/allocated-by'], undefined);
  t.same((await events(admin, 'other-class')).filter(fromAllocator), [], 'and no Event from the allocator');
});

t.test('invalid ServiceGroups: refused at admission or marked Valid=False; the daemon keeps going', async (t) => {
  const refused = await admin.raw('PATCH', `/apis/purelb.io/v1/namespaces/purelb/servicegroups/bad-cidr?fieldManager=e2e`, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: 'bad-cidr', namespace: 'purelb' },
    spec: { local: { v4pools: [{ pool: '192.0.2.10-192.0.2.20', subnet: '192.0.2.0/33' }] } },
  }, 'application/apply-patch+yaml');
  t.equal(refused.status, 422, 'a bad CIDR is refused at admission');
  t.match(refused.body, /subnet .*192\.0\.2\.0\/33.* must be a CIDR/);
  await applyGroup(admin, 'overlap', { local: { v4pools: [v4('192.0.2.100-192.0.2.120'), v4('192.0.2.110-192.0.2.130')] } });
  const g = await waitFor('overlap to be marked invalid', async () => {
    const x = await getGroup(admin, 'overlap');
    return x.status?.conditions?.find((c) => c.type === 'Valid' && c.status === 'False');
  }, 10_000);
  t.match(g.message, /spec\.local\.v4pools\[1\]\.pool: .*overlaps v4pools\[0\]\.pool/);
  t.ok(await waitForEvent(admin, 'overlap', 'InvalidServiceGroup', 10_000, 'purelb'));
  t.ok(allocator.running, 'the allocator is still running');
  await createService(admin, 'after-invalid', { annotations: { 'purelb.io/service-group': 'v4only' } });
  t.equal((await waitForAddresses(admin, 'after-invalid', 1)).length, 1, 'and still allocating');
});

t.test('editing a ServiceGroup under running Services takes no address away', async (t) => {
  await applyGroup(admin, 'shrink', { local: { v4pools: [v4('192.0.2.150-192.0.2.159')] } });
  await createService(admin, 'shrink-a', { annotations: { 'purelb.io/service-group': 'shrink' } });
  await createService(admin, 'shrink-b', { annotations: { 'purelb.io/service-group': 'shrink' } });
  const a = await waitForAddresses(admin, 'shrink-a', 1);
  const b = await waitForAddresses(admin, 'shrink-b', 1);
  await applyGroup(admin, 'shrink', { local: { v4pools: [v4('192.0.2.150-192.0.2.150')] } });
  t.match((await waitForEvent(admin, 'shrink-b', 'AddressOutsidePool')).message, /192\.0\.2\.151 is no longer in a pool of ServiceGroup shrink/);
  t.same(ips(await getService(admin, 'shrink-a')), a);
  t.same(ips(await getService(admin, 'shrink-b')), b, 'the orphaned address is kept');
  const status = await waitFor('shrink status to show use', async () => {
    const x = await getGroup(admin, 'shrink');
    return x.status?.ipv4?.usage === '1/1' ? x : undefined;
  }, 10_000);
  t.equal(status.status?.conditions?.find((c) => c.type === 'Valid')?.status, 'True');
  await createService(admin, 'shrink-c', { annotations: { 'purelb.io/service-group': 'shrink' } });
  t.match((await waitForEvent(admin, 'shrink-c', 'AllocationFailed')).message, /full/, 'the kept address is not handed out again');
});

t.test('/metrics: standard process names, build info, pool label and the latency histograms', async (t) => {
  const res = await fetch(`http://127.0.0.1:${allocator.metricsPort}/metrics`);
  t.equal(res.status, 200);
  const text = await res.text();
  const types = metricTypes(text);
  const want: (readonly [string, string])[] = [
    ...STANDARD_PROCESS_METRICS,
    ['purelb_allocator_process_resident_memory_bytes', 'gauge'],
    ['purelb_build_info', 'gauge'],
    ['purelb_address_pool_size', 'gauge'],
    ['purelb_k8s_request_duration_seconds', 'histogram'],
    ['purelb_allocation_duration_seconds', 'histogram'],
  ];
  for (const [name, type] of want) t.equal(types.get(name), type, `# TYPE ${name} ${type}`);
  t.match(text, /^purelb_build_info\{version="\d+\.\d+\.\d+[^"]*",node_version="v\d+\.\d+\.\d+",component="allocator"\} 1$/m);
  t.match(text, /^purelb_address_pool_size\{pool="default",group="default",family="IPv4"\} 10$/m, 'pool is the ServiceGroup');
  t.match(text, /^purelb_k8s_request_duration_seconds_count\{verb="PATCH",code="200"\} [1-9]\d*$/m, 'status writes were timed');
  const allocations = Number(/^purelb_allocation_duration_seconds_count (\d+)$/m.exec(text)?.[1]);
  t.ok(allocations >= 5, `every Service given an address was timed (${allocations})`);
});
