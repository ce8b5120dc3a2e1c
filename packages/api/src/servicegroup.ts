// ServiceGroups to ipam-core groups, and the status the allocator writes back.
import { type Family, type GroupSpec, type GroupStats, IpamError, formatSubnet, parseGroup } from '@purelb/ipam-core';
import { type ServiceGroup, type ServiceGroupStatus, localGroupSpec } from './purelb-api.ts';
import { type ConditionUpdate, setCondition } from '@purelb/k8s-glue';
import { labelSelectorProblem } from './label-selector.ts';

export type ParsedServiceGroup =
  | { readonly ok: true; readonly kind: 'local'; readonly group: GroupSpec }
  | { readonly ok: true; readonly kind: 'netbox'; readonly name: string }
  | { readonly ok: false; readonly name: string; readonly reason: string; readonly field: string; readonly message: string };

/**
 * The shortest subnet prefix a pool may have, per family: shorter than any block a
 * registry assigns to one organisation (an IPv4 /8; IPv6 allocations are /19 to /48),
 * so a shorter one is a typing error, and `0.0.0.0/0` or `::/0` would make every
 * address of the Internet "local". The CRD refuses the same at admission.
 */
export const MIN_SUBNET_PREFIX: Readonly<Record<Family, number>> = { IPv4: 8, IPv6: 16 };

/**
 * Validates a ServiceGroup beyond what its CRD schema can say (a range whose first
 * address is above its last, overlapping pools, a pool of the wrong family) and converts
 * it. Invalid: the reason (`InvalidPool`, `InvalidSubnet`, `InvalidAggregation`,
 * `OverlappingPools`, `InvalidNodeSelector`), the field (`spec.local.v4pools[1].pool`,
 * `spec.local.nodeSelector.matchExpressions[0].operator`) and a message.
 */
export function parseServiceGroup(sg: ServiceGroup): ParsedServiceGroup {
  const name = sg.metadata.name;
  const hasLocal = sg.spec?.local !== undefined && sg.spec.local !== null;
  const hasNetbox = sg.spec?.netbox !== undefined && sg.spec.netbox !== null;
  if (hasLocal === hasNetbox) {
    return { ok: false, name, reason: 'InvalidSpec', field: 'spec', message: 'exactly one of spec.local and spec.netbox must be set' };
  }
  if (hasNetbox) return { ok: true, kind: 'netbox', name };
  const selector = sg.spec.local?.nodeSelector;
  if (selector !== undefined && selector !== null) {
    const p = labelSelectorProblem(selector, 'spec.local.nodeSelector');
    if (p) return { ok: false, name, reason: 'InvalidNodeSelector', field: p.field, message: `ServiceGroup "${name}": ${p.field}: ${p.message}` };
  }
  const group = localGroupSpec(sg);
  let parsed;
  try {
    parsed = parseGroup(group);
  } catch (e) {
    if (!(e instanceof IpamError)) throw e;
    const field = e.context.field ? `spec.${e.context.field === 'local' || e.context.field.startsWith('local.') ? e.context.field : `local.${e.context.field}`}` : 'spec.local';
    return { ok: false, name, reason: reasonFor(field, e.message), field, message: e.message };
  }
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const p of parsed.pools[family]) {
      const min = MIN_SUBNET_PREFIX[family];
      if (p.subnet.prefixLength < min) {
        const sub = p.field === 'local' ? 'subnet' : `${p.field}.subnet`;
        return {
          ok: false,
          name,
          reason: 'InvalidSubnet',
          field: `spec.local.${sub}`,
          message: `ServiceGroup "${name}": ${sub}: ${formatSubnet(p.subnet)} is shorter than /${min}, the shortest ${family} subnet a pool may have`,
        };
      }
    }
  }
  return { ok: true, kind: 'local', group };
}

/**
 * The status a ServiceGroup should have: the Valid condition, per-family use, and an
 * `Overlapping` condition (True while its pools overlap another group's; set back to
 * False once they no longer do, absent if they never did).
 */
export function serviceGroupStatus(
  sg: ServiceGroup,
  validity: { valid: true } | { valid: false; reason: string; message: string },
  stats: GroupStats | undefined,
  now: string,
  overlap?: { readonly message: string },
): ServiceGroupStatus {
  const generation = sg.metadata.generation === undefined ? {} : { observedGeneration: sg.metadata.generation };
  const valid: ConditionUpdate = validity.valid
    ? { type: 'Valid', status: 'True', reason: 'Valid', message: 'the pools are valid', ...generation }
    : { type: 'Valid', status: 'False', reason: validity.reason, message: validity.message, ...generation };
  const usage = (f: 'IPv4' | 'IPv6') => {
    const s = stats?.[f];
    return s ? { size: s.size.toString(), inUse: s.inUse.toString(), excluded: s.excluded.toString(), usage: `${s.inUse}/${s.size}` } : undefined;
  };
  let conditions = setCondition(sg.status?.conditions, valid, now);
  if (overlap) {
    conditions = setCondition(conditions, { type: 'Overlapping', status: 'True', reason: 'PoolsOverlap', message: overlap.message, ...generation }, now);
  } else if (conditions.some((c) => c.type === 'Overlapping')) {
    conditions = setCondition(conditions, { type: 'Overlapping', status: 'False', reason: 'NoOverlap', message: 'no pool overlaps another ServiceGroup\'s', ...generation }, now);
  }
  return {
    ...generation,
    conditions,
    ...(stats ? { ipv4: usage('IPv4'), ipv6: usage('IPv6') } : {}),
  };
}

/** The condition reason for a bad field: it names the kind of field (`InvalidSubnet`), or the overlap. */
function reasonFor(field: string, message: string): string {
  if (/ overlaps /.test(message)) return 'OverlappingPools';
  const leaf = /\.(pool|subnet|aggregation)$/.exec(field)?.[1];
  return leaf ? `Invalid${leaf[0]!.toUpperCase()}${leaf.slice(1)}` : 'InvalidPool';
}
