import { type Family, formatAddress } from './address.ts';
import { IpamError, IpamErrorCode } from './errors.ts';
import { type Pool, type PoolSpec, parsePool } from './pool.ts';

/**
 * A group as plain data, in the shape of a ServiceGroup's `spec.local` plus its name.
 * All pool forms are accepted and combined in this order: the legacy single
 * `subnet`/`pool`/`aggregation`, then `v4pool`/`v6pool`, then `v4pools[]`/`v6pools[]`.
 */
export interface GroupSpec {
  readonly name: string;
  readonly v4pools?: readonly PoolSpec[] | undefined;
  readonly v6pools?: readonly PoolSpec[] | undefined;
  readonly v4pool?: PoolSpec | undefined;
  readonly v6pool?: PoolSpec | undefined;
  readonly subnet?: string | undefined;
  readonly pool?: string | undefined;
  readonly aggregation?: string | undefined;
}

/** A validated group: pools per family in declaration order, none overlapping. */
export interface Group {
  readonly name: string;
  readonly pools: Readonly<Record<Family, readonly Pool[]>>;
}

/**
 * Validates a group. Throws `IPAM_INVALID_POOL` naming the group and the field (bad text,
 * pool outside its subnet, bad aggregation, two pools of the group overlapping).
 */
export function parseGroup(spec: GroupSpec): Group {
  const name = spec.name;
  if (typeof name !== 'string' || name === '') {
    throw new IpamError(IpamErrorCode.InvalidPool, 'ServiceGroup: name is required', { field: 'name' });
  }
  const pools: Record<Family, Pool[]> = { IPv4: [], IPv6: [] };
  const add = (p: Pool): void => void pools[p.family].push(p);
  if (spec.pool !== undefined || spec.subnet !== undefined) {
    add(parsePool({ pool: spec.pool ?? '', subnet: spec.subnet ?? '', aggregation: spec.aggregation }, name, 'local', undefined));
  }
  if (spec.v4pool) add(parsePool(spec.v4pool, name, 'v4pool', 'IPv4'));
  if (spec.v6pool) add(parsePool(spec.v6pool, name, 'v6pool', 'IPv6'));
  (spec.v4pools ?? []).forEach((p, i) => add(parsePool(p, name, `v4pools[${i}]`, 'IPv4')));
  (spec.v6pools ?? []).forEach((p, i) => add(parsePool(p, name, `v6pools[${i}]`, 'IPv6')));
  for (const family of ['IPv4', 'IPv6'] as const) {
    const sorted = [...pools[family]].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      if (cur.first <= prev.last) {
        throw new IpamError(
          IpamErrorCode.InvalidPool,
          `ServiceGroup "${name}": ${cur.field}.pool "${cur.text}" overlaps ${prev.field}.pool "${prev.text}" at ${formatAddress(family, cur.first)}`,
          { group: name, pool: cur.text, field: `${cur.field}.pool` },
        );
      }
    }
  }
  return { name, pools };
}

/** The pool of the group that holds the value, if any. */
export function findPool(group: Group, family: Family, value: bigint): Pool | undefined {
  for (const p of group.pools[family]) if (value >= p.first && value <= p.last) return p;
  return undefined;
}
