// ServiceGroups to ipam-core groups, and the status the allocator writes back.
import { type GroupSpec, type GroupStats, IpamError, parseGroup } from '@purelb/ipam-core';
import { type ServiceGroup, type ServiceGroupStatus, localGroupSpec } from './purelb-api.ts';
import { type ConditionUpdate, setCondition } from './status.ts';

export type ParsedServiceGroup =
  | { readonly ok: true; readonly kind: 'local'; readonly group: GroupSpec }
  | { readonly ok: true; readonly kind: 'netbox'; readonly name: string }
  | { readonly ok: false; readonly name: string; readonly reason: string; readonly field: string; readonly message: string };

/**
 * Validates a ServiceGroup beyond what its CRD schema can say (a range whose first
 * address is above its last, overlapping pools, a pool of the wrong family) and converts
 * it. Invalid: the reason, the field (`spec.local.v4pools[1].pool`) and a message.
 */
export function parseServiceGroup(sg: ServiceGroup): ParsedServiceGroup {
  const name = sg.metadata.name;
  const hasLocal = sg.spec?.local !== undefined && sg.spec.local !== null;
  const hasNetbox = sg.spec?.netbox !== undefined && sg.spec.netbox !== null;
  if (hasLocal === hasNetbox) {
    return { ok: false, name, reason: 'InvalidSpec', field: 'spec', message: 'exactly one of spec.local and spec.netbox must be set' };
  }
  if (hasNetbox) return { ok: true, kind: 'netbox', name };
  const group = localGroupSpec(sg);
  try {
    parseGroup(group);
  } catch (e) {
    if (!(e instanceof IpamError)) throw e;
    const field = e.context.field ? `spec.${e.context.field === 'local' || e.context.field.startsWith('local.') ? e.context.field : `local.${e.context.field}`}` : 'spec.local';
    return { ok: false, name, reason: 'InvalidPool', field, message: e.message };
  }
  return { ok: true, kind: 'local', group };
}

/** The status a ServiceGroup should have: the Valid condition and, when valid, per-family use. */
export function serviceGroupStatus(
  sg: ServiceGroup,
  validity: { valid: true } | { valid: false; reason: string; message: string },
  stats: GroupStats | undefined,
  now: string,
): ServiceGroupStatus {
  const generation = sg.metadata.generation === undefined ? {} : { observedGeneration: sg.metadata.generation };
  const valid: ConditionUpdate = validity.valid
    ? { type: 'Valid', status: 'True', reason: 'Valid', message: 'the pools are valid', ...generation }
    : { type: 'Valid', status: 'False', reason: validity.reason, message: validity.message, ...generation };
  const usage = (f: 'IPv4' | 'IPv6') => {
    const s = stats?.[f];
    return s ? { size: s.size.toString(), inUse: s.inUse.toString(), usage: `${s.inUse}/${s.size}` } : undefined;
  };
  return {
    ...generation,
    conditions: setCondition(sg.status?.conditions, valid, now),
    ...(stats ? { ipv4: usage('IPv4'), ipv6: usage('IPv6') } : {}),
  };
}
