// `kubectl purelb status`: the allocator's leader, each node's agent, each ServiceGroup,
// and the problems found. A pure function of a snapshot.
import { Annotation, type ServiceGroup, formatLabelSelector, groupNodeSelector, ingressIPs, parseServiceGroup } from '@purelb/api';
import { findCondition } from '@purelb/k8s-glue';
import { type AgentView, ageSeconds, agentViews, allocatedByUs, byKey, isOurs, latestAllocatorWarning, nodeCandidacy, serviceRef } from './cluster-view.ts';
import { type ArpReport, ArpEventReason, type NodeExclusion, latestArpReport, nodeExclusion } from './node-health.ts';
import type { ClusterSnapshot, Problem } from './snapshot.ts';

export interface AllocatorStatus {
  readonly lease: string;
  /** The Lease's holder; undefined when there is no Lease or nobody holds it. */
  readonly leader: string | undefined;
  readonly renewedSecondsAgo: number | undefined;
  readonly leaseDurationSeconds: number | undefined;
  readonly fresh: boolean;
  /** Ready/desired replicas of the allocator Deployment(s); undefined when none was found. */
  readonly replicas: { readonly ready: number; readonly desired: number } | undefined;
}

export interface NodeStatus {
  readonly node: string;
  /** `running` (fresh Lease), `stale` (Lease not renewed within its duration) or `missing` (no Lease). */
  readonly agent: 'running' | 'stale' | 'missing';
  readonly mode: string | undefined;
  readonly membership: string | undefined;
  readonly subnets: readonly string[];
  readonly leaseRenewedSecondsAgo: number | undefined;
  /** Why the node announces nothing (its label or NetworkUnavailable condition); undefined when it may. */
  readonly excluded: NodeExclusion | undefined;
  /** Its ARP settings as its agent last reported them (Events UnsafeARPConfig / ARPConfigSafe). */
  readonly arp: ArpReport;
}

export interface GroupStatus {
  readonly name: string;
  readonly type: 'local' | 'netbox' | 'invalid';
  readonly valid: boolean;
  /** Services allocated from it. */
  readonly services: number;
  /** `inUse/size` per family from the status the allocator wrote. */
  readonly ipv4: string | undefined;
  readonly ipv6: string | undefined;
  /** Its `spec.local.nodeSelector` in kubectl's text form; undefined without one (every node). */
  readonly nodeSelector: string | undefined;
  /** With a node selector: the Nodes it selects among the eligible (`candidacy`), by name. */
  readonly selectedNodes: readonly string[] | undefined;
}

export interface StatusReport {
  readonly namespace: string;
  readonly allocator: AllocatorStatus;
  readonly nodes: readonly NodeStatus[];
  readonly serviceGroups: readonly GroupStatus[];
  readonly problems: readonly Problem[];
}

/** Guard modes in which an agent holds nothing for longer than a moment (`settling` passes by itself). */
const STUCK_MODES: ReadonlySet<string> = new Set(['lease', 'fenced', 'stalled']);

export function statusReport(snap: ClusterSnapshot): StatusReport {
  const problems: Problem[] = [];
  const allocator = allocatorStatus(snap, problems);
  const nodes = nodeStatuses(snap, problems);
  const serviceGroups = groupStatuses(snap, problems);
  servicesWithoutAddress(snap, problems);
  return { namespace: snap.namespace, allocator, nodes, serviceGroups, problems };
}

function allocatorStatus(snap: ClusterSnapshot, problems: Problem[]): AllocatorStatus {
  const ref = `Lease ${snap.namespace}/${snap.allocatorLease}`;
  const l = snap.leases.find((x) => x.metadata.name === snap.allocatorLease);
  const deployments = snap.allocatorDeployments ?? [];
  const replicas = deployments.length === 0
    ? undefined
    : deployments.reduce((s, d) => ({ ready: s.ready + (d.status?.readyReplicas ?? 0), desired: s.desired + (d.spec?.replicas ?? 1) }), { ready: 0, desired: 0 });
  if (replicas && replicas.ready < replicas.desired) {
    problems.push({ object: `Deployment ${snap.namespace}/${deployments.map((d) => d.metadata.name).join(',')}`, message: `${replicas.ready} of ${replicas.desired} allocator replicas are ready` });
  }
  if (!l) {
    problems.push({ object: ref, message: 'not found: no allocator has ever led (is the allocator running, in this namespace?)' });
    return { lease: snap.allocatorLease, leader: undefined, renewedSecondsAgo: undefined, leaseDurationSeconds: undefined, fresh: false, replicas };
  }
  const leader = l.spec?.holderIdentity || undefined;
  const duration = l.spec?.leaseDurationSeconds ?? 15;
  const age = ageSeconds(l.spec?.renewTime, snap.now);
  const fresh = leader !== undefined && age !== undefined && age < duration;
  if (!leader) problems.push({ object: ref, field: 'spec.holderIdentity', message: 'nobody holds the Lease: no allocator is leading' });
  else if (!fresh) problems.push({ object: ref, field: 'spec.renewTime', message: `leader ${leader} last renewed ${age === undefined ? 'never' : `${Math.round(age)} s ago`} (Lease duration ${duration} s): no allocator is leading` });
  return { lease: snap.allocatorLease, leader, renewedSecondsAgo: age, leaseDurationSeconds: duration, fresh, replicas };
}

function nodeStatuses(snap: ClusterSnapshot, problems: Problem[]): NodeStatus[] {
  const agents = agentViews(snap);
  const names = new Set<string>([...snap.nodes.map((n) => n.metadata.name), ...agents.keys()]);
  const out: NodeStatus[] = [];
  for (const node of [...names].sort()) {
    const a: AgentView | undefined = agents.get(node);
    const agent = !a ? 'missing' : a.fresh ? 'running' : 'stale';
    const leaseRef = `Lease ${snap.namespace}/purelb-agent-${node}`;
    if (!a) problems.push({ object: `Node ${node}`, message: `no agent Lease (${leaseRef}): no node agent runs there, or it never reached the API server` });
    else if (!a.fresh) problems.push({ object: leaseRef, field: 'spec.renewTime', message: `the agent on ${node} last renewed ${a.ageSeconds === undefined ? 'never' : `${Math.round(a.ageSeconds)} s ago`} (duration ${a.leaseDurationSeconds} s): it is down or cut off from the API server` });
    else if (a.mode !== undefined && STUCK_MODES.has(a.mode)) problems.push({ object: leaseRef, message: `the agent on ${node} is in guard mode ${a.mode}: it holds no local address` });
    const arp = latestArpReport(node, snap.nodeEvents);
    if (arp.state === 'unsafe') {
      const age = ageSeconds(arp.at, snap.now);
      problems.push({ object: `Node ${node}`, message: `ARP settings unsafe for local addresses (its agent's Event ${ArpEventReason.unsafe}${age === undefined ? '' : `, ${Math.round(age)} s ago`}): ${arp.message ?? ''}` });
    }
    const excluded = nodeExclusion(snap.nodes.find((n) => n.metadata.name === node));
    out.push({ node, agent, mode: a?.mode, membership: a?.membership, subnets: a?.subnets ?? [], leaseRenewedSecondsAgo: a?.ageSeconds, excluded, arp });
  }
  return out;
}

function groupStatuses(snap: ClusterSnapshot, problems: Problem[]): GroupStatus[] {
  const out: GroupStatus[] = [];
  for (const sg of [...snap.serviceGroups].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
    const name = sg.metadata.name;
    const ref = `ServiceGroup ${snap.namespace}/${name}`;
    const parsed = parseServiceGroup(sg);
    let valid = parsed.ok;
    if (!parsed.ok) problems.push({ object: ref, field: parsed.field, message: parsed.message });
    const cond = findCondition(sg.status?.conditions, 'Valid');
    if (parsed.ok && cond?.status === 'False') {
      valid = false;
      problems.push({ object: ref, field: 'status.conditions[Valid]', message: `the allocator finds it invalid (${cond.reason}): ${cond.message}` });
    }
    const services = snap.services.filter((s) => isOurs(s) && allocatedByUs(s) && s.metadata.annotations?.[Annotation.allocatedFrom] === name && ingressIPs(s).length > 0).length;
    const { selector } = groupNodeSelector(sg, undefined);
    const nodeSelector = selector.kind === 'selector' ? formatLabelSelector(selector.selector) : selector.kind === 'none' ? 'INVALID' : undefined;
    const selectedNodes = selector.kind === 'all' ? undefined : snap.nodes.map((n) => n.metadata.name).filter((n) => nodeCandidacy(snap, n, selector).may).sort();
    // An invalid selector is a problem already (parseServiceGroup names its field).
    if (selector.kind === 'selector' && selectedNodes?.length === 0) {
      problems.push({ object: ref, field: 'spec.local.nodeSelector', message: `${nodeSelector} selects no eligible Node (of ${snap.nodes.length}): no node announces its local addresses` });
    }
    out.push({ name, type: parsed.ok ? parsed.kind : 'invalid', valid, services, ipv4: usage(sg, 'ipv4'), ipv6: usage(sg, 'ipv6'), nodeSelector, selectedNodes });
  }
  return out;
}

function usage(sg: ServiceGroup, f: 'ipv4' | 'ipv6'): string | undefined {
  const u = sg.status?.[f];
  if (!u || u.size === undefined || u.size === '0') return undefined;
  return `${u.inUse ?? '0'}/${u.size}`;
}

function servicesWithoutAddress(snap: ClusterSnapshot, problems: Problem[]): void {
  for (const svc of [...snap.services].filter(isOurs).sort(byKey)) {
    if (ingressIPs(svc).length > 0) continue;
    const e = latestAllocatorWarning(svc, snap.serviceEvents);
    problems.push({
      object: serviceRef(svc),
      field: 'status.loadBalancer.ingress',
      message: e ? `no address: ${e.reason}: ${e.message}` : 'no address, and no Warning Event from the allocator about it (is the allocator leading?)',
    });
  }
}
