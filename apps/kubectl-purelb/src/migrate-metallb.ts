// `kubectl purelb migrate metallb`: MetalLB's configuration mapped to PureLB's, so that
// every Service keeps its addresses. A pure function of MetalLB's objects and the Services.
//
// - Each IPAddressPool becomes a ServiceGroup of the same name (so `metallb.io/address-pool:
//   NAME`, which the allocator reads as an alias, still names it); each entry of
//   `spec.addresses` (a CIDR or a range `first-last`) becomes a pool, in the subnet given
//   with --subnet that contains it, else in the smallest CIDR that covers it.
// - Every Service MetalLB serves gets the annotations that keep what it has: the allocator's
//   marks (`allocated-by: PureLB`, `allocated-from: GROUP`), which make the allocator adopt
//   its current addresses before it allocates anything; `service-group: GROUP`; its sharing
//   key; and `addresses` when MetalLB's `loadBalancerIPs` pinned them.
// - The nodes an L2Advertisement lets announce (`spec.nodeSelectors`, ORed) become the
//   ServiceGroup's `spec.local.nodeSelector` when they are one selector (or several equal
//   ones) for every L2Advertisement of the pool; anything else has no one-selector equivalent.
// - What has no equivalent is reported, never dropped silently.
import {
  type LabelSelector,
  Annotation,
  ALLOCATED_BY_VALUE,
  PURELB_API_VERSION,
  type Service,
  type ServiceGroup,
  formatLabelSelector,
  ingressIPs,
  labelSelectorProblem,
  parseServiceGroup,
  serviceKey,
  withMetalLBAliases,
} from '@purelb/api';
import { type Family, formatAddress, parseAddress, parseRangeText, parseSubnet } from '@purelb/ipam-core';
import type { Problem } from './snapshot.ts';

/** A MetalLB object, as read (metallb.io/v1beta1 or v1beta2). */
export interface MetalLBObject {
  readonly apiVersion?: string | undefined;
  readonly kind?: string | undefined;
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined; readonly labels?: Readonly<Record<string, string>> | undefined };
  readonly spec?: Readonly<Record<string, unknown>> | undefined;
}

export interface MetalLBConfig {
  readonly ipAddressPools: readonly MetalLBObject[];
  readonly l2Advertisements: readonly MetalLBObject[];
  /** BGPAdvertisements, BGPPeers, Communities, BFDProfiles: reported, never mapped. */
  readonly others: readonly MetalLBObject[];
}

export interface MigrationInput {
  readonly metallb: MetalLBConfig;
  readonly services: readonly Service[];
  /** PureLB's namespace (the ServiceGroups are written there). */
  readonly namespace: string;
  /** The nodes' LAN subnets (CIDR text): a pool inside one is a local pool of that subnet. */
  readonly subnets: readonly string[];
}

/** The annotations one Service gets (null removes one). */
export interface ServiceMigration {
  readonly namespace: string;
  readonly name: string;
  /** Its current addresses, which it keeps. */
  readonly addresses: readonly string[];
  readonly group: string;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface MigrationPlan {
  readonly serviceGroups: readonly ServiceGroup[];
  readonly services: readonly ServiceMigration[];
  /** What has no equivalent, or behaves differently in PureLB: to read before applying. */
  readonly notes: readonly Problem[];
  /** What stops the migration (--apply refuses while there is one). */
  readonly problems: readonly Problem[];
}

interface MappedPool {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
  readonly group: string;
}

export function planMetalLBMigration(input: MigrationInput): MigrationPlan {
  const notes: Problem[] = [];
  const problems: Problem[] = [];
  const subnets = input.subnets.map((s) => ({ text: s, subnet: parseSubnet(s) }));
  const groups: ServiceGroup[] = [];
  const ranges: MappedPool[] = [];
  const advertised = advertisements(input.metallb);

  for (const pool of [...input.metallb.ipAddressPools].sort(byName)) {
    const name = pool.metadata.name;
    const ref = `IPAddressPool ${pool.metadata.namespace ?? ''}/${name}`.replace(' /', ' ');
    const spec = pool.spec ?? {};
    const entries = Array.isArray(spec.addresses) ? (spec.addresses as unknown[]) : [];
    if (entries.length === 0) problems.push({ object: ref, field: 'spec.addresses', message: 'no addresses' });
    const v4pools: { pool: string; subnet: string; aggregation: string }[] = [];
    const v6pools: { pool: string; subnet: string; aggregation: string }[] = [];
    entries.forEach((e, i) => {
      const field = `spec.addresses[${i}]`;
      const text = typeof e === 'string' ? e.replace(/\s*-\s*/, '-').trim() : '';
      const r = text.includes('/') ? cidrRange(text) : parseRangeText(text);
      if (!r) {
        problems.push({ object: ref, field, message: `${JSON.stringify(e)} is neither a CIDR nor a range "first-last"` });
        return;
      }
      const inside = subnets.find((s) => s.subnet && s.subnet.family === r.family && contains(s.subnet, r.first) && contains(s.subnet, r.last));
      const subnet = inside?.text ?? covering(r.family, r.first, r.last);
      if (!inside) {
        notes.push({
          object: ref,
          field,
          message: `no --subnet contains ${text}; its subnet is set to ${subnet}. An address outside every node's LAN subnet is a virtual address in PureLB (added to kube-lb0 on every node and reached by routing), where MetalLB answered ARP for it; and PureLB never hands out the network and broadcast addresses of ${subnet}`,
        });
      }
      (r.family === 'IPv4' ? v4pools : v6pools).push({ pool: text, subnet, aggregation: 'default' });
      ranges.push({ family: r.family, first: r.first, last: r.last, group: name });
    });
    if (spec.autoAssign === false && name === 'default') {
      notes.push({ object: ref, field: 'spec.autoAssign', message: 'false, but PureLB gives Services without an annotation addresses from the ServiceGroup named default: rename it, or expect new Services to get addresses from it' });
    }
    if (spec.avoidBuggyIPs === true) {
      notes.push({ object: ref, field: 'spec.avoidBuggyIPs', message: 'PureLB skips the network and broadcast addresses of each pool\'s subnet (for a /24, the .0 and .255 that avoidBuggyIPs skips); in other subnets, .0 and .255 addresses inside the range may be handed out' });
    }
    if (spec.serviceAllocation !== undefined) {
      notes.push({ object: ref, field: 'spec.serviceAllocation', message: 'no equivalent (priority and namespace/Service selectors): Services choose their ServiceGroup with purelb.io/service-group' });
    }
    const sg: ServiceGroup = {
      apiVersion: PURELB_API_VERSION,
      kind: 'ServiceGroup',
      metadata: { name, namespace: input.namespace },
      spec: { local: { ...(v4pools.length > 0 ? { v4pools } : {}), ...(v6pools.length > 0 ? { v6pools } : {}), ...(advertised.nodeSelectors.has(name) ? { nodeSelector: advertised.nodeSelectors.get(name)! } : {}) } },
    };
    if (v4pools.length + v6pools.length > 0) {
      const parsed = parseServiceGroup(sg);
      if (!parsed.ok) problems.push({ object: `ServiceGroup ${input.namespace}/${name} (from ${ref})`, field: parsed.field, message: parsed.message });
      else groups.push(sg);
    }
  }
  const autoAssigned = input.metallb.ipAddressPools.filter((p) => p.spec?.autoAssign !== false).map((p) => p.metadata.name);
  if (autoAssigned.length > 0 && !autoAssigned.includes('default')) {
    notes.push({
      object: `IPAddressPool ${autoAssigned.join(', ')}`,
      field: 'spec.autoAssign',
      message: 'MetalLB gives Services without an annotation addresses from any pool with autoAssign; PureLB only from the ServiceGroup named default, which this migration does not create: create one, or annotate new Services with purelb.io/service-group',
    });
  }

  notes.push(...advertised.notes);

  const services: ServiceMigration[] = [];
  for (const svc of [...input.services].sort((a, b) => (serviceKey(a) < serviceKey(b) ? -1 : 1))) {
    if (svc.spec?.type !== 'LoadBalancer' || svc.spec.loadBalancerClass !== undefined) continue;
    const ips = ingressIPs(svc);
    if (ips.length === 0) continue;
    const ref = `Service ${serviceKey(svc)}`;
    const holding = ips.map((ip) => {
      const a = parseAddress(ip);
      return a && ranges.find((r) => r.family === a.family && a.value >= r.first && a.value <= r.last);
    });
    if (holding.some((h) => !h)) {
      const outside = ips.filter((_, i) => !holding[i]);
      problems.push({ object: ref, field: 'status.loadBalancer.ingress', message: `${outside.join(', ')} is in no IPAddressPool: no ServiceGroup would hold it` });
      continue;
    }
    const groupsHeld = [...new Set(holding.map((h) => h!.group))];
    if (groupsHeld.length > 1) {
      problems.push({ object: ref, field: 'status.loadBalancer.ingress', message: `its addresses come from several IPAddressPools (${groupsHeld.join(', ')}); a PureLB Service takes all its addresses from one ServiceGroup` });
      continue;
    }
    const group = groupsHeld[0]!;
    const { annotations: read, aliases } = withMetalLBAliases(svc.metadata.annotations);
    const key = read[Annotation.allowSharedIp]?.trim();
    const pinned = read[Annotation.addresses] !== undefined && read[Annotation.addresses]!.trim() !== '';
    const asked = read[Annotation.serviceGroup];
    if (asked !== undefined && asked !== group) {
      notes.push({ object: ref, field: aliases.find((x) => x.to === Annotation.serviceGroup)?.from ?? Annotation.serviceGroup, message: `asks for pool ${asked}, but its addresses are in ${group}; it keeps them, and is annotated with ${group}` });
    }
    services.push({
      namespace: svc.metadata.namespace ?? '',
      name: svc.metadata.name,
      addresses: ips,
      group,
      annotations: {
        [Annotation.allocatedBy]: ALLOCATED_BY_VALUE,
        [Annotation.allocatedFrom]: group,
        [Annotation.serviceGroup]: group,
        ...(pinned ? { [Annotation.addresses]: ips.join(',') } : {}),
        ...(key ? { [Annotation.allowSharedIp]: key } : {}),
      },
    });
  }
  return { serviceGroups: groups, services, notes, problems };
}

/** The nodes one L2Advertisement lets announce: every node, one label selector, or a set no one selector expresses. */
type AdvertisedNodes = { readonly kind: 'all' } | { readonly kind: 'selector'; readonly selector: LabelSelector; readonly key: string } | { readonly kind: 'inexpressible' };

const EXCLUSION_HINT = 'keep a node out with the label node.kubernetes.io/exclude-from-external-load-balancers';

/**
 * `spec.nodeSelectors` of an L2Advertisement: none (or an empty one) is every node; one
 * selector, or several equal ones, is that selector; several different ones (ORed by
 * MetalLB) or an invalid one have no equivalent, said in `notes`.
 */
function advertisedNodes(ref: string, raw: unknown, notes: Problem[]): AdvertisedNodes {
  if (!Array.isArray(raw) || raw.length === 0) return { kind: 'all' };
  const found = new Map<string, LabelSelector>();
  for (const [i, s] of (raw as unknown[]).entries()) {
    const p = labelSelectorProblem(s, `spec.nodeSelectors[${i}]`);
    if (p) {
      notes.push({ object: ref, field: p.field, message: `${p.message}: no equivalent; the ServiceGroups of its pools get no node selector (every eligible node may announce)` });
      return { kind: 'inexpressible' };
    }
    const sel = canonicalSelector(s as LabelSelector);
    if (Object.keys(sel).length === 0) return { kind: 'all' };
    found.set(JSON.stringify(sel), sel);
  }
  if (found.size === 1) {
    const [[key, selector]] = [...found] as [[string, LabelSelector]];
    return { kind: 'selector', selector, key };
  }
  notes.push({
    object: ref,
    field: 'spec.nodeSelectors',
    message: `no equivalent: ${found.size} different selectors (${[...found.values()].map(formatLabelSelector).join(' OR ')}), which MetalLB ORs; a ServiceGroup's spec.local.nodeSelector is one selector, so the ServiceGroups of its pools get none (every eligible node may announce): label the nodes so that one selector matches them, or ${EXCLUSION_HINT}`,
  });
  return { kind: 'inexpressible' };
}

/** A label selector with its keys, expressions and values in one order, and nothing else. */
function canonicalSelector(s: LabelSelector): LabelSelector {
  const labels = Object.entries(s.matchLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const exprs = (s.matchExpressions ?? [])
    .map((e) => ({ key: e.key, operator: e.operator, ...(e.values && e.values.length > 0 ? { values: [...new Set(e.values)].sort() } : {}) }))
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return { ...(labels.length > 0 ? { matchLabels: Object.fromEntries(labels) } : {}), ...(exprs.length > 0 ? { matchExpressions: exprs } : {}) };
}

/**
 * Which pools the L2Advertisements announce, and, per pool, the node selector its
 * ServiceGroup gets: the one selector every L2Advertisement of the pool has. A pool
 * announced on every node by one of them gets none (MetalLB ORs the L2Advertisements).
 */
function advertisements(m: MetalLBConfig): { readonly notes: Problem[]; readonly nodeSelectors: Map<string, LabelSelector> } {
  const notes: Problem[] = [];
  const advertised = new Set<string>();
  const byPool = new Map<string, { readonly l2: string; readonly nodes: AdvertisedNodes }[]>();
  for (const l2 of [...m.l2Advertisements].sort(byName)) {
    const ref = `L2Advertisement ${l2.metadata.name}`;
    const s = l2.spec ?? {};
    const names = Array.isArray(s.ipAddressPools) ? (s.ipAddressPools as string[]) : [];
    const selectors = Array.isArray(s.ipAddressPoolSelectors) ? (s.ipAddressPoolSelectors as { matchLabels?: Record<string, string> }[]) : [];
    // The pools this one announces.
    const mine = new Set<string>();
    if (names.length === 0 && selectors.length === 0) for (const p of m.ipAddressPools) mine.add(p.metadata.name);
    for (const n of names) mine.add(n);
    for (const sel of selectors) {
      for (const p of m.ipAddressPools) {
        const labels = p.metadata.labels ?? {};
        if (Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v)) mine.add(p.metadata.name);
      }
      if (sel && typeof sel === 'object' && 'matchExpressions' in sel) notes.push({ object: ref, field: 'spec.ipAddressPoolSelectors', message: 'matchExpressions are not evaluated by the migration; check which pools it selects' });
    }
    const nodes = advertisedNodes(ref, s.nodeSelectors, notes);
    for (const p of mine) {
      advertised.add(p);
      byPool.set(p, [...(byPool.get(p) ?? []), { l2: l2.metadata.name, nodes }]);
    }
    if (Array.isArray(s.interfaces) && s.interfaces.length > 0) {
      notes.push({ object: ref, field: 'spec.interfaces', message: `no per-pool equivalent: the agent announces a local address on the interface whose subnet contains it (LBNodeAgent spec.local.localint selects the candidates, e.g. "${(s.interfaces as string[]).join('|')}")` });
    }
  }
  const nodeSelectors = new Map<string, LabelSelector>();
  const pools = new Set(m.ipAddressPools.map((p) => p.metadata.name));
  for (const [pool, advs] of [...byPool].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!pools.has(pool) || advs.some((a) => a.nodes.kind === 'all')) continue;
    const keys = new Set(advs.map((a) => (a.nodes.kind === 'selector' ? a.nodes.key : `inexpressible:${a.l2}`)));
    const first = advs[0]!.nodes;
    if (keys.size === 1 && first.kind === 'selector') nodeSelectors.set(pool, first.selector);
    else if (advs.length > 1) {
      const each = advs.map((a) => `${a.l2} (${a.nodes.kind === 'selector' ? formatLabelSelector(a.nodes.selector) : 'no one selector'})`).join(', ');
      notes.push({ object: `IPAddressPool ${pool}`, message: `announced by L2Advertisements with different spec.nodeSelectors, ${each}, which MetalLB ORs: no equivalent; its ServiceGroup gets no node selector (every eligible node may announce): give them one selector, or ${EXCLUSION_HINT}` });
    }
  }
  for (const p of m.ipAddressPools) {
    if (!advertised.has(p.metadata.name)) {
      notes.push({ object: `IPAddressPool ${p.metadata.name}`, message: 'no L2Advertisement selects it (MetalLB did not answer ARP for it); PureLB announces every pool\'s addresses' });
    }
  }
  for (const o of [...m.others].sort(byName)) {
    const what = o.kind === 'BGPAdvertisement' ? 'PureLB does not speak BGP: virtual addresses go on kube-lb0 and routing software on the nodes (BIRD, FRR) advertises them; see docs/virtual-addresses-and-routing.md' : o.kind === 'Community' ? 'BGP communities are set in the routing software that advertises kube-lb0' : o.kind === 'BFDProfile' ? 'BFD is configured in the routing software that advertises kube-lb0' : 'BGP sessions are configured in the routing software that advertises kube-lb0';
    notes.push({ object: `${o.kind ?? 'object'} ${o.metadata.name}`, message: `no equivalent: ${what}` });
  }
  return { notes, nodeSelectors };
}

function byName(a: MetalLBObject, b: MetalLBObject): number {
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

function cidrRange(text: string): { family: Family; first: bigint; last: bigint } | undefined {
  const s = parseSubnet(text);
  if (!s) return undefined;
  const bits = s.family === 'IPv4' ? 32 : 128;
  return { family: s.family, first: s.network, last: s.network | ((1n << BigInt(bits - s.prefixLength)) - 1n) };
}

function contains(s: { family: Family; network: bigint; prefixLength: number }, v: bigint): boolean {
  const bits = s.family === 'IPv4' ? 32 : 128;
  return v >> BigInt(bits - s.prefixLength) === s.network >> BigInt(bits - s.prefixLength);
}

/** The smallest CIDR that holds first..last. */
function covering(family: Family, first: bigint, last: bigint): string {
  const bits = family === 'IPv4' ? 32 : 128;
  let p = bits;
  while (p > 0 && first >> BigInt(bits - p) !== last >> BigInt(bits - p)) p--;
  const network = p === 0 ? 0n : (first >> BigInt(bits - p)) << BigInt(bits - p);
  return `${formatAddress(family, network)}/${p}`;
}
