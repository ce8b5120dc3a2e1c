import t from 'tap';
import {
  type CandidateReason,
  type GroupNodeSelector,
  type LabelSelector,
  type NodeView,
  type ServiceGroup,
  ALL_NODES,
  EXCLUDE_LABEL,
  candidacy,
  groupNodeSelector,
} from '../src/index.ts';

const node = (name: string, labels: Record<string, string> = {}, networkUnavailable = false): NodeView => ({
  metadata: { name, labels },
  status: { conditions: networkUnavailable ? [{ type: 'NetworkUnavailable', status: 'True' }] : [] },
});
const sel = (s: LabelSelector): GroupNodeSelector => ({ kind: 'selector', selector: s });
const edge = sel({ matchLabels: { 'purelb.io/edge': 'true' } });

t.test('candidacy: eligibility first, then the group selector', async (t) => {
  const none: GroupNodeSelector = { kind: 'none', problem: 'x' };
  const table: [string, NodeView | undefined, GroupNodeSelector, true | CandidateReason][] = [
    ['no selector, plain node', node('n'), ALL_NODES, true],
    ['no selector, Node unknown: eligible (as before Nodes were read)', undefined, ALL_NODES, true],
    ['no selector, exclusion label', node('n', { [EXCLUDE_LABEL]: '' }), ALL_NODES, 'ExcludedByLabel'],
    ['no selector, NetworkUnavailable', node('n', {}, true), ALL_NODES, 'NetworkUnavailable'],
    ['selector matches', node('n', { 'purelb.io/edge': 'true' }), edge, true],
    ['selector does not match', node('n', { 'purelb.io/edge': 'false' }), edge, 'NotSelected'],
    ['selector, label absent', node('n'), edge, 'NotSelected'],
    ['selector, Node unknown: not selected (labels unknown)', undefined, edge, 'NodeUnknown'],
    ['selector matches, but excluded: the exclusion wins', node('n', { 'purelb.io/edge': 'true', [EXCLUDE_LABEL]: 'true' }), edge, 'ExcludedByLabel'],
    ['selector matches, but NetworkUnavailable', node('n', { 'purelb.io/edge': 'true' }, true), edge, 'NetworkUnavailable'],
    ['DoesNotExist selects a node without the label', node('n'), sel({ matchExpressions: [{ key: 'purelb.io/edge', operator: 'DoesNotExist' }] }), true],
    ['DoesNotExist, Node unknown: still not selected', undefined, sel({ matchExpressions: [{ key: 'purelb.io/edge', operator: 'DoesNotExist' }] }), 'NodeUnknown'],
    ['an empty selector selects every known eligible node', node('n'), sel({}), true],
    ['a selector never valid selects nobody', node('n', { 'purelb.io/edge': 'true' }), none, 'InvalidNodeSelector'],
  ];
  for (const [name, n, s, want] of table) {
    const c = candidacy(n, s);
    t.equal(c.may ? true : c.reason, want, name);
  }
});

t.test('groupNodeSelector: valid, absent, invalid (last valid kept, else nobody)', async (t) => {
  const group = (nodeSelector: unknown): ServiceGroup => ({ metadata: { name: 'edge' }, spec: { local: { v4pools: [], ...(nodeSelector === undefined ? {} : { nodeSelector: nodeSelector as never }) } } });
  t.same(groupNodeSelector(group(undefined), undefined), { selector: ALL_NODES });
  t.same(groupNodeSelector(group({ matchLabels: { a: 'b' } }), undefined), { selector: { kind: 'selector', selector: { matchLabels: { a: 'b' } } } });
  const bad = group({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] });
  const first = groupNodeSelector(bad, undefined);
  t.equal(first.selector.kind, 'none', 'never valid: no node');
  t.equal(first.problem, 'ServiceGroup "edge": spec.local.nodeSelector.matchExpressions[0].values: must be empty for the operator Exists');
  const kept = groupNodeSelector(bad, edge);
  t.same(kept.selector, edge, 'an invalid edit keeps the last valid selector');
  t.ok(kept.problem, 'and is still reported');
  t.same(groupNodeSelector({ metadata: { name: 'nb' }, spec: { netbox: { url: 'https://netbox.example/api' } } }, undefined), { selector: ALL_NODES }, 'a Netbox group: every node');
});

// --- the candidate rules through the planner: three nodes, every one computing its own plan ---

