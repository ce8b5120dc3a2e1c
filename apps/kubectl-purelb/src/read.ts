// The I/O shell's read: one snapshot of the cluster through @purelb/k8s-glue. Reads only.
import type { LBNodeAgent, Service, ServiceGroup } from '@purelb/api';
import { type KubeClient, KubeApiError } from '@purelb/k8s-glue';
import { AGENT_COMPONENT } from './node-health.ts';
import type { ClusterSnapshot, DeploymentObject, EventObject, LeaseObject, NodeObject } from './snapshot.ts';

export interface ReadOptions {
  readonly namespace: string;
  readonly allocatorLease: string;
  /** Wall clock (default Date.now). */
  readonly now?: (() => number) | undefined;
}

/** Reads everything the reports need. A list the user may not read fails the run, except the optional Deployments. */
export async function readSnapshot(client: KubeClient, opts: ReadOptions): Promise<ClusterSnapshot> {
  const ns = encodeURIComponent(opts.namespace);
  const [serviceGroups, lbNodeAgents, services, nodes, leases, serviceEvents, nodeEvents, allocatorDeployments] = await Promise.all([
    client.list<ServiceGroup>(`/apis/purelb.io/v1/namespaces/${ns}/servicegroups`),
    client.list<LBNodeAgent>(`/apis/purelb.io/v1/namespaces/${ns}/lbnodeagents`),
    client.list<Service>('/api/v1/services'),
    client.list<NodeObject>('/api/v1/nodes'),
    client.list<LeaseObject>(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`),
    client.list<EventObject>('/api/v1/events', { fieldSelector: 'involvedObject.kind=Service,type=Warning' }),
    client.list<EventObject>('/api/v1/events', { fieldSelector: `involvedObject.kind=Node,source=${AGENT_COMPONENT}` }),
    client
      .list<DeploymentObject>(`/apis/apps/v1/namespaces/${ns}/deployments`, { labelSelector: 'app.kubernetes.io/component=allocator' })
      .then((l) => l.items)
      .catch((e: unknown) => {
        // Not installed by the chart, or no right to read Deployments: replicas are then unknown.
        if (e instanceof KubeApiError && (e.status === 403 || e.status === 404)) return undefined;
        throw e;
      }),
  ]);
  return {
    namespace: opts.namespace,
    now: (opts.now ?? Date.now)(),
    serviceGroups: serviceGroups.items,
    lbNodeAgents: lbNodeAgents.items,
    services: services.items,
    nodes: nodes.items,
    leases: leases.items,
    serviceEvents: serviceEvents.items,
    nodeEvents: nodeEvents.items,
    allocatorDeployments,
    allocatorLease: opts.allocatorLease,
  };
}
