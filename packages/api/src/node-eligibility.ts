// Whether this node may announce addresses at all: a pure function of its Node object.

/** Kubernetes' own convention: a node with this label (any value) is left out of external load balancers. */
export const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** The Node fields the rule reads; everything else is dropped by `trimNodeView`. */
export interface NodeView {
  readonly metadata: {
    readonly name: string;
    readonly resourceVersion?: string | undefined;
    readonly labels?: Readonly<Record<string, string>> | undefined;
  };
  readonly status?: { readonly conditions?: readonly { readonly type: string; readonly status: string }[] | undefined } | undefined;
}

export type ExclusionReason = 'ExcludedByLabel' | 'NetworkUnavailable';
export const EXCLUSION_REASONS: readonly ExclusionReason[] = ['ExcludedByLabel', 'NetworkUnavailable'];

export type Eligibility = { readonly eligible: true } | { readonly eligible: false; readonly reason: ExclusionReason; readonly message: string };

/**
 * May the node take local addresses and add virtual ones. Not when it carries the
 * exclusion label (whatever its value), nor while its `NetworkUnavailable` condition is
 * True. A node whose object is not (yet) known is eligible: the agent behaves as it did
 * before it could read it, and a Node deleted under a running agent changes nothing.
 */
export function nodeEligibility(node: NodeView | undefined): Eligibility {
  if (node === undefined) return { eligible: true };
  const labels = node.metadata.labels ?? {};
  if (Object.hasOwn(labels, EXCLUDE_LABEL)) {
    return { eligible: false, reason: 'ExcludedByLabel', message: `node ${node.metadata.name} has the label ${EXCLUDE_LABEL}` };
  }
  const unavailable = node.status?.conditions?.find((c) => c.type === 'NetworkUnavailable');
  if (unavailable?.status === 'True') {
    return { eligible: false, reason: 'NetworkUnavailable', message: `node ${node.metadata.name} has the condition NetworkUnavailable=True` };
  }
  return { eligible: true };
}

/**
 * Keeps only what the agent reads of a Node: its labels (the exclusion label, and what
 * ServiceGroups' node selectors match) and the NetworkUnavailable condition.
 */
export function trimNodeView(raw: NodeView): NodeView {
  const conditions = (raw.status?.conditions ?? []).filter((c) => c.type === 'NetworkUnavailable').map((c) => ({ type: c.type, status: c.status }));
  return {
    metadata: { name: raw.metadata.name, resourceVersion: raw.metadata.resourceVersion, labels: { ...(raw.metadata.labels ?? {}) } },
    status: { conditions },
  };
}

/** What a change of a Node must be to matter to the agent: its labels or its NetworkUnavailable condition. */
export function sameNodeView(a: NodeView | undefined, b: NodeView | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const la = a.metadata.labels ?? {};
  const lb = b.metadata.labels ?? {};
  const ka = Object.keys(la);
  if (ka.length !== Object.keys(lb).length || ka.some((k) => !Object.hasOwn(lb, k) || la[k] !== lb[k])) return false;
  const nu = (n: NodeView): string | undefined => n.status?.conditions?.find((c) => c.type === 'NetworkUnavailable')?.status;
  return nu(a) === nu(b);
}
