// `kubectl purelb election`: for every local address (one inside a subnet an agent
// publishes), who should hold it by the safety rule of @purelb/election and who announces
// it; `drain` shows where each address would go without that node.
//
// The rule, as the agents apply it: the candidates are the agents that may hold local
// addresses (a fresh Lease, a guard mode that is not withdrawn) whose Node the address's
// ServiceGroup accepts (`candidacy` of @purelb/api: eligible, and matched by the group's
// `spec.local.nodeSelector` when it has one); the holder is the node
// that announces the address while it stays a candidate able to announce it
// (stickiness), else the candidate with the lowest sha256(node#address) among those whose
// subnets contain it (`winner`). A holder other than the hash winner is therefore normal
// after a node came back; an announcer other than the holder is not.
import { type Candidacy, type GroupNodeSelector, Annotation, ingressIPs, serviceKey } from '@purelb/api';
import { canAnnounce, winner } from '@purelb/election';
import { type Family, formatAddress, parseAddress } from '@purelb/ipam-core';
import { type AgentView, agentViews, groupSelectors, mayHold, nodeCandidacy, selectorOf, servedServices } from './cluster-view.ts';
import { parseAnnouncer } from './services.ts';
import type { ClusterSnapshot, Problem } from './snapshot.ts';

export interface ElectionRow {
  readonly address: string;
  readonly family: Family;
  /** The Services that carry it (several when shared), `namespace/name`. */
  readonly services: readonly string[];
  /** The ServiceGroup it was allocated from (the first Service's `purelb.io/allocated-from`). */
  readonly group: string | undefined;
  /** Lowest sha256(node#address) among the candidates that can announce it. */
  readonly hashWinner: string | undefined;
  /** Who should hold it now: the announcer while it stays an able candidate, else the hash winner. */
  readonly shouldHold: string | undefined;
  /** The node(s) its announcing annotations name. */
  readonly announcedBy: readonly string[];
  /** With a drain: who would hold it once the drained node stops. */
  readonly afterDrain?: string | undefined;
  /**
   * `ok`, `sticky` (held by an able announcer that is not the hash winner), `unselected`
   * (its group's node selector accepts no candidate: nobody should hold it, a problem only
   * while somebody announces it), or what is wrong.
   */
  readonly state: 'ok' | 'sticky' | 'unselected' | 'unannounced' | 'mismatch' | 'conflict' | 'no-candidate';
}

export interface ElectionReport {
  /** The agents that may hold local addresses now, with their subnets. */
  readonly candidates: Readonly<Record<string, readonly string[]>>;
  readonly drain: string | undefined;
  readonly addresses: readonly ElectionRow[];
  /** Addresses of served Services that no agent's subnet contains (virtual: every node adds them). */
  readonly virtualAddresses: number;
  readonly problems: readonly Problem[];
}

/** Which node would hold `address` among `candidates`: the able announcer, else the hash winner. */
export function holderOf(address: string, announcer: string | undefined, candidates: ReadonlyMap<string, readonly string[]>): string | undefined {
  if (announcer !== undefined) {
    const subnets = candidates.get(announcer);
    if (subnets !== undefined && canAnnounce(subnets, address)) return announcer;
  }
  return winner(address, [...candidates].map(([name, subnets]) => ({ name, subnets })));
}

export function electionReport(snap: ClusterSnapshot, opts: { readonly drain?: string | undefined } = {}): ElectionReport {
  const agents = agentViews(snap);
  const candidates = new Map<string, readonly string[]>();
  for (const a of agents.values()) if (mayHold(a)) candidates.set(a.node, a.subnets);
  const allSubnets = [...agents.values()].flatMap((a) => a.subnets);

  // Every served address, with its Services and announcers.
  const byAddress = new Map<string, { family: Family; services: string[]; group: string | undefined; announcers: Set<string> }>();
  let virtualAddresses = 0;
  for (const svc of servedServices(snap)) {
    for (const ip of ingressIPs(svc)) {
      const a = parseAddress(ip);
      if (!a) continue;
      const text = formatAddress(a.family, a.value);
      if (!canAnnounce(allSubnets, text)) {
        virtualAddresses++;
        continue;
      }
      let e = byAddress.get(text);
      if (!e) byAddress.set(text, (e = { family: a.family, services: [], group: svc.metadata.annotations?.[Annotation.allocatedFrom], announcers: new Set() }));
      e.services.push(serviceKey(svc));
      const ann = parseAnnouncer(svc.metadata.annotations?.[a.family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6]);
      if (ann) e.announcers.add(ann.node);
    }
  }

  // The candidates of each group: those its node selector accepts (`candidacy`).
  const selectors = groupSelectors(snap);
  const groupCandidates = new Map<string | undefined, Map<string, readonly string[]>>();
  const candidatesOf = (group: string | undefined): Map<string, readonly string[]> => {
    let c = groupCandidates.get(group);
    if (!c) {
      const selector = selectorOf(selectors, group);
      groupCandidates.set(group, (c = new Map([...candidates].filter(([n]) => nodeCandidacy(snap, n, selector).may))));
    }
    return c;
  };
  const problems: Problem[] = [];
  const rows: ElectionRow[] = [];
  for (const [address, e] of [...byAddress].sort(([a], [b]) => compareAddresses(a, b))) {
    const announcedBy = [...e.announcers].sort();
    const announcer = announcedBy.length === 1 ? announcedBy[0] : undefined;
    const selector = selectorOf(selectors, e.group);
    const able = candidatesOf(e.group);
    const hashWinner = winner(address, [...able].map(([name, subnets]) => ({ name, subnets })));
    const shouldHold = holderOf(address, announcer, able);
    // Nobody should hold it because the group's selector leaves out every candidate that could.
    const unselected = shouldHold === undefined && selector.kind !== 'all' && holderOf(address, undefined, candidatesOf(undefined)) !== undefined;
    const object = `address ${address} (${e.services.map((s) => `Service ${s}`).join(', ')})`;
    const why = (node: string): string => whyNot(node, agents.get(node), address, nodeCandidacy(snap, node, selector), e.group, selector);
    let state: ElectionRow['state'];
    if (announcedBy.length > 1) {
      state = 'conflict';
      problems.push({ object, message: `announced by ${announcedBy.join(' and ')} at once; ${shouldHold ?? 'no node'} should hold it` });
    } else if (unselected) {
      state = 'unselected';
      if (announcer !== undefined) problems.push({ object, message: `announced by ${announcer}, but ${selectionText(e.group, selector)} accepts no candidate that could hold it: nobody should (${why(announcer)})` });
    } else if (shouldHold === undefined) {
      state = 'no-candidate';
      problems.push({ object, message: `no agent that may hold local addresses has a subnet containing it${announcer ? `; ${announcer} still announces it (${why(announcer)})` : ''}` });
    } else if (announcer === undefined) {
      state = 'unannounced';
      problems.push({ object, message: `nobody announces it; ${shouldHold} should` });
    } else if (announcer !== shouldHold) {
      state = 'mismatch';
      problems.push({ object, message: `announced by ${announcer}, but ${shouldHold} should hold it (${why(announcer)})` });
    } else {
      state = shouldHold === hashWinner ? 'ok' : 'sticky';
    }
    const row: ElectionRow = { address, family: e.family, services: e.services, group: e.group, hashWinner, shouldHold, announcedBy, state };
    if (opts.drain !== undefined) {
      const after = holderOf(address, shouldHold, new Map([...able].filter(([n]) => n !== opts.drain)));
      if (after === undefined && shouldHold !== undefined) problems.push({ object, message: `with ${opts.drain} drained, no agent could hold it` });
      rows.push({ ...row, afterDrain: after });
    } else rows.push(row);
  }
  return { candidates: Object.fromEntries(candidates), drain: opts.drain, addresses: rows, virtualAddresses, problems };
}

function selectionText(group: string | undefined, selector: GroupNodeSelector): string {
  return `ServiceGroup ${group ?? '-'}'s nodeSelector${selector.kind === 'none' ? ' (invalid)' : ''}`;
}

function whyNot(node: string, a: AgentView | undefined, address: string, c: Candidacy, group: string | undefined, selector: GroupNodeSelector): string {
  if (!c.may) {
    if (c.reason === 'ExcludedByLabel' || c.reason === 'NetworkUnavailable') return `${node} is not eligible: ${c.reason}`;
    if (c.reason === 'NodeUnknown') return `${node} has no Node object to match ${selectionText(group, selector)}`;
    if (c.reason === 'InvalidNodeSelector') return `${selectionText(group, selector)} selects no node`;
    return `${node} is not selected by ${selectionText(group, selector)}`;
  }
  if (!a) return `${node} has no agent Lease`;
  if (!a.fresh) return `${node}'s agent Lease is stale`;
  if (a.mode === undefined) return `${node}'s agent publishes no guard mode`;
  if (!mayHold(a)) return `${node}'s agent is in guard mode ${a.mode}, holding nothing`;
  if (!canAnnounce(a.subnets, address)) return `${node} publishes no subnet containing it`;
  return `${node} is an able candidate`;
}

function compareAddresses(a: string, b: string): number {
  const pa = parseAddress(a)!;
  const pb = parseAddress(b)!;
  if (pa.family !== pb.family) return pa.family === 'IPv4' ? -1 : 1;
  return pa.value < pb.value ? -1 : pa.value > pb.value ? 1 : 0;
}
