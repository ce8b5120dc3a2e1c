// Which nodes may announce one ServiceGroup's addresses: the node's eligibility (the
// exclusion label, NetworkUnavailable) and the group's `spec.local.nodeSelector`. Pure.
//
// Every agent applies the same rule to every member, from the Node objects it watches, so
// that all of them elect the same holder for a local address. Nodes' labels travel through
// the API server (each agent watches every Node) rather than the gossip: the labels are
// Kubernetes state, and one source keeps the agents' views alike; while two views differ
// for a moment, the announcing annotations keep the handover break-before-make.
import { type LabelSelector, labelSelectorProblem, matchesLabelSelector } from './label-selector.ts';
import { type ExclusionReason, type NodeView, nodeEligibility } from './node-eligibility.ts';
import type { ServiceGroup } from './purelb-api.ts';

/** What a ServiceGroup says about the nodes that may announce its addresses. */
export type GroupNodeSelector =
  /** No nodeSelector: every eligible node. */
  | { readonly kind: 'all' }
  | { readonly kind: 'selector'; readonly selector: LabelSelector }
  /** A nodeSelector that was never valid: no node (`problem` names the field). */
  | { readonly kind: 'none'; readonly problem: string };

export const ALL_NODES: GroupNodeSelector = { kind: 'all' };

/**
 * The node selector of a ServiceGroup. An invalid one (the CRD refuses it at admission;
 * this is for a cluster without the schema) keeps the last valid one (`lastValid`), as
 * the pools do; with none, the group selects no node: announcing on nodes the operator
 * meant to leave out is worse than announcing nowhere, and the allocator marks the group
 * Valid=False meanwhile.
 */
export function groupNodeSelector(sg: ServiceGroup, lastValid: GroupNodeSelector | undefined): { readonly selector: GroupNodeSelector; readonly problem?: string } {
  const raw = sg.spec.local?.nodeSelector;
  if (raw === undefined || raw === null) return { selector: ALL_NODES };
  const p = labelSelectorProblem(raw, 'spec.local.nodeSelector');
  if (!p) return { selector: { kind: 'selector', selector: raw } };
  const problem = `ServiceGroup "${sg.metadata.name}": ${p.field}: ${p.message}`;
  return { selector: lastValid ?? { kind: 'none', problem }, problem };
}

export type CandidateReason = ExclusionReason | 'NodeUnknown' | 'NotSelected' | 'InvalidNodeSelector';

export type Candidacy = { readonly may: true } | { readonly may: false; readonly reason: CandidateReason };

/**
 * May this node announce the group's addresses: eligible (`nodeEligibility`), and, when
 * the group has a node selector, its Node is known and its labels match. A node whose
 * Node is not known is eligible for a group without a selector (the agent behaves as it
 * did before it could read Nodes) but selected by no selector: its labels are unknown.
 */
export function candidacy(node: NodeView | undefined, selector: GroupNodeSelector): Candidacy {
  const e = nodeEligibility(node);
  if (!e.eligible) return { may: false, reason: e.reason };
  if (selector.kind === 'all') return { may: true };
  if (selector.kind === 'none') return { may: false, reason: 'InvalidNodeSelector' };
  if (node === undefined) return { may: false, reason: 'NodeUnknown' };
  return matchesLabelSelector(selector.selector, node.metadata.labels) ? { may: true } : { may: false, reason: 'NotSelected' };
}
