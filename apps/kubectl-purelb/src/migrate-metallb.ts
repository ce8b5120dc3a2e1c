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
// - What has no equivalent is reported, never dropped silently.
import { Annotation, ALLOCATED_BY_VALUE, PURELB_API_VERSION, type Service, type ServiceGroup, ingressIPs, parseServiceGroup, serviceKey, withMetalLBAliases } from '@purelb/api';
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
      spec: { local: { ...(v4pools.length > 0 ? { v4pools } : {}), ...(v6pools.length > 0 ? { v6pools } : {}) } },
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

  advertisementNotes(input.metallb, notes);

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

function advertisementNotes(m: MetalLBConfig, notes: Problem[]): void {
  const advertised = new Set<string>();
  for (const l2 of [...m.l2Advertisements].sort(byName)) {
    const ref = `L2Advertisement ${l2.metadata.name}`;
    const s = l2.spec ?? {};
    const names = Array.isArray(s.ipAddressPools) ? (s.ipAddressPools as string[]) : [];
    const selectors = Array.isArray(s.ipAddressPoolSelectors) ? (s.ipAddressPoolSelectors as { matchLabels?: Record<string, string> }[]) : [];
    if (names.length === 0 && selectors.length === 0) for (const p of m.ipAddressPools) advertised.add(p.metadata.name);
    for (const n of names) advertised.add(n);
    for (const sel of selectors) {
      for (const p of m.ipAddressPools) {
        const labels = p.metadata.labels ?? {};
        if (Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v)) advertised.add(p.metadata.name);
      }
      if (sel && typeof sel === 'object' && 'matchExpressions' in sel) notes.push({ object: ref, field: 'spec.ipAddressPoolSelectors', message: 'matchExpressions are not evaluated by the migration; check which pools it selects' });
    }
    if (Array.isArray(s.nodeSelectors) && s.nodeSelectors.length > 0) {
      notes.push({ object: ref, field: 'spec.nodeSelectors', message: 'no equivalent: every eligible node may announce; keep a node out with the label node.kubernetes.io/exclude-from-external-load-balancers' });
    }
    if (Array.isArray(s.interfaces) && s.interfaces.length > 0) {
      notes.push({ object: ref, field: 'spec.interfaces', message: `no per-pool equivalent: the agent announces a local address on the interface whose subnet contains it (LBNodeAgent spec.local.localint selects the candidates, e.g. "${(s.interfaces as string[]).join('|')}")` });
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
