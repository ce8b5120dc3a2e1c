// The node agent's Prometheus metrics (purelb_*).
import { Counter, Gauge, Histogram, MetricsRegistry, buildInfo, eventLoopLagHistogram, k8sRequestMetrics, processMetrics } from '@purelb/k8s-glue';
import type { Membership, SafetyMode } from '@purelb/election';
import type { NodePlan } from './plan.ts';
import { EXCLUSION_REASONS, type ExclusionReason } from '@purelb/api';
import { ARP_PROBLEM_REASONS, type ArpVerdict } from './arp-safety.ts';
import { VERSION } from './version.ts';

/** Buckets of purelb_address_takeover_duration_seconds: 10 ms to 1 min (a probe answered by another host, retried). */
export const TAKEOVER_DURATION_BUCKETS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const MODES: readonly SafetyMode[] = ['swim', 'settling', 'lease', 'lease-consensus', 'fenced', 'stalled'];

export interface AgentMetrics {
  readonly registry: MetricsRegistry;
  readonly garpSent: Counter<'family'>;
  /** purelb_event_loop_lag_seconds, fed by the agent's heartbeat. */
  readonly eventLoopLag: Histogram;
  readonly stalls: Counter;
  readonly probeConflicts: Counter<'family'>;
  /** purelb_address_takeover_duration_seconds: the rule lets this node take a local address -> the address is on the NIC. */
  readonly takeoverDuration: Histogram<'family'>;
  /** 1 while the LBNodeAgent configuration in use is the one written; 0 while a bad one is refused. */
  readonly configValid: Gauge;
  update(plan: NodePlan, mode: SafetyMode, liveMembers: number, node: string): void;
  /** purelb_node_excluded: 1 for the reason this node is excluded (undefined: it is not), 0 for the others. */
  nodeExcluded(reason: ExclusionReason | undefined): void;
  /** purelb_node_arp_config_safe and purelb_node_arp_config_problem{reason}: the last ARP check. */
  arpConfig(verdict: ArpVerdict): void;
  /** purelb_servicegroup_selected_nodes: per ServiceGroup with a node selector, the eligible members it selects. */
  groupSelection(counts: ReadonlyMap<string, number>): void;
}

export function createMetrics(membership: Membership): AgentMetrics {
  const registry = new MetricsRegistry();
  // Standard names for dashboards and alerts made for any Node service; the prefixed copy
  // for queries written against earlier releases.
  processMetrics(registry, ['', 'purelb_lbnodeagent_']);
  buildInfo(registry, 'lbnodeagent', VERSION);
  // purelb_k8s_request_duration_seconds{verb,code}: every API request of this process.
  k8sRequestMetrics(registry);
  const announced = new Gauge({ name: 'purelb_addresses_announced', help: 'Addresses this node holds, by kind (local: elected; virtual: on the virtual interface).', labelNames: ['kind', 'family'], registry });
  const won = new Gauge({ name: 'purelb_elections_won', help: 'Local addresses this node won.', registry });
  const lost = new Gauge({ name: 'purelb_elections_lost', help: 'Local addresses another node won.', registry });
  const members = new Gauge({ name: 'purelb_memberlist_members', help: 'Live members in this node\'s view (itself included).', registry });
  const isolation = new Gauge({
    name: 'purelb_guard_mode',
    help: '1 for the mode of the safety rule this node is in (swim, settling, lease, lease-consensus, fenced, stalled), 0 for the others.',
    labelNames: ['mode'],
    registry,
  });
  const awaiting = new Gauge({ name: 'purelb_addresses_awaiting', help: 'Local addresses this node should hold but waits for (a handover, or the fence after losing their announcer).', registry });
  const excluded = new Gauge({
    name: 'purelb_node_excluded',
    help: '1 while this node announces nothing for this reason (ExcludedByLabel: the node.kubernetes.io/exclude-from-external-load-balancers label; NetworkUnavailable: the Node condition is True), 0 otherwise.',
    labelNames: ['reason'],
    registry,
  });
  for (const r of EXCLUSION_REASONS) excluded.set({ reason: r }, 0);
  const arpSafe = new Gauge({
    name: 'purelb_node_arp_config_safe',
    help: '1 while this node\'s ARP settings are safe for local addresses (arp_ignore, arp_announce, kube-proxy\'s kube-ipvs0), 0 while they are not (purelb_node_arp_config_problem says why).',
    registry,
  });
  arpSafe.set(1);
  const arpProblem = new Gauge({
    name: 'purelb_node_arp_config_problem',
    help: '1 for each ARP problem found on this node (ArpIgnore, ArpAnnounce: kube-ipvs0 with ARP not strict, the node answers or names addresses it does not hold; ArpNoReply: arp_ignore 8 on a LAN link), 0 for the others.',
    labelNames: ['reason'],
    registry,
  });
  for (const r of ARP_PROBLEM_REASONS) arpProblem.set({ reason: r }, 0);
  const selected = new Gauge({
    name: 'purelb_servicegroup_selected_nodes',
    help: 'Per ServiceGroup with a spec.local.nodeSelector: the eligible members (live, not excluded) whose Node labels it matches, in this node\'s view. 0: the group\'s addresses are announced by no node.',
    labelNames: ['group'],
    registry,
  });
  const eventLoopLag = eventLoopLagHistogram(registry);
  const stalls = new Counter({ name: 'purelb_stalls_total', help: 'Event-loop stalls past the stall threshold (each withdraws local addresses until contact is fresh).', registry });
  const configValid = new Gauge({ name: 'purelb_lbnodeagent_config_valid', help: '1 while the LBNodeAgent in use is the one written, 0 while a bad one is refused (the last valid one is kept).', registry });
  configValid.set(1);
  const probeConflicts = new Counter({ name: 'purelb_probe_conflicts_total', help: 'Probes (ARP probe / DAD) before adding an address that another host answered.', labelNames: ['family'], registry });
  const takeoverDuration = new Histogram({
    name: 'purelb_address_takeover_duration_seconds',
    help: 'From the safety rule letting this node take a local address to the address being on its interface (ARP probe / DAD, the claim at the API server, the add), by family, in seconds.',
    labelNames: ['family'],
    buckets: TAKEOVER_DURATION_BUCKETS,
    registry,
  });
  const garpSent = new Counter({ name: 'purelb_garp_sent_total', help: 'Gratuitous ARP / unsolicited neighbour advertisement rounds sent.', labelNames: ['family'], registry });
  const counters = [
    ['probesSent', 'purelb_memberlist_probes_total', 'Membership probes sent.'],
    ['deaths', 'purelb_memberlist_deaths_total', 'Members this node declared dead.'],
    ['suspicions', 'purelb_memberlist_suspicions_total', 'Members this node suspected.'],
    ['bytesSent', 'purelb_memberlist_sent_bytes_total', 'Membership bytes sent.'],
    ['bytesReceived', 'purelb_memberlist_received_bytes_total', 'Membership bytes received.'],
  ] as const;
  for (const [field, name, help] of counters) {
    new Counter({ name, help, registry, collect() { this.reset(); this.inc(Number(membership.counters[field])); } });
  }
  new Counter({
    name: 'purelb_memberlist_dropped_total',
    help: 'Membership packets dropped, by reason (unsealed, forged, replayed, oversized, malformed, unexpected).',
    labelNames: ['reason'],
    registry,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(membership.counters.dropped)) this.inc({ reason }, Number(n));
    },
  });
  return {
    registry,
    garpSent,
    eventLoopLag,
    stalls,
    probeConflicts,
    takeoverDuration,
    configValid,
    arpConfig(verdict) {
      arpSafe.set(verdict.safe ? 1 : 0);
      for (const r of ARP_PROBLEM_REASONS) arpProblem.set({ reason: r }, verdict.problems.some((p) => p.reason === r) ? 1 : 0);
    },
    nodeExcluded(reason) {
      for (const r of EXCLUSION_REASONS) excluded.set({ reason: r }, r === reason ? 1 : 0);
    },
    groupSelection(counts) {
      selected.reset();
      for (const [group, n] of counts) selected.set({ group }, n);
    },
    update(plan, mode, liveMembers, node) {
      announced.reset();
      for (const w of plan.wanted.values()) announced.inc({ kind: w.kind, family: w.family });
      let w = 0;
      let l = 0;
      for (const winner of plan.elections.values()) if (winner === node) w++;
      else l++;
      won.set(w);
      lost.set(l);
      members.set(liveMembers);
      awaiting.set(plan.awaitingHandover.size);
      for (const m of MODES) isolation.set({ mode: m }, m === mode ? 1 : 0);
    },
  };
}
