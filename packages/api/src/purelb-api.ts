// The PureLB API as TypeScript: the purelb.io/v1 kinds, the Service fields PureLB reads and
// writes, and the annotation names. Compatible with PureLB v1 manifests.
import type { GroupSpec } from '@purelb/ipam-core';
import type { Condition } from '@purelb/k8s-glue';
import { isReadAnnotation } from './metallb-aliases.ts';
import type { LabelSelector } from './label-selector.ts';

export const PURELB_API_GROUP = 'purelb.io';
export const PURELB_API_VERSION = 'purelb.io/v1';
/** `spec.loadBalancerClass` that names PureLB. */
export const PURELB_LOAD_BALANCER_CLASS = 'purelb.io/purelb';

/** Service annotations (prefix `purelb.io/`). */
export const Annotation = {
  /** Set by users: the ServiceGroup to allocate from. */
  serviceGroup: 'purelb.io/service-group',
  /** Set by users: specific addresses, one per family, comma separated. */
  addresses: 'purelb.io/addresses',
  /** Set by users: the sharing key. */
  allowSharedIp: 'purelb.io/allow-shared-ip',
  /** Set by the allocator: always `PureLB`. */
  allocatedBy: 'purelb.io/allocated-by',
  /** Set by the allocator: the ServiceGroup the addresses came from. */
  allocatedFrom: 'purelb.io/allocated-from',
  /** Set by the node agent that announces the IPv4 address: `node,interface`. */
  announcingIPv4: 'purelb.io/announcing-IPv4',
  /** Set by the node agent that announces the IPv6 address: `node,interface`. */
  announcingIPv6: 'purelb.io/announcing-IPv6',
} as const;

export const ALLOCATED_BY_VALUE = 'PureLB';

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly uid?: string | undefined;
  readonly resourceVersion?: string | undefined;
  readonly generation?: number | undefined;
  readonly creationTimestamp?: string | undefined;
  readonly deletionTimestamp?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly annotations?: Readonly<Record<string, string>> | undefined;
}

// --- ServiceGroup -------------------------------------------------------------

/**
 * `spec.local`: the pool forms ipam-core accepts, without the name (that is the object's),
 * and the nodes that may announce the group's addresses.
 */
export type LocalPoolsSpec = Omit<GroupSpec, 'name'> & {
  /** Only nodes whose labels match announce the group's addresses (absent: every eligible node). */
  readonly nodeSelector?: LabelSelector | undefined;
};

/** The head the typed objects below share (the informer's KubeObject is the least a cache needs). */
export interface ApiObject {
  readonly apiVersion?: string | undefined;
  readonly kind?: string | undefined;
  readonly metadata: ObjectMeta;
}

export interface NetboxSpec {
  readonly url: string;
  readonly tenant?: string | undefined;
  readonly aggregation?: string | undefined;
  readonly prefix?: string | undefined;
  readonly prefixId?: number | undefined;
  readonly ipRangeId?: number | undefined;
  readonly legacyReserved?: boolean | undefined;
  readonly secretName?: string | undefined;
}

export interface PoolUsage {
  readonly size?: string | undefined;
  readonly inUse?: string | undefined;
  /** Free addresses never handed out: a Node's own, a subnet's network/broadcast/anycast. */
  readonly excluded?: string | undefined;
  readonly usage?: string | undefined;
}

export interface ServiceGroupStatus {
  readonly observedGeneration?: number | undefined;
  readonly conditions?: readonly Condition[] | undefined;
  readonly ipv4?: PoolUsage | undefined;
  readonly ipv6?: PoolUsage | undefined;
}

export interface ServiceGroup extends ApiObject {
  readonly spec: { readonly local?: LocalPoolsSpec | undefined; readonly netbox?: NetboxSpec | undefined };
  readonly status?: ServiceGroupStatus | undefined;
}

// --- LBNodeAgent --------------------------------------------------------------

export interface LBNodeAgent extends ApiObject {
  readonly spec: {
    readonly local?: {
      readonly extlbint?: string | undefined;
      readonly localint?: string | undefined;
      readonly sendgarp?: boolean | undefined;
      readonly setARPSysctls?: boolean | undefined;
    } | undefined;
  };
}

// --- Node (the addresses the allocator keeps out of every pool) ---------------------

export interface NodeAddress {
  /** `InternalIP`, `ExternalIP`, `Hostname`, `InternalDNS`, `ExternalDNS`. */
  readonly type: string;
  readonly address: string;
}

export interface Node extends ApiObject {
  readonly status?: { readonly addresses?: readonly NodeAddress[] | undefined } | undefined;
}

/** Keeps only a Node's name and addresses: a cache of every Node stays small. */
export function trimNode(raw: Node): Node {
  const m = raw.metadata;
  return {
    metadata: { name: m.name, uid: m.uid, resourceVersion: m.resourceVersion },
    status: { addresses: (raw.status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address })) },
  };
}

// --- Service (the fields PureLB uses) -------------------------------------------

export interface ServicePortSpec {
  readonly name?: string | undefined;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP' | undefined;
  readonly port: number;
}

export interface LoadBalancerIngress {
  readonly ip?: string | undefined;
  readonly hostname?: string | undefined;
  readonly ipMode?: string | undefined;
}

export interface Service extends ApiObject {
  readonly spec: {
    readonly type?: string | undefined;
    readonly loadBalancerClass?: string | undefined;
    readonly loadBalancerIP?: string | undefined;
    readonly ipFamilies?: readonly ('IPv4' | 'IPv6')[] | undefined;
    readonly ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack' | undefined;
    readonly externalTrafficPolicy?: 'Cluster' | 'Local' | undefined;
    readonly ports?: readonly ServicePortSpec[] | undefined;
  };
  readonly status?: { readonly loadBalancer?: { readonly ingress?: readonly LoadBalancerIngress[] | undefined } | undefined } | undefined;
}

/**
 * Keeps only what PureLB reads of a Service, so a cache of thousands stays small:
 * managedFields, selectors, cluster IPs and other annotations are dropped (MetalLB's
 * Service annotations are kept: they are read as aliases of ours).
 */
export function trimService(raw: Service): Service {
  const m = raw.metadata;
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.annotations ?? {})) if (isReadAnnotation(k)) annotations[k] = v;
  const s = raw.spec ?? {};
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
      annotations,
    },
    spec: {
      type: s.type,
      loadBalancerClass: s.loadBalancerClass,
      loadBalancerIP: s.loadBalancerIP,
      ipFamilies: s.ipFamilies,
      ipFamilyPolicy: s.ipFamilyPolicy,
      externalTrafficPolicy: s.externalTrafficPolicy,
      ports: (s.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port })),
    },
    status: { loadBalancer: { ingress: (raw.status?.loadBalancer?.ingress ?? []).map((i) => ({ ip: i.ip })) } },
  };
}

/** The ingress IPs of a Service, in order. */
export function ingressIPs(svc: Service): string[] {
  const out: string[] = [];
  for (const i of svc.status?.loadBalancer?.ingress ?? []) if (i.ip) out.push(i.ip);
  return out;
}

export function serviceKey(svc: { metadata: ObjectMeta }): string {
  return svc.metadata.namespace ? `${svc.metadata.namespace}/${svc.metadata.name}` : svc.metadata.name;
}

/** The ipam-core group for a ServiceGroup with `spec.local` (unchecked: see parseServiceGroup). */
export function localGroupSpec(sg: ServiceGroup): GroupSpec {
  const { nodeSelector: _, ...pools } = sg.spec.local ?? {};
  return { ...pools, name: sg.metadata.name };
}
