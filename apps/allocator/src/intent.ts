// What a Service asks of the allocator: a pure function of the Service and the policy.
import type { AllocateRequest, Family, FamilyPolicy, ServicePort } from '@purelb/ipam-core';
import { Annotation, PURELB_LOAD_BALANCER_CLASS, type Service, serviceKey } from '@purelb/k8s-glue';

export interface ClassPolicy {
  /** When true, a Service without spec.loadBalancerClass is not ours (only `purelb.io/purelb` is). */
  readonly requireLoadBalancerClass: boolean;
}

export interface IntentWarning {
  readonly reason: string;
  readonly message: string;
}

export type ServiceIntent =
  /** Not ours: release whatever we hold for it and remove our marks. */
  | { readonly kind: 'release'; readonly why: string }
  /** Ours: give it the addresses of this request. */
  | { readonly kind: 'allocate'; readonly request: AllocateRequest; readonly warnings: readonly IntentWarning[] };

export function serviceIntent(svc: Service, classPolicy: ClassPolicy): ServiceIntent {
  const key = serviceKey(svc);
  if (svc.metadata.deletionTimestamp) return { kind: 'release', why: 'the Service is being deleted' };
  if (svc.spec.type !== 'LoadBalancer') return { kind: 'release', why: `type is ${svc.spec.type ?? 'ClusterIP'}, not LoadBalancer` };
  const cls = svc.spec.loadBalancerClass;
  if (cls !== undefined && cls !== PURELB_LOAD_BALANCER_CLASS) return { kind: 'release', why: `loadBalancerClass is ${cls}` };
  if (cls === undefined && classPolicy.requireLoadBalancerClass) return { kind: 'release', why: `no loadBalancerClass, and only ${PURELB_LOAD_BALANCER_CLASS} is served` };

  const a = svc.metadata.annotations ?? {};
  const warnings: IntentWarning[] = [];
  let addresses: string[] = [];
  const listed = a[Annotation.addresses];
  if (listed !== undefined && listed.trim() !== '') {
    addresses = listed.split(',').map((x) => x.trim()).filter((x) => x !== '');
  } else if (svc.spec.loadBalancerIP) {
    addresses = [svc.spec.loadBalancerIP];
    warnings.push({
      reason: 'LoadBalancerIPDeprecated',
      message: `spec.loadBalancerIP is deprecated; use the annotation ${Annotation.addresses}: "${svc.spec.loadBalancerIP}"`,
    });
  }
  const families: readonly Family[] = svc.spec.ipFamilies && svc.spec.ipFamilies.length > 0 ? svc.spec.ipFamilies : ['IPv4'];
  const policy: FamilyPolicy = svc.spec.ipFamilyPolicy ?? 'SingleStack';
  const ports: ServicePort[] = (svc.spec.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port }));
  const group = a[Annotation.serviceGroup]?.trim();
  const key2 = a[Annotation.allowSharedIp]?.trim();
  return {
    kind: 'allocate',
    request: {
      service: key,
      group: group === '' ? undefined : group,
      families,
      policy,
      addresses,
      sharingKey: key2 === '' ? undefined : key2,
      ports,
    },
    warnings,
  };
}
