// What the plugin reads of a cluster, as plain objects: the pure reports take one of
// these, so every report can be tested without an API server.
import type { LBNodeAgent, Node, Service, ServiceGroup } from '@purelb/api';

/** A coordination.k8s.io/v1 Lease, as the plugin reads it. */
export interface LeaseObject {
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined; readonly annotations?: Readonly<Record<string, string>> | undefined };
  readonly spec?: { readonly holderIdentity?: string | null | undefined; readonly renewTime?: string | null | undefined; readonly leaseDurationSeconds?: number | undefined } | undefined;
}

/** A core/v1 Event, as the plugin reads it. */
export interface EventObject {
  readonly metadata: { readonly name: string; readonly namespace?: string | undefined };
  readonly involvedObject: { readonly kind?: string | undefined; readonly name?: string | undefined; readonly namespace?: string | undefined; readonly uid?: string | undefined };
  readonly type?: string | undefined;
  readonly reason?: string | undefined;
  readonly message?: string | undefined;
  readonly lastTimestamp?: string | null | undefined;
  readonly eventTime?: string | null | undefined;
  readonly firstTimestamp?: string | null | undefined;
  readonly source?: { readonly component?: string | undefined } | undefined;
  readonly reportingComponent?: string | undefined;
}

/** An apps/v1 Deployment, as the plugin reads it (the allocator's replicas). */
export interface DeploymentObject {
  readonly metadata: { readonly name: string };
  readonly spec?: { readonly replicas?: number | undefined } | undefined;
  readonly status?: { readonly replicas?: number | undefined; readonly readyReplicas?: number | undefined } | undefined;
}

/** A Node with the labels and conditions the plugin shows. */
export type NodeObject = Node & {
  readonly metadata: Node['metadata'] & { readonly labels?: Readonly<Record<string, string>> | undefined };
  readonly status?: { readonly conditions?: readonly { readonly type: string; readonly status: string }[] | undefined } | undefined;
};

/** Everything one run reads, at one instant. */
export interface ClusterSnapshot {
  /** PureLB's namespace (ServiceGroups, LBNodeAgents, Leases). */
  readonly namespace: string;
  /** Wall-clock time of the read, in ms since the epoch (Lease ages are measured from it). */
  readonly now: number;
  readonly serviceGroups: readonly ServiceGroup[];
  readonly lbNodeAgents: readonly LBNodeAgent[];
  /** Every Service of every namespace. */
  readonly services: readonly Service[];
  readonly nodes: readonly NodeObject[];
  /** The Leases of PureLB's namespace. */
  readonly leases: readonly LeaseObject[];
  /** Warning Events about Services, every namespace. */
  readonly serviceEvents: readonly EventObject[];
  /** Events the node agents wrote about Nodes (source purelb-lbnodeagent): the ARP check's. */
  readonly nodeEvents: readonly EventObject[];
  /** Deployments of PureLB's namespace labelled as the allocator (absent: not readable or not installed by the chart). */
  readonly allocatorDeployments?: readonly DeploymentObject[] | undefined;
  /** Name of the allocator's leader Lease (default purelb-allocator). */
  readonly allocatorLease: string;
}

/** One thing found wrong: the object, the field when there is one, and what is wrong. */
export interface Problem {
  /** `ServiceGroup purelb/default`, `Service web/front`, `Node node-a`, `file.yaml#2`. */
  readonly object: string;
  readonly field?: string | undefined;
  readonly message: string;
}
