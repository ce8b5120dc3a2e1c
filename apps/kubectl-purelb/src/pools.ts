// `kubectl purelb pools`: per ServiceGroup, pool and family, the size, the addresses in
// use and free, and the next address the allocator would hand out. The allocation state
// is rebuilt with ipam-core, as the allocator builds its own: the groups, the Nodes'
// addresses excluded, every served Service adopted; the next address is then what
// ipam-core's allocate returns for a new single-family Service of that group.
import { Annotation, type Service, ingressIPs, localGroupSpec, nodeExclusions, parseServiceGroup, serviceKey } from '@purelb/api';
import { type Family, type GroupSpec, Ipam, IpamError, type PoolSpec, parseAddress, parseGroup, poolSize } from '@purelb/ipam-core';
import { servedServices } from './cluster-view.ts';
import type { ClusterSnapshot, Problem } from './snapshot.ts';

export interface PoolRow {
  readonly group: string;
  readonly family: Family;
  /** The pool's field in the ServiceGroup (`v4pools[0]`) and its text. */
  readonly field: string;
  readonly pool: string;
  readonly size: string;
  readonly inUse: string;
  /** Never handed out although free: a Node's own address, a subnet's network/broadcast/anycast address. */
  readonly excluded: string;
  readonly free: string;
  /** The lowest free address of this pool; undefined when full. */
  readonly next: string | undefined;
  /** True on the pool whose `next` the allocator hands out next for this group and family. */
  readonly nextForGroup: boolean;
}

export interface PoolsReport {
  readonly namespace: string;
  readonly pools: readonly PoolRow[];
  readonly problems: readonly Problem[];
}

/** The probe's name: no Service can have it (a Service key is `namespace/name`, and names are DNS labels). */
const PROBE = ' next-address-probe';

export function poolsReport(snap: ClusterSnapshot): PoolsReport {
  const problems: Problem[] = [];
  const local: GroupSpec[] = [];
  for (const sg of [...snap.serviceGroups].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))) {
    const parsed = parseServiceGroup(sg);
    const ref = `ServiceGroup ${snap.namespace}/${sg.metadata.name}`;
    if (!parsed.ok) problems.push({ object: ref, field: parsed.field, message: `${parsed.message}; its pools are not shown` });
    else if (parsed.kind === 'local') local.push(localGroupSpec(sg));
  }
  const served = servedServices(snap);
  const exclusions = nodeExclusions(snap.nodes);

  // The whole state, as the allocator holds it: which pool of each group is next.
  const whole = new Ipam({ excludeSubnetReserved: true });
  whole.setGroups(local);
  whole.setExclusions(exclusions);
  for (const svc of served) adoptInto(whole, svc, svc.metadata.annotations?.[Annotation.allocatedFrom], undefined, problems);

  const rows: PoolRow[] = [];
  for (const spec of local) {
    const group = parseGroup(spec);
    for (const family of ['IPv4', 'IPv6'] as const) {
      const groupNext = nextAddress(whole, spec.name, family);
      for (const pool of group.pools[family]) {
        // The same pool alone in a group of its own, holding what the served Services hold in it.
        const one = new Ipam({ excludeSubnetReserved: true });
        one.setGroups([{ name: spec.name, v4pools: family === 'IPv4' ? [poolSpecOf(spec, pool.field)] : [], v6pools: family === 'IPv6' ? [poolSpecOf(spec, pool.field)] : [] }]);
        one.setExclusions(exclusions);
        for (const svc of served) adoptInto(one, svc, spec.name, (a) => a.family === family && a.value >= pool.first && a.value <= pool.last, undefined);
        const s = one.stats(spec.name)[family];
        const next = nextAddress(one, spec.name, family);
        rows.push({
          group: spec.name,
          family,
          field: pool.field,
          pool: pool.text,
          size: poolSize(pool).toString(),
          inUse: s.inUse.toString(),
          excluded: s.excluded.toString(),
          free: (s.size - s.inUse - s.excluded).toString(),
          next,
          nextForGroup: next !== undefined && next === groupNext,
        });
      }
    }
  }
  return { namespace: snap.namespace, pools: rows, problems };
}

/** The PoolSpec behind a parsed pool's field (`local`, `v4pool`, `v6pool`, `v4pools[i]`, `v6pools[i]`). */
function poolSpecOf(spec: GroupSpec, field: string): PoolSpec {
  if (field === 'local') return { pool: spec.pool ?? '', subnet: spec.subnet ?? '', aggregation: spec.aggregation };
  if (field === 'v4pool' && spec.v4pool) return spec.v4pool;
  if (field === 'v6pool' && spec.v6pool) return spec.v6pool;
  const m = /^(v4pools|v6pools)\[(\d+)\]$/.exec(field);
  const p = m ? spec[m[1] as 'v4pools' | 'v6pools']?.[Number(m[2])] : undefined;
  if (!p) throw new Error(`ServiceGroup "${spec.name}": no pool at ${field}`);
  return p;
}

function adoptInto(ipam: Ipam, svc: Service, group: string | undefined, keep: ((a: { family: Family; value: bigint }) => boolean) | undefined, problems: Problem[] | undefined): void {
  const addresses = ingressIPs(svc).filter((ip) => {
    const a = parseAddress(ip);
    return a !== undefined && (keep === undefined || keep(a));
  });
  if (addresses.length === 0) return;
  const key = svc.metadata.annotations?.[Annotation.allowSharedIp]?.trim();
  try {
    ipam.adopt({
      service: serviceKey(svc),
      addresses,
      group,
      sharingKey: key === '' ? undefined : key,
      ports: (svc.spec.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port })),
    });
  } catch (e) {
    if (!(e instanceof IpamError)) throw e;
    problems?.push({ object: `Service ${serviceKey(svc)}`, field: 'status.loadBalancer.ingress', message: `${addresses.join(', ')} cannot be accounted for: ${e.message}` });
  }
}

function nextAddress(ipam: Ipam, group: string, family: Family): string | undefined {
  try {
    return ipam.allocate({ service: PROBE, group, families: [family], policy: 'SingleStack' }).addresses[0];
  } catch (e) {
    if (e instanceof IpamError) return undefined;
    throw e;
  } finally {
    ipam.release(PROBE);
  }
}
