// Facts derived from a snapshot that several reports share: which Services are ours, the
// agents as their Leases describe them, why a Service has no address.
import {
  type Candidacy,
  type GroupNodeSelector,
  AGENT_LEASE_PREFIX,
  ALLOCATED_BY_VALUE,
  AgentLeaseAnnotation,
  ALL_NODES,
  Annotation,
  PURELB_LOAD_BALANCER_CLASS,
  type Service,
  candidacy,
  groupNodeSelector,
  ingressIPs,
  serviceKey,
} from '@purelb/api';
import { type SafetyMode, WITHDRAWN_MODES, isSafetyMode } from '@purelb/election';
import type { ClusterSnapshot, EventObject, LeaseObject } from './snapshot.ts';

/** The component name the allocator's Events carry. */
export const ALLOCATOR_COMPONENT = 'purelb-allocator';

/**
 * True for a LoadBalancer Service PureLB would serve: type LoadBalancer, and class
 * `purelb.io/purelb` or none (an allocator run with --require-load-balancer-class leaves
 * the latter alone; it then carries no `allocated-by` mark).
 */
export function isOurs(svc: Service): boolean {
  if (svc.spec?.type !== 'LoadBalancer') return false;
  const cls = svc.spec.loadBalancerClass;
  return cls === undefined || cls === PURELB_LOAD_BALANCER_CLASS;
}

/** True when the allocator has marked the Service as holding addresses from PureLB. */
export function allocatedByUs(svc: Service): boolean {
  return svc.metadata.annotations?.[Annotation.allocatedBy] === ALLOCATED_BY_VALUE;
}

/** The Services PureLB serves (ours and marked by the allocator with an address), by `namespace/name`. */
export function servedServices(snap: Pick<ClusterSnapshot, 'services'>): Service[] {
  return [...snap.services].filter((s) => isOurs(s) && allocatedByUs(s) && ingressIPs(s).length > 0).sort(byKey);
}

export function byKey(a: Service, b: Service): number {
  const ka = serviceKey(a);
  const kb = serviceKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** One agent as its Lease shows it. */
export interface AgentView {
  readonly node: string;
  /** The guard mode it published; undefined when absent or not a mode. */
  readonly mode: SafetyMode | undefined;
  readonly subnets: readonly string[];
  /** `reached/known` when the agent publishes it. */
  readonly membership: string | undefined;
  /** Seconds since its last renewal (undefined: no renewTime). */
  readonly ageSeconds: number | undefined;
  readonly leaseDurationSeconds: number;
  /** Renewed within its duration. */
  readonly fresh: boolean;
}

/** Seconds from `time` (RFC 3339) to `now`; undefined when absent or unreadable. */
export function ageSeconds(time: string | null | undefined, now: number): number | undefined {
  if (!time) return undefined;
  const t = Date.parse(time);
  return Number.isNaN(t) ? undefined : Math.max(0, (now - t) / 1000);
}

/** The agents of the snapshot, by node name, from their Leases. */
export function agentViews(snap: Pick<ClusterSnapshot, 'leases' | 'now'>): Map<string, AgentView> {
  const out = new Map<string, AgentView>();
  for (const l of snap.leases) {
    if (!l.metadata.name.startsWith(AGENT_LEASE_PREFIX)) continue;
    const node = l.spec?.holderIdentity || l.metadata.name.slice(AGENT_LEASE_PREFIX.length);
    out.set(node, agentView(node, l, snap.now));
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function agentView(node: string, l: LeaseObject, now: number): AgentView {
  const a = l.metadata.annotations ?? {};
  const published = a[AgentLeaseAnnotation.gossipMode];
  const duration = l.spec?.leaseDurationSeconds ?? 10;
  const age = ageSeconds(l.spec?.renewTime, now);
  return {
    node,
    mode: isSafetyMode(published) ? published : undefined,
    subnets: (a[AgentLeaseAnnotation.subnets] ?? '').split(',').filter((s) => s !== ''),
    membership: a[AgentLeaseAnnotation.membership] || undefined,
    ageSeconds: age,
    leaseDurationSeconds: duration,
    fresh: age !== undefined && age < duration,
  };
}

/** True when the agent may hold local addresses: a fresh Lease, in a mode that is not withdrawn. */
export function mayHold(a: AgentView): boolean {
  return a.fresh && a.mode !== undefined && !WITHDRAWN_MODES.has(a.mode);
}

/** The allocator's latest Warning about a Service (by uid when both carry one, else by namespace and name). */
export function latestAllocatorWarning(svc: Service, events: readonly EventObject[]): EventObject | undefined {
  let best: EventObject | undefined;
  let bestAt = -Infinity;
  for (const e of events) {
    if (e.type !== 'Warning') continue;
    if ((e.source?.component ?? e.reportingComponent) !== ALLOCATOR_COMPONENT && e.reportingComponent !== ALLOCATOR_COMPONENT) continue;
    const io = e.involvedObject;
    if (io.kind !== undefined && io.kind !== 'Service') continue;
    if (io.uid && svc.metadata.uid) {
      if (io.uid !== svc.metadata.uid) continue;
    } else if (io.name !== svc.metadata.name || (io.namespace ?? e.metadata.namespace) !== svc.metadata.namespace) continue;
    const at = Date.parse(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? '') || 0;
    if (at >= bestAt) {
      best = e;
      bestAt = at;
    }
  }
  return best;
}

/**
 * Each ServiceGroup's node selector, by name, read as the agents read it
 * (`groupNodeSelector` of @purelb/api). An invalid one selects no node here: an agent that
 * saw a valid one before keeps it, which one snapshot cannot know.
 */
export function groupSelectors(snap: Pick<ClusterSnapshot, 'serviceGroups'>): Map<string, GroupNodeSelector> {
  return new Map(snap.serviceGroups.map((sg) => [sg.metadata.name, groupNodeSelector(sg, undefined).selector]));
}

/** The node selector of the group `name` (every node for a group not in the snapshot, as the agents do). */
export function selectorOf(selectors: ReadonlyMap<string, GroupNodeSelector>, name: string | undefined): GroupNodeSelector {
  return (name === undefined ? undefined : selectors.get(name)) ?? ALL_NODES;
}

/** May `node` announce the addresses of a group with `selector`: the agents' rule (`candidacy`) over the snapshot's Node. */
export function nodeCandidacy(snap: Pick<ClusterSnapshot, 'nodes'>, node: string, selector: GroupNodeSelector): Candidacy {
  return candidacy(snap.nodes.find((n) => n.metadata.name === node), selector);
}

/** `namespace/name` of a Service, for messages. */
export function serviceRef(svc: Service): string {
  return `Service ${serviceKey(svc)}`;
}
