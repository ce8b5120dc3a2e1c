// The Events the agent records on its own Node: eligibility changes and the ARP check.
import type { ObjectReference } from '@purelb/k8s-glue';
import type { Eligibility } from '@purelb/api';

/** Reasons of the Events on the Node. */
export const NodeEventReason = {
  excluded: 'ExcludedFromLoadBalancing',
  included: 'IncludedInLoadBalancing',
  unsafeArp: 'UnsafeARPConfig',
  safeArp: 'ARPConfigSafe',
  arpSysctlsSet: 'ARPSysctlsSet',
  arpSysctlsNotSet: 'ARPSysctlsNotSet',
} as const;

/**
 * A Node, as an Event's subject. The uid is the node's name, as the kubelet writes it on
 * its Node Events: `kubectl describe node` lists Events under either the Node's uid or its
 * name, and the agent does not have to read the Node to know it.
 */
export function nodeRef(node: string): ObjectReference {
  return { kind: 'Node', apiVersion: 'v1', name: node, uid: node };
}

export interface NodeEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/**
 * The Event for a change of eligibility as the agent applies it; none when it did not
 * change (the same reason, or eligible both times).
 */
export function eligibilityEvent(before: Eligibility, now: Eligibility): NodeEvent | undefined {
  if (now.eligible && before.eligible) return undefined;
  if (!now.eligible && !before.eligible && now.reason === before.reason) return undefined;
  if (now.eligible) return { type: 'Normal', reason: NodeEventReason.included, message: 'the node may announce LoadBalancer addresses again' };
  return { type: 'Normal', reason: NodeEventReason.excluded, message: `${now.message} (${now.reason}): its PureLB agent withdraws its addresses and announces none` };
}
