import t from 'tap';
import { EXCLUDE_LABEL, type NodeView, nodeEligibility, sameNodeView, trimNodeView } from '../src/index.ts';

const node = (labels: Record<string, string> | undefined, conditions?: { type: string; status: string }[]): NodeView => ({
  metadata: { name: 'node-1', ...(labels ? { labels } : {}) },
  ...(conditions ? { status: { conditions } } : {}),
});
const NU = 'NetworkUnavailable';

t.test('eligibility: node labels and conditions -> eligible or the reason', async (t) => {
  const table: [string, NodeView | undefined, 'eligible' | 'ExcludedByLabel' | 'NetworkUnavailable'][] = [
    ['Node not known', undefined, 'eligible'],
    ['no labels, no status', node(undefined), 'eligible'],
    ['other labels', node({ 'kubernetes.io/hostname': 'node-1', 'node-role.kubernetes.io/control-plane': '' }), 'eligible'],
    ['exclusion label, empty value', node({ [EXCLUDE_LABEL]: '' }), 'ExcludedByLabel'],
    ['exclusion label, "true"', node({ [EXCLUDE_LABEL]: 'true' }), 'ExcludedByLabel'],
    ['exclusion label, "false" (any value excludes)', node({ [EXCLUDE_LABEL]: 'false' }), 'ExcludedByLabel'],
    ['a label that only looks like it', node({ 'node.kubernetes.io/exclude-from-external-load-balancer': 'true' }), 'eligible'],
    ['the label as a prefix of another key', node({ [`${EXCLUDE_LABEL}-x`]: '' }), 'eligible'],
    ['NetworkUnavailable True', node({}, [{ type: NU, status: 'True' }]), 'NetworkUnavailable'],
    ['NetworkUnavailable False', node({}, [{ type: NU, status: 'False' }]), 'eligible'],
    ['NetworkUnavailable Unknown', node({}, [{ type: NU, status: 'Unknown' }]), 'eligible'],
    ['Ready False (not this rule)', node({}, [{ type: 'Ready', status: 'False' }]), 'eligible'],
    ['other conditions True', node({}, [{ type: 'DiskPressure', status: 'True' }, { type: NU, status: 'False' }]), 'eligible'],
    ['both: the label is named first', node({ [EXCLUDE_LABEL]: '' }, [{ type: NU, status: 'True' }]), 'ExcludedByLabel'],
  ];
  for (const [name, input, want] of table) {
    const e = nodeEligibility(input);
    t.equal(e.eligible ? 'eligible' : e.reason, want, name);
    if (!e.eligible) t.match(e.message, /node-1/, `${name}: the message names the node`);
  }
});

t.test('trimNodeView keeps the labels and NetworkUnavailable only, and the rule reads the same', async (t) => {
  const raw = {
    metadata: { name: 'node-1', resourceVersion: '9', labels: { [EXCLUDE_LABEL]: 'x', 'kubernetes.io/os': 'linux' }, annotations: { a: 'b' } },
    status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }, { type: NU, status: 'True', reason: 'NoRouteCreated' }], addresses: [{ type: 'InternalIP', address: '192.0.2.11' }] },
  } as unknown as NodeView;
  t.same(trimNodeView(raw), { metadata: { name: 'node-1', resourceVersion: '9', labels: { [EXCLUDE_LABEL]: 'x', 'kubernetes.io/os': 'linux' } }, status: { conditions: [{ type: NU, status: 'True' }] } });
  const inputs: NodeView[] = [raw, node(undefined), node({ [EXCLUDE_LABEL]: '' }), node({}, [{ type: NU, status: 'True' }]), node({ a: 'b' }, [{ type: NU, status: 'False' }])];
  for (const n of inputs) t.same(nodeEligibility(trimNodeView(n)), nodeEligibility(n), 'same verdict after trimming');
});

t.test('sameNodeView: only labels and NetworkUnavailable make a change that matters', async (t) => {
  const table: [string, NodeView | undefined, NodeView | undefined, boolean][] = [
    ['both unknown', undefined, undefined, true],
    ['one unknown', node({}), undefined, false],
    ['same labels, other resourceVersion', { ...node({ a: '1' }), metadata: { name: 'node-1', resourceVersion: '1', labels: { a: '1' } } }, { ...node({ a: '1' }), metadata: { name: 'node-1', resourceVersion: '2', labels: { a: '1' } } }, true],
    ['a label value changed', node({ a: '1' }), node({ a: '2' }), false],
    ['a label added', node({ a: '1' }), node({ a: '1', b: '' }), false],
    ['a label swapped for another', node({ a: '1' }), node({ b: '1' }), false],
    ['no labels vs empty labels', node(undefined), node({}), true],
    ['NetworkUnavailable became True', node({}, [{ type: NU, status: 'False' }]), node({}, [{ type: NU, status: 'True' }]), false],
    ['only Ready changed', node({}, [{ type: 'Ready', status: 'True' }]), node({}, [{ type: 'Ready', status: 'False' }]), true],
  ];
  for (const [name, a, b, want] of table) {
    t.equal(sameNodeView(a, b), want, name);
    t.equal(sameNodeView(b, a), want, `${name} (swapped)`);
  }
});
