// `kubectl purelb election`: for every local address (one inside a subnet an agent
// publishes), who should hold it by the safety rule of @purelb/election and who announces
// it; `drain` shows where each address would go without that node.
//
// The rule, as the agents apply it: the candidates are the agents that may hold local
// addresses (a fresh Lease, a guard mode that is not withdrawn); the holder is the node
// that announces the address while it stays a candidate able to announce it
// (stickiness), else the candidate with the lowest sha256(node#address) among those whose
// subnets contain it (`winner`). A holder other than the hash winner is therefore normal
// after a node came back; an announcer other than the holder is not.
import { Annotation, ingressIPs, serviceKey } from '@purelb/api';
import { canAnnounce, winner } from '@purelb/election';
import { type Family, formatAddress, parseAddress } from '@purelb/ipam-core';
import { type AgentView, agentViews, mayHold, servedServices } from './cluster-view.ts';
import { parseAnnouncer } from './services.ts';
import type { ClusterSnapshot, Problem } from './snapshot.ts';

export interface ElectionRow {
  readonly address: string;
  readonly family: Family;
  /** The Services that carry it (several when shared), `namespace/name`. */
  readonly services: readonly string[];
  /** Lowest sha256(node#address) among the candidates that can announce it. */
  readonly hashWinner: string | undefined;
  /** Who should hold it now: the announcer while it stays an able candidate, else the hash winner. */
  readonly shouldHold: string | undefined;
  /** The node(s) its announcing annotations name. */
  readonly announcedBy: readonly string[];
  /** With a drain: who would hold it once the drained node stops. */
  readonly afterDrain?: string | undefined;
  /** `ok`, `sticky` (held by an able announcer that is not the hash winner), or what is wrong. */
  readonly state: 'ok' | 'sticky' | 'unannounced' | 'mismatch' | 'conflict' | 'no-candidate';
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
  const byAddress = new Map<string, { family: Family; services: string[]; announcers: Set<string> }>();
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
      if (!e) byAddress.set(text, (e = { family: a.family, services: [], announcers: new Set() }));
      e.services.push(serviceKey(svc));
      const ann = parseAnnouncer(svc.metadata.annotations?.[a.family === 'IPv4' ? Annotation.announcingIPv4 : Annotation.announcingIPv6]);
      if (ann) e.announcers.add(ann.node);
    }
  }

  const drained = opts.drain === undefined ? undefined : new Map([...candidates].filter(([n]) => n !== opts.drain));
  const problems: Problem[] = [];
  const rows: ElectionRow[] = [];
  for (const [address, e] of [...byAddress].sort(([a], [b]) => compareAddresses(a, b))) {
    const announcedBy = [...e.announcers].sort();
    const announcer = announcedBy.length === 1 ? announcedBy[0] : undefined;
    const hashWinner = winner(address, [...candidates].map(([name, subnets]) => ({ name, subnets })));
    const shouldHold = holderOf(address, announcer, candidates);
    const object = `address ${address} (${e.services.map((s) => `Service ${s}`).join(', ')})`;
    let state: ElectionRow['state'];
    if (announcedBy.length > 1) {
      state = 'conflict';
      problems.push({ object, message: `announced by ${announcedBy.join(' and ')} at once; ${shouldHold ?? 'no node'} should hold it` });
    } else if (shouldHold === undefined) {
      state = 'no-candidate';
      problems.push({ object, message: `no agent that may hold local addresses has a subnet containing it${announcer ? `; ${announcer} still announces it (${whyNot(announcer, agents.get(announcer), address)})` : ''}` });
    } else if (announcer === undefined) {
      state = 'unannounced';
      problems.push({ object, message: `nobody announces it; ${shouldHold} should` });
    } else if (announcer !== shouldHold) {
      state = 'mismatch';
      problems.push({ object, message: `announced by ${announcer}, but ${shouldHold} should hold it (${whyNot(announcer, agents.get(announcer), address)})` });
    } else {
      state = shouldHold === hashWinner ? 'ok' : 'sticky';
    }
    const row: ElectionRow = { address, family: e.family, services: e.services, hashWinner, shouldHold, announcedBy, state };
    if (drained) {
      const after = holderOf(address, shouldHold, drained);
      if (after === undefined) problems.push({ object, message: `with ${opts.drain} drained, no agent could hold it` });
      rows.push({ ...row, afterDrain: after });
    } else rows.push(row);
  }
  return { candidates: Object.fromEntries(candidates), drain: opts.drain, addresses: rows, virtualAddresses, problems };
}

function whyNot(node: string, a: AgentView | undefined, address: string): string {
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
