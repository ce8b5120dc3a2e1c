// The I/O of `kubectl purelb migrate metallb`: read MetalLB's objects and the Services;
// with --apply, write the ServiceGroups (never over a different one) and then each
// Service's annotations (conditional on the resourceVersion read).
import { type Service, type ServiceGroup, serviceKey } from '@purelb/api';
import { type KubeClient, KubeApiError } from '@purelb/k8s-glue';
import type { MetalLBConfig, MetalLBObject, MigrationPlan } from './migrate-metallb.ts';
import { UnreadableError } from './errors.ts';
import type { Problem } from './snapshot.ts';

/** The field manager of the plugin's writes (it shows in managedFields). */
export const FIELD_MANAGER = 'kubectl-purelb';

export async function readMetalLB(client: KubeClient, namespace: string): Promise<{ metallb: MetalLBConfig; services: Service[] }> {
  const ns = encodeURIComponent(namespace);
  const optional = (path: string) =>
    client
      .list<MetalLBObject>(path)
      .then((l) => l.items)
      .catch((e: unknown) => {
        if (e instanceof KubeApiError && e.status === 404) return [];
        throw e;
      });
  const pools = await client.list<MetalLBObject>(`/apis/metallb.io/v1beta1/namespaces/${ns}/ipaddresspools`).catch((e: unknown) => {
    if (e instanceof KubeApiError && e.status === 404) throw new UnreadableError(`MetalLB's IPAddressPools (metallb.io/v1beta1) are not served by this cluster: is MetalLB installed? (${e.message})`);
    throw e;
  });
  const [l2, bgpAdv, peers, communities, bfd, services] = await Promise.all([
    optional(`/apis/metallb.io/v1beta1/namespaces/${ns}/l2advertisements`),
    optional(`/apis/metallb.io/v1beta1/namespaces/${ns}/bgpadvertisements`),
    optional(`/apis/metallb.io/v1beta2/namespaces/${ns}/bgppeers`),
    optional(`/apis/metallb.io/v1beta1/namespaces/${ns}/communities`),
    optional(`/apis/metallb.io/v1beta1/namespaces/${ns}/bfdprofiles`),
    client.list<Service>('/api/v1/services'),
  ]);
  const kind = (k: string) => (o: MetalLBObject): MetalLBObject => ({ ...o, kind: k });
  return {
    metallb: {
      ipAddressPools: pools.items,
      l2Advertisements: l2,
      others: [...bgpAdv.map(kind('BGPAdvertisement')), ...peers.map(kind('BGPPeer')), ...communities.map(kind('Community')), ...bfd.map(kind('BFDProfile'))],
    },
    services: services.items,
  };
}

/**
 * Writes the plan: every ServiceGroup first (an identical one already there is kept; a
 * different one stops everything before any Service is touched), then each Service's
 * annotations, conditional on the resourceVersion the plan was made from.
 */
export async function applyMigration(client: KubeClient, plan: MigrationPlan, services: readonly Service[]): Promise<{ written: string[]; problems: Problem[] }> {
  const written: string[] = [];
  const problems: Problem[] = [];
  for (const sg of plan.serviceGroups) {
    const ns = encodeURIComponent(sg.metadata.namespace ?? '');
    const path = `/apis/purelb.io/v1/namespaces/${ns}/servicegroups`;
    const existing = await client.get<ServiceGroup>(`${path}/${encodeURIComponent(sg.metadata.name)}`).catch((e: unknown) => {
      if (e instanceof KubeApiError && e.status === 404) return undefined;
      throw e;
    });
    if (existing) {
      if (canonical(existing.spec) !== canonical(sg.spec)) problems.push({ object: `ServiceGroup ${sg.metadata.namespace}/${sg.metadata.name}`, field: 'spec', message: 'exists with another spec; it is left as it is (delete or rename it and run again)' });
      continue;
    }
    await client.create(path, sg, { fieldManager: FIELD_MANAGER });
    written.push(`ServiceGroup ${sg.metadata.namespace}/${sg.metadata.name} created`);
  }
  if (problems.length > 0) return { written, problems };
  const byKey = new Map(services.map((s) => [serviceKey(s), s]));
  for (const m of plan.services) {
    const key = `${m.namespace}/${m.name}`;
    const svc = byKey.get(key);
    try {
      await client.mergePatch(`/api/v1/namespaces/${encodeURIComponent(m.namespace)}/services/${encodeURIComponent(m.name)}`, { metadata: { resourceVersion: svc?.metadata.resourceVersion, annotations: m.annotations } }, { fieldManager: FIELD_MANAGER });
      written.push(`Service ${key} annotated`);
    } catch (e) {
      if (!(e instanceof KubeApiError)) throw e;
      problems.push({ object: `Service ${key}`, field: 'metadata.annotations', message: e.status === 409 ? 'changed since it was read; run the migration again' : e.message });
    }
  }
  return { written, problems };
}

/** JSON with object keys sorted: the API server does not keep the order they were sent in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}
