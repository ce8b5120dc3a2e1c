// validateManifests: offline checks with the daemons' own parse functions; each error names
// the object and the field.
import t from 'tap';
import { validateManifests } from '../src/validate.ts';

const sg = (name: string, local: string) => `apiVersion: purelb.io/v1\nkind: ServiceGroup\nmetadata:\n  name: ${name}\nspec:\n  local:\n${local}\n`;
const lbna = (name: string, local: string) => `apiVersion: purelb.io/v1\nkind: LBNodeAgent\nmetadata:\n  name: ${name}\nspec:\n  local:\n${local}\n`;

const cases: { name: string; yaml: string; object: string; field: string; message: RegExp }[] = [
  { name: 'range backwards', yaml: sg('a', '    v4pools:\n    - {pool: 192.0.2.10-192.0.2.5, subnet: 192.0.2.0/24, aggregation: default}'), object: 'ServiceGroup "a"', field: 'spec.local.v4pools[0].pool', message: /is neither a range/ },
  { name: 'pool outside its subnet', yaml: sg('b', '    v4pools:\n    - {pool: 198.51.100.1-198.51.100.9, subnet: 192.0.2.0/24, aggregation: default}'), object: 'ServiceGroup "b"', field: 'spec.local.v4pools[0].pool', message: /198\.51\.100/ },
  { name: 'overlapping pools', yaml: sg('c', '    v4pools:\n    - {pool: 192.0.2.10-192.0.2.20, subnet: 192.0.2.0/24, aggregation: default}\n    - {pool: 192.0.2.15/32, subnet: 192.0.2.0/24, aggregation: default}'), object: 'ServiceGroup "c"', field: 'spec.local.v4pools[1].pool', message: /overlaps v4pools\[0\]\.pool/ },
  { name: 'v6 pool in v4pools', yaml: sg('d', '    v4pools:\n    - {pool: 2001:db8::1-2001:db8::9, subnet: 2001:db8::/64, aggregation: default}'), object: 'ServiceGroup "d"', field: 'spec.local.v4pools[0].pool', message: /IPv4/ },
  { name: 'bad aggregation', yaml: sg('e', '    v4pools:\n    - {pool: 192.0.2.10-192.0.2.20, subnet: 192.0.2.0/24, aggregation: /33}'), object: 'ServiceGroup "e"', field: 'spec.local.v4pools[0].aggregation', message: /aggregation/ },
  { name: 'subnet too short', yaml: sg('f', '    v4pools:\n    - {pool: 192.0.2.1-192.0.2.9, subnet: 0.0.0.0/0, aggregation: default}'), object: 'ServiceGroup "f"', field: 'spec.local.v4pools[0].subnet', message: /shorter than \/8/ },
  { name: 'bad link name', yaml: lbna('g', '    extlbint: lo'), object: 'LBNodeAgent "g"', field: 'spec.local.extlbint', message: /reserved/ },
  { name: 'bad localint', yaml: lbna('h', '    localint: "eth[0"'), object: 'LBNodeAgent "h"', field: 'spec.local.localint', message: /not a regular expression/ },
  { name: 'sendgarp not a boolean', yaml: lbna('i', '    sendgarp: "yes"'), object: 'LBNodeAgent "i"', field: 'spec.local.sendgarp', message: /true or false/ },
  { name: 'wrong apiVersion', yaml: 'apiVersion: purelb.io/v2\nkind: ServiceGroup\nmetadata: {name: j}\nspec: {local: {}}\n', object: 'ServiceGroup "j"', field: 'apiVersion', message: /must be purelb.io\/v1/ },
  { name: 'no name', yaml: 'apiVersion: purelb.io/v1\nkind: LBNodeAgent\nmetadata: {}\nspec: {}\n', object: 'LBNodeAgent ""', field: 'metadata.name', message: /is required/ },
  { name: 'spec a list', yaml: 'apiVersion: purelb.io/v1\nkind: ServiceGroup\nmetadata: {name: k}\nspec: [1]\n', object: 'ServiceGroup "k"', field: 'spec', message: /must be an object/ },
  { name: 'both local and netbox', yaml: 'apiVersion: purelb.io/v1\nkind: ServiceGroup\nmetadata: {name: l}\nspec: {local: {}, netbox: {url: "https://netbox.example"}}\n', object: 'ServiceGroup "l"', field: 'spec', message: /exactly one of spec.local and spec.netbox/ },
];

t.test('each invalid manifest: one problem naming the object and the field', async (t) => {
  for (const c of cases) {
    const r = validateManifests('m.yaml', c.yaml);
    t.equal(r.problems.length, 1, `${c.name}: one problem (${JSON.stringify(r.problems)})`);
    const p = r.problems[0];
    if (!p) continue;
    t.equal(p.object, 'm.yaml#1', `${c.name}: the document`);
    t.equal(p.field, c.field, `${c.name}: the field`);
    t.match(p.message, c.object, `${c.name}: names ${c.object}`);
    t.match(p.message, c.message, `${c.name}: says what`);
    t.equal(r.objects[0]?.result, 'invalid');
  }
});

t.test('multi-document YAML, lists, other kinds, empty documents and a YAML error', async (t) => {
  const text = [
    sg('good', '    v4pools:\n    - {pool: 192.0.2.10-192.0.2.20, subnet: 192.0.2.0/24, aggregation: default}\n    v6pools:\n    - {pool: "2001:db8::10/124", subnet: "2001:db8::/64", aggregation: default}'),
    lbna('default', '    extlbint: kube-lb0\n    localint: default\n    sendgarp: true'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n',
    '',
    'apiVersion: v1\nkind: List\nitems:\n- apiVersion: purelb.io/v1\n  kind: LBNodeAgent\n  metadata: {name: in-list}\n  spec: {local: {extlbint: "a/b"}}\n',
    'key: [unclosed\n',
  ].join('---\n');
  const r = validateManifests('all.yaml', text);
  t.same(r.objects.map((o) => [o.document, o.kind, o.name, o.result]), [
    ['1', 'ServiceGroup', 'good', 'valid'],
    ['2', 'LBNodeAgent', 'default', 'valid'],
    ['3', 'ConfigMap', 'other', 'skipped'],
    ['5.items[0]', 'LBNodeAgent', 'in-list', 'invalid'],
    ['6', '', '', 'invalid'],
  ]);
  t.same(r.problems.map((p) => [p.object, p.field]), [['all.yaml#5.items[0]', 'spec.local.extlbint'], ['all.yaml#6', undefined]]);
  t.match(r.problems[1]!.message, /^not YAML \(line \d+\)/);
  t.same(validateManifests('empty.yaml', ''), { objects: [], problems: [] });
});
