// What a Service asks of the allocator: a pure function of the Service and the policy.
import type { AllocateRequest, Family, FamilyPolicy, ServicePort } from '@purelb/ipam-core';
import { Annotation, PURELB_LOAD_BALANCER_CLASS, type Service, serviceKey, withMetalLBAliases } from '@purelb/api';

export interface ClassPolicy {
  /** When true, a Service without spec.loadBalancerClass is not ours (only `purelb.io/purelb` is). */
  readonly requireLoadBalancerClass: boolean;
}

export interface IntentWarning {
  readonly reason: string;
  readonly message: string;
}

export type ServiceIntent =
  /** Not ours any more: release whatever we hold for it and remove our marks. */
  | { readonly kind: 'release'; readonly why: string }
  /**
   * Another load balancer's Service (another `spec.loadBalancerClass`): never touched,
   * whatever its status or annotations say (a status that names one of our addresses
   * is not adopted either).
   */
  | { readonly kind: 'ignore'; readonly why: string }
  /**
   * Ours, but an annotation cannot be read: nothing changes (a Service keeps what it
   * holds; a new one gets nothing) and a Warning names the annotation.
   */
  | { readonly kind: 'refuse'; readonly reason: string; readonly message: string }
  /** Ours: give it the addresses of this request. */
  | {
      readonly kind: 'allocate';
      readonly request: AllocateRequest;
      readonly warnings: readonly IntentWarning[];
      /** Where `request.addresses` came from, to name it in messages. */
      readonly addressSource: string;
    };

export function serviceIntent(svc: Service, classPolicy: ClassPolicy): ServiceIntent {
  const key = serviceKey(svc);
  if (svc.metadata.deletionTimestamp) return { kind: 'release', why: 'the Service is being deleted' };
  if (svc.spec.type !== 'LoadBalancer') return { kind: 'release', why: `type is ${svc.spec.type ?? 'ClusterIP'}, not LoadBalancer` };
  const cls = svc.spec.loadBalancerClass;
  if (cls !== undefined && cls !== PURELB_LOAD_BALANCER_CLASS) return { kind: 'ignore', why: `loadBalancerClass is ${cls}` };
  if (cls === undefined && classPolicy.requireLoadBalancerClass) return { kind: 'release', why: `no loadBalancerClass, and only ${PURELB_LOAD_BALANCER_CLASS} is served` };

  // MetalLB's annotations stand in for ours where ours are absent; one Warning names ours.
  const { annotations: a, aliases } = withMetalLBAliases(svc.metadata.annotations);
  const aliasWarnings: IntentWarning[] = aliases.length === 0 ? [] : [{ reason: 'MetalLBAnnotation', message: aliasMessage(aliases) }];
  const group = a[Annotation.serviceGroup];
  if (group !== undefined && group.trim() === '') {
    return {
      kind: 'refuse',
      reason: 'InvalidAnnotation',
      message: `annotation ${Annotation.serviceGroup} is empty; name a ServiceGroup, or remove the annotation to use "default"`,
    };
  }
  if (group !== undefined && group !== group.trim()) {
    return {
      kind: 'refuse',
      reason: 'InvalidAnnotation',
      message: `annotation ${Annotation.serviceGroup}: "${group}" has leading or trailing whitespace; write "${group.trim()}"`,
    };
  }

  const warnings: IntentWarning[] = [...aliasWarnings];
  let addresses: string[] = [];
  let addressSource = `annotation ${Annotation.addresses}`;
  const listed = a[Annotation.addresses];
  const lbip = svc.spec.loadBalancerIP;
  if (listed !== undefined && listed.trim() !== '') {
    const entries = listed.split(',').map((x) => x.trim());
    addresses = entries.filter((x) => x !== '');
    if (addresses.length !== entries.length) {
      warnings.push({ reason: 'InvalidAnnotation', message: `annotation ${Annotation.addresses}: "${listed}" has an empty entry; it is ignored` });
    }
    if (lbip && !addresses.includes(lbip.trim())) {
      warnings.push({
        reason: 'LoadBalancerIPIgnored',
        message: `spec.loadBalancerIP "${lbip}" disagrees with annotation ${Annotation.addresses} "${listed}"; the annotation wins, spec.loadBalancerIP is ignored`,
      });
    }
  } else {
    if (listed !== undefined) {
      warnings.push({
        reason: 'InvalidAnnotation',
        message: `annotation ${Annotation.addresses} is empty; treated as not set${lbip ? ' (spec.loadBalancerIP is used)' : ': the Service gets the first free address of its ServiceGroup'}`,
      });
    }
    if (lbip) {
      addresses = [lbip.trim()];
      addressSource = 'spec.loadBalancerIP';
      warnings.push({
        reason: 'LoadBalancerIPDeprecated',
        message: `spec.loadBalancerIP is deprecated; use the annotation ${Annotation.addresses}: "${lbip}"`,
      });
    }
  }
  const families: readonly Family[] = svc.spec.ipFamilies && svc.spec.ipFamilies.length > 0 ? svc.spec.ipFamilies : ['IPv4'];
  const policy: FamilyPolicy = svc.spec.ipFamilyPolicy ?? 'SingleStack';
  const ports: ServicePort[] = (svc.spec.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port }));
  const key2 = a[Annotation.allowSharedIp]?.trim();
  return {
    kind: 'allocate',
    request: {
      service: key,
      group,
      families,
      policy,
      addresses,
      sharingKey: key2 === '' ? undefined : key2,
      ports,
    },
    warnings,
    addressSource,
  };
}

/** One message for every MetalLB annotation of a Service: which are read as which of ours, which are overridden. */
function aliasMessage(aliases: readonly { from: string; to: string; used: boolean }[]): string {
  const used = aliases.filter((x) => x.used).map((x) => `${x.from} is read as ${x.to}`);
  const ignored = aliases.filter((x) => !x.used).map((x) => `${x.from} is ignored (${x.to} or a newer MetalLB name is set)`);
  return `MetalLB annotations: ${[...used, ...ignored].join('; ')}; write PureLB's names instead`;
}
