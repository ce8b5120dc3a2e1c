// Snapshot builders for the plugin's table tests. Not a test file.
import type { Service, ServiceGroup } from '@purelb/api';
import type { ClusterSnapshot, EventObject, LeaseObject, NodeObject } from '../src/snapshot.ts';
import { type CliIo, run } from '../src/index.ts';

export const NOW = Date.parse('2026-01-01T12:00:00Z');
export const ago = (s: number): string => new Date(NOW - s * 1000).toISOString();

export function snapshot(over: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return {
    namespace: 'purelb',
    now: NOW,
    serviceGroups: [],
    lbNodeAgents: [],
    services: [],
    nodes: [],
    leases: [],
    serviceEvents: [],
    nodeEvents: [],
    allocatorDeployments: undefined,
    allocatorLease: 'purelb-allocator',
    ...over,
  };
}

export function group(name: string, local: Record<string, unknown> | undefined, status?: ServiceGroup['status']): ServiceGroup {
  return { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name, namespace: 'purelb' }, spec: local === undefined ? {} : { local }, ...(status ? { status } : {}) };
}

export interface SvcOpts {
  readonly ns?: string;
  readonly ips?: readonly string[];
  readonly group?: string;
  readonly annotations?: Record<string, string>;
  readonly ours?: boolean;
  readonly cls?: string;
  readonly type?: string;
  readonly etp?: 'Cluster' | 'Local';
  readonly ports?: readonly { port: number; protocol?: 'TCP' | 'UDP' }[];
  readonly uid?: string;
}

export function svc(name: string, o: SvcOpts = {}): Service {
  const marked = o.ours !== false && (o.ips?.length ?? 0) > 0;
  return {
    metadata: {
      name,
      namespace: o.ns ?? 'web',
      uid: o.uid ?? `uid-${name}`,
      annotations: {
        ...(marked ? { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': o.group ?? 'default' } : {}),
        ...(o.annotations ?? {}),
      },
    },
    spec: {
      type: o.type ?? 'LoadBalancer',
      ...(o.cls ? { loadBalancerClass: o.cls } : {}),
      ...(o.etp ? { externalTrafficPolicy: o.etp } : {}),
      ports: (o.ports ?? [{ port: 80 }]).map((p) => ({ port: p.port, protocol: p.protocol ?? 'TCP' })),
    },
    status: { loadBalancer: { ingress: (o.ips ?? []).map((ip) => ({ ip })) } },
  };
}

export function agentLease(node: string, o: { mode?: string; subnets?: string; ageS?: number; membership?: string; duration?: number } = {}): LeaseObject {
  return {
    metadata: {
      name: `purelb-agent-${node}`,
      namespace: 'purelb',
      annotations: {
        'purelb.io/gossip-mode': o.mode ?? 'swim',
        'purelb.io/subnets': o.subnets ?? '192.0.2.0/24,2001:db8::/64',
        ...(o.membership ? { 'purelb.io/membership': o.membership } : {}),
      },
    },
    spec: { holderIdentity: node, renewTime: ago(o.ageS ?? 1), leaseDurationSeconds: o.duration ?? 10 },
  };
}

export function allocatorLease(holder: string | undefined, ageS = 1): LeaseObject {
  return { metadata: { name: 'purelb-allocator', namespace: 'purelb' }, spec: { holderIdentity: holder ?? null, renewTime: ago(ageS), leaseDurationSeconds: 15 } };
}

export function node(name: string, addresses: readonly string[] = [], labels?: Record<string, string>): NodeObject {
  return { metadata: { name, ...(labels ? { labels } : {}) }, status: { addresses: addresses.map((address) => ({ type: 'InternalIP', address })) } };
}

export function warning(service: Service, reason: string, message: string, ageS = 5, component = 'purelb-allocator'): EventObject {
  return {
    metadata: { name: `${service.metadata.name}.${reason}`, namespace: service.metadata.namespace },
    involvedObject: { kind: 'Service', name: service.metadata.name, namespace: service.metadata.namespace, uid: service.metadata.uid },
    type: 'Warning',
    reason,
    message,
    lastTimestamp: ago(ageS),
    source: { component },
    reportingComponent: component,
  };
}

export const V4 = (pool: string, subnet = '192.0.2.0/24') => ({ pool, subnet, aggregation: 'default' });
export const V6 = (pool: string, subnet = '2001:db8::/64') => ({ pool, subnet, aggregation: 'default' });

/** An Event about a Node as the agent's recorder writes it (apps/lbnodeagent arp-check.ts, node-events.ts). */
export function nodeEvent(nodeName: string, type: 'Normal' | 'Warning', reason: string, message: string, ageS = 5, o: { component?: string; name?: string } = {}): EventObject {
  const component = o.component ?? 'purelb-lbnodeagent';
  return {
    metadata: { name: o.name ?? `${nodeName}.${reason}.${ageS}`, namespace: 'default' },
    involvedObject: { kind: 'Node', name: nodeName, uid: nodeName },
    type,
    reason,
    message,
    lastTimestamp: ago(ageS),
    firstTimestamp: ago(ageS),
    source: { component },
    reportingComponent: component,
  };
}

/** Runs the plugin's command line in this process against a kubeconfig; its exit status and what it printed. */
export async function runPlugin(kubeconfigPath: string, args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (s) => void (out += s), stderr: (s) => void (err += s), env: {} };
  const code = await run([...args, '--kubeconfig', kubeconfigPath], io);
  return { code, out, err };
}
