// What a Node says about itself that the agent acts on: whether it is left out of load
// balancing (from the Node object, the truth the agent reads too) and whether its ARP
// settings are safe for local addresses (from the newest Event its agent wrote about it).
import { type ExclusionReason, EXCLUDE_LABEL, nodeEligibility } from '@purelb/api';
import type { EventObject, NodeObject } from './snapshot.ts';

export { EXCLUDE_LABEL };
/** The component name the node agents' Events carry. */
export const AGENT_COMPONENT = 'purelb-lbnodeagent';
/** The reasons of the agent's ARP-check Events on its Node, as apps/lbnodeagent writes them. */
export const ArpEventReason = { unsafe: 'UnsafeARPConfig', safe: 'ARPConfigSafe' } as const;

/** Why a node announces nothing, as the agent decides it; undefined when it may announce. */
export interface NodeExclusion {
  readonly reason: ExclusionReason;
  readonly message: string;
}

/** The agent's rule (`nodeEligibility` of @purelb/api): the exclusion label first, then NetworkUnavailable=True. */
export function nodeExclusion(node: NodeObject | undefined): NodeExclusion | undefined {
  const e = nodeEligibility(node);
  if (e.eligible) return undefined;
  return { reason: e.reason, message: e.reason === 'ExcludedByLabel' ? `labelled ${EXCLUDE_LABEL}` : 'condition NetworkUnavailable=True' };
}

/** The ARP settings of a node as its agent last reported them. */
export interface ArpReport {
  /** `unsafe`: the newest report is an UnsafeARPConfig Warning; `safe`: an ARPConfigSafe; `unreported`: neither is there. */
  readonly state: 'safe' | 'unsafe' | 'unreported';
  /** The Event's message (what is wrong and how to fix it). */
  readonly message: string | undefined;
  /** When the agent last reported it (the Event's lastTimestamp). */
  readonly at: string | undefined;
}

/**
 * The newest ARP-check Event the agent wrote about `node` (involvedObject Node `node`,
 * component purelb-lbnodeagent). The agent reports a change once, so the newest one is
 * the node's state; with none, the agent found nothing wrong since the API server last
 * expired Events (or it predates the check).
 */
export function latestArpReport(node: string, events: readonly EventObject[]): ArpReport {
  let best: EventObject | undefined;
  let bestKey: readonly [number, string] = [-Infinity, ''];
  for (const e of events) {
    if (e.reason !== ArpEventReason.unsafe && e.reason !== ArpEventReason.safe) continue;
    if ((e.source?.component ?? e.reportingComponent) !== AGENT_COMPONENT && e.reportingComponent !== AGENT_COMPONENT) continue;
    if ((e.involvedObject.kind ?? 'Node') !== 'Node' || e.involvedObject.name !== node) continue;
    const key = [eventTime(e), e.metadata.name] as const;
    if (key[0] > bestKey[0] || (key[0] === bestKey[0] && key[1] > bestKey[1])) {
      best = e;
      bestKey = key;
    }
  }
  if (!best) return { state: 'unreported', message: undefined, at: undefined };
  return { state: best.reason === ArpEventReason.unsafe ? 'unsafe' : 'safe', message: best.message, at: best.lastTimestamp ?? best.eventTime ?? best.firstTimestamp ?? undefined };
}

/**
 * When an Event last happened. The API server keeps these timestamps to the second; the
 * tie-break is the name, which the agent's recorder makes from the creation time in
 * nanoseconds, so of two reports within one second the later created wins.
 */
function eventTime(e: EventObject): number {
  return Date.parse(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? '') || 0;
}
