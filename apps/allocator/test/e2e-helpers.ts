// Helpers for the allocator's end-to-end suites: Services, ServiceGroups and Events
// through the lab's real API server. Not a test file.
import { type KubeClient, PURELB_NAMESPACE, waitFor } from '@purelb/lab';

export const NS = 'e2e';

export interface SvcOptions {
  readonly families?: ('IPv4' | 'IPv6')[];
  readonly policy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  readonly annotations?: Record<string, string>;
  readonly ports?: { port: number; protocol?: 'TCP' | 'UDP' }[];
  readonly loadBalancerClass?: string;
  readonly loadBalancerIP?: string;
  readonly type?: string;
}

export interface SvcView {
  metadata: { name: string; resourceVersion: string; annotations?: Record<string, string> };
  spec: { type: string };
  status?: { loadBalancer?: { ingress?: { ip: string }[] } };
}

export function ips(s: SvcView): string[] {
  return (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
}

export async function ensureNamespace(admin: KubeClient, ns = NS): Promise<void> {
  const r = await admin.raw('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  if (r.status !== 201 && r.status !== 409) throw new Error(`namespace ${ns}: HTTP ${r.status}`);
}

export async function createService(admin: KubeClient, name: string, o: SvcOptions = {}, ns = NS): Promise<void> {
  const families = o.families ?? ['IPv4'];
  await admin.create(`/api/v1/namespaces/${ns}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, annotations: o.annotations ?? {} },
    spec: {
      type: o.type ?? 'LoadBalancer',
      ipFamilies: families,
      ipFamilyPolicy: o.policy ?? (families.length > 1 ? 'RequireDualStack' : 'SingleStack'),
      ports: (o.ports ?? [{ port: 80 }]).map((p) => ({ name: `p${p.port}${(p.protocol ?? 'TCP').toLowerCase()}`, port: p.port, protocol: p.protocol ?? 'TCP' })),
      ...(o.loadBalancerClass ? { loadBalancerClass: o.loadBalancerClass } : {}),
      ...(o.loadBalancerIP ? { loadBalancerIP: o.loadBalancerIP } : {}),
      allocateLoadBalancerNodePorts: false,
    },
  });
}

export function getService(admin: KubeClient, name: string, ns = NS): Promise<SvcView> {
  return admin.get<SvcView>(`/api/v1/namespaces/${ns}/services/${name}`);
}

/** Waits until the Service has exactly `count` ingress addresses; returns them. */
export async function waitForAddresses(admin: KubeClient, name: string, count: number, timeoutMs = 10_000, ns = NS): Promise<string[]> {
  return waitFor(`${ns}/${name} to get ${count} address(es)`, async () => {
    const s = await getService(admin, name, ns);
    const got = ips(s);
    return got.length === count ? got : undefined;
  }, timeoutMs, 20);
}

export interface EventView {
  reason: string;
  message: string;
  type: string;
  count?: number;
  involvedObject: { name: string; kind: string };
  source?: { component?: string };
  reportingComponent?: string;
}

/** Events the allocator wrote (the API server writes some of its own). */
export function fromAllocator(e: EventView): boolean {
  return e.source?.component === 'purelb-allocator' || e.reportingComponent === 'purelb-allocator';
}

export async function events(admin: KubeClient, name: string, ns = NS): Promise<EventView[]> {
  const list = await admin.get<{ items: EventView[] }>(`/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name%3D${encodeURIComponent(name)}`);
  return list.items;
}

/** Waits for an Event of this reason on the object; returns it. */
export function waitForEvent(admin: KubeClient, name: string, reason: string, timeoutMs = 10_000, ns = NS): Promise<EventView> {
  return waitFor(`a ${reason} Event on ${ns}/${name}`, async () => (await events(admin, name, ns)).find((e) => e.reason === reason), timeoutMs, 50);
}

export async function applyGroup(admin: KubeClient, name: string, spec: Record<string, unknown>): Promise<void> {
  await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/${name}`, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name, namespace: PURELB_NAMESPACE },
    spec,
  });
}

export interface GroupView {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[]; ipv4?: { usage?: string }; ipv6?: { usage?: string } };
}

export function getGroup(admin: KubeClient, name: string): Promise<GroupView> {
  return admin.get<GroupView>(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/${name}`);
}

export const v4 = (pool: string, subnet = '192.0.2.0/24') => ({ pool, subnet, aggregation: 'default' });
export const v6 = (pool: string, subnet = '2001:db8::/64') => ({ pool, subnet, aggregation: 'default' });

/** Waits `ms` and returns: for asserting that something does NOT happen within a bound. */
export const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
