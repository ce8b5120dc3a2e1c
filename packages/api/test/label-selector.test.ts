import t from 'tap';
import { type LabelSelector, type ServiceGroup, formatLabelSelector, labelSelectorProblem, matchesLabelSelector, parseServiceGroup } from '../src/index.ts';

const zone = 'topology.kubernetes.io/zone';

t.test('matchesLabelSelector: labels against matchLabels and each operator', async (t) => {
  const table: [string, LabelSelector, Record<string, string> | undefined, boolean][] = [
    ['empty selector, no labels', {}, undefined, true],
    ['empty selector, some labels', {}, { a: '1' }, true],
    ['matchLabels equal', { matchLabels: { [zone]: 'a' } }, { [zone]: 'a', x: 'y' }, true],
    ['matchLabels other value', { matchLabels: { [zone]: 'a' } }, { [zone]: 'b' }, false],
    ['matchLabels key absent', { matchLabels: { [zone]: 'a' } }, { x: 'a' }, false],
    ['matchLabels empty value needs the key with an empty value', { matchLabels: { edge: '' } }, { edge: '' }, true],
    ['matchLabels empty value, key absent', { matchLabels: { edge: '' } }, {}, false],
    ['matchLabels: every pair must hold', { matchLabels: { a: '1', b: '2' } }, { a: '1', b: '3' }, false],
    ['In: one of the values', { matchExpressions: [{ key: zone, operator: 'In', values: ['a', 'b'] }] }, { [zone]: 'b' }, true],
    ['In: none of the values', { matchExpressions: [{ key: zone, operator: 'In', values: ['a', 'b'] }] }, { [zone]: 'c' }, false],
    ['In: key absent', { matchExpressions: [{ key: zone, operator: 'In', values: ['a'] }] }, {}, false],
    ['NotIn: key absent matches', { matchExpressions: [{ key: zone, operator: 'NotIn', values: ['a'] }] }, {}, true],
    ['NotIn: another value matches', { matchExpressions: [{ key: zone, operator: 'NotIn', values: ['a'] }] }, { [zone]: 'b' }, true],
    ['NotIn: a listed value', { matchExpressions: [{ key: zone, operator: 'NotIn', values: ['a', 'b'] }] }, { [zone]: 'a' }, false],
    ['Exists: present (empty value)', { matchExpressions: [{ key: 'edge', operator: 'Exists' }] }, { edge: '' }, true],
    ['Exists: absent', { matchExpressions: [{ key: 'edge', operator: 'Exists' }] }, { other: '' }, false],
    ['DoesNotExist: absent', { matchExpressions: [{ key: 'edge', operator: 'DoesNotExist' }] }, {}, true],
    ['DoesNotExist: present', { matchExpressions: [{ key: 'edge', operator: 'DoesNotExist' }] }, { edge: 'x' }, false],
    ['labels and expressions together: both hold', { matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: '1', b: '' }, true],
    ['labels and expressions together: one fails', { matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: '1' }, false],
    ['a key that is a prototype name is not a label', { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, {}, false],
    ['an unknown operator matches nothing', { matchExpressions: [{ key: 'a', operator: 'Gt' as never, values: ['1'] }] }, { a: '2' }, false],
  ];
  for (const [name, sel, labels, want] of table) t.equal(matchesLabelSelector(sel, labels), want, name);
});

t.test('labelSelectorProblem: the field and what is wrong', async (t) => {
  const base = 'spec.local.nodeSelector';
  const table: [string, unknown, string | undefined, RegExp?][] = [
    ['empty selector', {}, undefined],
    ['matchLabels and every operator, well formed', { matchLabels: { [zone]: 'eu-1a', 'edge': '' }, matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }, { key: 'b', operator: 'NotIn', values: ['y', 'z'] }, { key: 'c', operator: 'Exists' }, { key: 'd', operator: 'DoesNotExist', values: [] }] }, undefined],
    ['not an object', 'zone=a', base, /must be an object/],
    ['a list', [], base, /must be an object/],
    ['matchLabels not a map', { matchLabels: ['a'] }, `${base}.matchLabels`, /map/],
    ['matchLabels bad key', { matchLabels: { 'a b': 'x' } }, `${base}.matchLabels`, /"a b": the name/],
    ['matchLabels bad prefix', { matchLabels: { 'Example.com/a': 'x' } }, `${base}.matchLabels`, /prefix before "\/"/],
    ['matchLabels key name too long', { matchLabels: { ['k'.repeat(64)]: 'x' } }, `${base}.matchLabels`, /1-63/],
    ['matchLabels bad value', { matchLabels: { a: '-x' } }, `${base}.matchLabels["a"]`, /label value/],
    ['matchLabels value not a string', { matchLabels: { a: 1 } }, `${base}.matchLabels["a"]`, /must be a string/],
    ['matchExpressions not a list', { matchExpressions: { key: 'a' } }, `${base}.matchExpressions`, /list/],
    ['expression not an object', { matchExpressions: ['a'] }, `${base}.matchExpressions[0]`, /object/],
    ['unknown operator', { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'b', operator: 'Equals', values: ['x'] }] }, `${base}.matchExpressions[1].operator`, /"Equals" is not an operator: use one of In, NotIn, Exists, DoesNotExist/],
    ['operator missing', { matchExpressions: [{ key: 'a' }] }, `${base}.matchExpressions[0].operator`, /"undefined" is not an operator/],
    ['operator in lower case', { matchExpressions: [{ key: 'a', operator: 'in', values: ['x'] }] }, `${base}.matchExpressions[0].operator`, /not an operator/],
    ['key missing', { matchExpressions: [{ operator: 'Exists' }] }, `${base}.matchExpressions[0].key`, /non-empty/],
    ['key bad', { matchExpressions: [{ key: '/a', operator: 'Exists' }] }, `${base}.matchExpressions[0].key`, /prefix/],
    ['In without values', { matchExpressions: [{ key: 'a', operator: 'In' }] }, `${base}.matchExpressions[0].values`, /at least one value for the operator In/],
    ['NotIn with empty values', { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] }, `${base}.matchExpressions[0].values`, /at least one value for the operator NotIn/],
    ['Exists with values', { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, `${base}.matchExpressions[0].values`, /must be empty for the operator Exists/],
    ['DoesNotExist with values', { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] }, `${base}.matchExpressions[0].values`, /must be empty for the operator DoesNotExist/],
    ['values not a list', { matchExpressions: [{ key: 'a', operator: 'In', values: 'x' }] }, `${base}.matchExpressions[0].values`, /list/],
    ['a bad value in values', { matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', 'not ok'] }] }, `${base}.matchExpressions[0].values[1]`, /label value/],
  ];
  for (const [name, sel, field, message] of table) {
    const p = labelSelectorProblem(sel, base);
    t.equal(p?.field, field, `${name}: field`);
    if (message) t.match(p?.message ?? '', message, `${name}: message`);
  }
});

t.test('parseServiceGroup refuses a bad nodeSelector naming the object and the field, and accepts a good one', async (t) => {
  const sg = (nodeSelector: unknown): ServiceGroup => ({
    metadata: { name: 'edge', namespace: 'purelb' },
    spec: { local: { v4pools: [{ pool: '192.0.2.10-192.0.2.20', subnet: '192.0.2.0/24' }], nodeSelector: nodeSelector as never } },
  });
  const bad = parseServiceGroup(sg({ matchExpressions: [{ key: 'zone', operator: 'Within', values: ['a'] }] }));
  t.equal(bad.ok, false);
  if (!bad.ok) {
    t.equal(bad.reason, 'InvalidNodeSelector');
    t.equal(bad.field, 'spec.local.nodeSelector.matchExpressions[0].operator');
    t.match(bad.message, /^ServiceGroup "edge": spec\.local\.nodeSelector\.matchExpressions\[0\]\.operator: "Within" is not an operator/);
  }
  const good = parseServiceGroup(sg({ matchLabels: { zone: 'a' } }));
  t.ok(good.ok && good.kind === 'local', 'a valid selector: the group is valid');
  if (good.ok && good.kind === 'local') t.notOk('nodeSelector' in good.group, 'the pools handed to ipam-core carry no selector');
  t.ok(parseServiceGroup(sg(undefined)).ok, 'no selector: valid');
});

t.test('formatLabelSelector: kubectl\'s text form', async (t) => {
  const table: [LabelSelector, string][] = [
    [{}, '<all>'],
    [{ matchLabels: { [zone]: 'a', edge: 'true' } }, `${zone}=a,edge=true`],
    [
      {
        matchLabels: { edge: 'true' },
        matchExpressions: [
          { key: zone, operator: 'In', values: ['a', 'b'] },
          { key: 'rack', operator: 'NotIn', values: ['r1'] },
          { key: 'gpu', operator: 'Exists' },
          { key: 'spot', operator: 'DoesNotExist' },
        ],
      },
      `edge=true,${zone} in (a,b),rack notin (r1),gpu,!spot`,
    ],
  ];
  for (const [s, want] of table) t.equal(formatLabelSelector(s), want, want);
});
