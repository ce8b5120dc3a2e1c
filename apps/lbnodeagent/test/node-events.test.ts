import t from 'tap';
import type { Eligibility } from '@purelb/api';
import { eligibilityEvent, nodeRef } from '../src/node-events.ts';

const eligible: Eligibility = { eligible: true };
const label: Eligibility = { eligible: false, reason: 'ExcludedByLabel', message: 'node node-1 has the label node.kubernetes.io/exclude-from-external-load-balancers' };
const network: Eligibility = { eligible: false, reason: 'NetworkUnavailable', message: 'node node-1 has the condition NetworkUnavailable=True' };

t.test('eligibility changes -> one Event each, none when nothing changed', async (t) => {
  const table: [string, Eligibility, Eligibility, string | undefined][] = [
    ['eligible, still eligible', eligible, eligible, undefined],
    ['labelled', eligible, label, 'ExcludedFromLoadBalancing'],
    ['still labelled', label, label, undefined],
    ['label gone', label, eligible, 'IncludedInLoadBalancing'],
    ['NetworkUnavailable', eligible, network, 'ExcludedFromLoadBalancing'],
    ['from the label to NetworkUnavailable: a new reason', label, network, 'ExcludedFromLoadBalancing'],
    ['NetworkUnavailable cleared', network, eligible, 'IncludedInLoadBalancing'],
  ];
  for (const [name, before, now, want] of table) {
    const ev = eligibilityEvent(before, now);
    t.equal(ev?.reason, want, name);
    if (ev && !now.eligible) t.match(ev.message, now.message, `${name}: the message is the eligibility's, with its reason`);
    if (ev && !now.eligible) t.match(ev.message, now.reason);
  }
});

t.test('Node Events carry the node name as uid, as the kubelet writes them', async (t) => {
  t.same(nodeRef('node-1'), { kind: 'Node', apiVersion: 'v1', name: 'node-1', uid: 'node-1' });
});
