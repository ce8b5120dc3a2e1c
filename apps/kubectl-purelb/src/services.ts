// `kubectl purelb services`: every LoadBalancer Service PureLB serves, with its addresses,
// group, announcer per family, traffic policy and sharing key; and the Services that are
// ours but have no address, with the allocator's reason.
import { Annotation, type Service, ingressIPs } from '@purelb/api';
import { byKey, isOurs, latestAllocatorWarning, serviceRef, servedServices } from './cluster-view.ts';
import type { ClusterSnapshot, Problem } from './snapshot.ts';

/** An announcing annotation read: `node,interface`. */
export interface Announcer {
  readonly node: string;
  readonly interface: string | undefined;
}

export interface ServiceRow {
  readonly namespace: string;
  readonly name: string;
  readonly addresses: readonly string[];
  readonly group: string | undefined;
  readonly announcingIPv4: Announcer | undefined;
  readonly announcingIPv6: Announcer | undefined;
  readonly externalTrafficPolicy: string;
  readonly sharingKey: string | undefined;
}

export interface ServicesReport {
  readonly services: readonly ServiceRow[];
  readonly problems: readonly Problem[];
}

/** Reads `node,interface` (as the agents write it); undefined when absent or empty. */
export function parseAnnouncer(value: string | undefined): Announcer | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const [node, iface] = value.split(',', 2).map((x) => x.trim());
  return node ? { node, interface: iface || undefined } : undefined;
}

export function servicesReport(snap: ClusterSnapshot): ServicesReport {
  const services = servedServices(snap).map((svc): ServiceRow => {
    const a = svc.metadata.annotations ?? {};
    const key = a[Annotation.allowSharedIp]?.trim();
    return {
      namespace: svc.metadata.namespace ?? '',
      name: svc.metadata.name,
      addresses: ingressIPs(svc),
      group: a[Annotation.allocatedFrom],
      announcingIPv4: parseAnnouncer(a[Annotation.announcingIPv4]),
      announcingIPv6: parseAnnouncer(a[Annotation.announcingIPv6]),
      externalTrafficPolicy: svc.spec.externalTrafficPolicy ?? 'Cluster',
      sharingKey: key === '' ? undefined : key,
    };
  });
  const problems: Problem[] = [];
  for (const svc of [...snap.services].filter((s: Service) => isOurs(s) && ingressIPs(s).length === 0).sort(byKey)) {
    const e = latestAllocatorWarning(svc, snap.serviceEvents);
    problems.push({ object: serviceRef(svc), field: 'status.loadBalancer.ingress', message: e ? `no address: ${e.reason}: ${e.message}` : 'no address, and no Warning Event from the allocator about it' });
  }
  return { services, problems };
}

/** `node/interface` for a table cell. */
export function announcerText(a: Announcer | undefined): string | undefined {
  return a && (a.interface ? `${a.node}/${a.interface}` : a.node);
}
