// The CRDs in charts/purelb/crds against the real API server: the reference manifests
// apply unchanged, defaults are filled in, and what a schema can refuse is refused with
// the field named. Then the same objects through parseServiceGroup.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { installCrds, parseYamlObjects, withLab } from '@purelb/lab';
import { parseServiceGroup, type ServiceGroup } from '../src/index.ts';

const lab = await withLab(t, { nodes: 1 });
const admin = lab.controlPlane.admin;
await installCrds(admin);
await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'purelb-system' } });

const path = (o: { kind: string; metadata: { name: string; namespace: string } }): string =>
  `/apis/purelb.io/v1/namespaces/${o.metadata.namespace}/${o.kind === 'ServiceGroup' ? 'servicegroups' : 'lbnodeagents'}`;

t.test('the reference manifests apply unchanged', async (t) => {
  const objs = parseYamlObjects(readFileSync(join(import.meta.dirname, 'fixtures', 'reference-manifests.yaml'), 'utf8')) as unknown as {
    kind: string;
    metadata: { name: string; namespace: string };
  }[];
  t.same(objs.map((o) => o.kind), ['ServiceGroup', 'LBNodeAgent']);
  for (const o of objs) {
    const r = await admin.raw('POST', path(o), o);
    t.equal(r.status, 201, `${o.kind} ${o.metadata.name}: ${r.body.slice(0, 200)}`);
  }
  const sg = await admin.get<ServiceGroup>('/apis/purelb.io/v1/namespaces/purelb-system/servicegroups/localaddrange');
  const parsed = parseServiceGroup(sg);
  t.ok(parsed.ok && parsed.kind === 'local', 'and the reference ServiceGroup is valid for the allocator');
});

t.test('LBNodeAgent defaults', async (t) => {
  await admin.create('/apis/purelb.io/v1/namespaces/purelb-system/lbnodeagents', { apiVersion: 'purelb.io/v1', kind: 'LBNodeAgent', metadata: { name: 'bare' }, spec: {} });
  const got = await admin.get<{ spec: unknown }>('/apis/purelb.io/v1/namespaces/purelb-system/lbnodeagents/bare');
  t.same(got.spec, { local: { extlbint: 'kube-lb0', localint: 'default', sendgarp: false, setARPSysctls: false } });
});

t.test('what the schema can say is refused at admission, naming the field', async (t) => {
  const local = (l: unknown) => ({ local: l });
  const table: [string, unknown, RegExp][] = [
    ['both local and netbox', { local: { v4pools: [] }, netbox: { url: 'https://netbox.example/api' } }, /spec: .*exactly one of spec\.local and spec\.netbox/],
    ['neither', {}, /exactly one of spec\.local and spec\.netbox/],
    ['bad range text', local({ v4pools: [{ pool: '192.0.2.1..9', subnet: '192.0.2.0/24' }] }), /spec\.local\.v4pools\[0\]\.pool: .*range first-last .* or a CIDR/],
    ['bad subnet', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/33' }] }), /spec\.local\.v4pools\[0\]\.subnet: .*must be a CIDR/],
    ['pool outside subnet', local({ v4pools: [{ pool: '198.51.100.1-198.51.100.9', subnet: '192.0.2.0/24' }] }), /spec\.local\.v4pools\[0\]\.pool: .*inside subnet/],
    ['CIDR pool outside subnet', local({ v6pools: [{ pool: '2001:db8:1::/64', subnet: '2001:db8::/64' }] }), /spec\.local\.v6pools\[0\]\.pool: .*inside subnet/],
    ['IPv6 in v4pools', local({ v4pools: [{ pool: '2001:db8::1-2001:db8::9', subnet: '2001:db8::/64' }] }), /spec\.local\.v4pools\[0\]\.pool: .*v4pools holds IPv4 pools: pool "2001:db8::1-2001:db8::9" is IPv6/],
    ['aggregation shorter than the subnet', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24', aggregation: '/16' }] }), /spec\.local\.v4pools\[0\]\.aggregation: .*at least the subnet's prefix length/],
    ['subnet 0.0.0.0/0', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '0.0.0.0/0' }] }), /spec\.local\.v4pools\[0\]\.subnet: .*shorter than \/8/],
    ['bad aggregation', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24', aggregation: '32' }] }), /spec\.local\.v4pools\[0\]\.aggregation: .*"default" or "\/N"/],
    ['legacy pool without subnet', local({ pool: '192.0.2.1-192.0.2.9' }), /spec\.local: .*go together/],
    ['nodeSelector: unknown operator', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'Within', values: ['a'] }] } }), /spec\.local\.nodeSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Within"/],
    ['nodeSelector: In without values', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In' }] } }), /spec\.local\.nodeSelector\.matchExpressions\[0\]\.values: .*at least one value for the operator In/],
    ['nodeSelector: NotIn with empty values', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: [] }] } }), /spec\.local\.nodeSelector\.matchExpressions\[0\]\.values: .*at least one value for the operator NotIn/],
    ['nodeSelector: Exists with values', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'Exists', values: ['a'] }] } }), /spec\.local\.nodeSelector\.matchExpressions\[0\]\.values: .*must be empty for the operator Exists/],
    ['nodeSelector: DoesNotExist with values', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist', values: ['a'] }] } }), /spec\.local\.nodeSelector\.matchExpressions\[0\]\.values: .*must be empty for the operator DoesNotExist/],
    ['nodeSelector: key missing', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchExpressions: [{ operator: 'Exists' }] } }), /spec\.local\.nodeSelector\.matchExpressions\[0\]\.key: Required/],
    ['nodeSelector: bad expression key', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchExpressions: [{ key: 'a b', operator: 'Exists' }] } }), /spec\.local\.nodeSelector\.matchExpressions\[0\]\.key: Invalid value/],
    ['nodeSelector: bad matchLabels key', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchLabels: { 'a b': 'x' } } }), /spec\.local\.nodeSelector\.matchLabels: .*label key/],
    ['nodeSelector: bad matchLabels value', local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector: { matchLabels: { zone: 'not ok' } } }), /spec\.local\.nodeSelector\.matchLabels: .*label value/],
    ['netbox without url', { netbox: { tenant: 'x' } }, /spec\.netbox\.url: Required/],
    ['netbox url not http', { netbox: { url: 'ftp://netbox.example' } }, /spec\.netbox\.url: .*http\(s\) URL/],
  ];
  for (const [name, spec, want] of table) {
    const r = await admin.raw('POST', '/apis/purelb.io/v1/namespaces/purelb-system/servicegroups', { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { generateName: 'bad-' }, spec });
    t.equal(r.status, 422, `${name}: refused`);
    t.match((JSON.parse(r.body) as { message: string }).message, want, `${name}: names the field`);
  }
});

t.test('a valid nodeSelector is admitted as written and valid for the allocator', async (t) => {
  const nodeSelector = { matchLabels: { 'topology.kubernetes.io/zone': 'eu-1a', edge: '' }, matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }, { key: 'b', operator: 'NotIn', values: ['y'] }, { key: 'c', operator: 'Exists' }, { key: 'd', operator: 'DoesNotExist' }] };
  const r = await admin.raw('POST', '/apis/purelb.io/v1/namespaces/purelb-system/servicegroups', { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { generateName: 'sel-' }, spec: { local: { v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24' }], nodeSelector } } });
  t.equal(r.status, 201, r.body.slice(0, 300));
  const sg = JSON.parse(r.body) as ServiceGroup;
  t.same(sg.spec.local?.nodeSelector, nodeSelector, 'stored as written (not pruned)');
  t.ok(parseServiceGroup(sg).ok, 'valid for the allocator');
});

t.test('what only the allocator can tell passes admission and is reported by parseServiceGroup', async (t) => {
  const table: [string, unknown, string, RegExp][] = [
    ['first above last', { v4pools: [{ pool: '192.0.2.20-192.0.2.10', subnet: '192.0.2.0/24' }] }, 'spec.local.v4pools[0].pool', /first <= last/],
    ['overlapping pools', { v4pools: [{ pool: '192.0.2.0/28', subnet: '192.0.2.0/24' }, { pool: '192.0.2.8-192.0.2.20', subnet: '192.0.2.0/24' }] }, 'spec.local.v4pools[1].pool', /overlaps/],
  ];
  for (const [name, local, field, want] of table) {
    const r = await admin.raw('POST', '/apis/purelb.io/v1/namespaces/purelb-system/servicegroups', { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { generateName: 'late-' }, spec: { local } });
    t.equal(r.status, 201, `${name}: admitted`);
    const parsed = parseServiceGroup(JSON.parse(r.body) as ServiceGroup);
    t.equal(parsed.ok, false, `${name}: invalid`);
    if (!parsed.ok) {
      t.equal(parsed.field, field, `${name}: field`);
      t.equal(parsed.reason, field.endsWith('].pool') && /overlaps/.test(parsed.message) ? 'OverlappingPools' : 'InvalidPool', `${name}: reason`);
      t.match(parsed.message, want, `${name}: message`);
    }
  }
});
