// What a Service should carry, and the one write that gets it there.
import type { Allocation } from '@purelb/ipam-core';
import { ALLOCATED_BY_VALUE, Annotation, type Service, ingressIPs } from '@purelb/api';

/** True when the allocator's marks say it allocated this Service's addresses. */
export function allocatedByUs(svc: Service): boolean {
  return svc.metadata.annotations?.[Annotation.allocatedBy] === ALLOCATED_BY_VALUE;
}

/**
 * The merge patch for the Service's status subresource that makes it carry `allocation`
 * (ingress IPs and the allocated-by/allocated-from annotations, which the status
 * subresource of a Service accepts too, so one request does both), or removes our marks
 * when `allocation` is undefined. Undefined when nothing needs to change: no write.
 */
export function servicePatch(svc: Service, allocation: Allocation | undefined): Record<string, unknown> | undefined {
  const annotations = svc.metadata.annotations ?? {};
  const current = ingressIPs(svc);
  if (allocation === undefined) {
    if (!allocatedByUs(svc)) return undefined;
    return {
      metadata: { annotations: { [Annotation.allocatedBy]: null, [Annotation.allocatedFrom]: null } },
      ...(current.length > 0 ? { status: { loadBalancer: { ingress: null } } } : {}),
    };
  }
  const patch: Record<string, unknown> = {};
  const wantAnnotations: Record<string, string> = {};
  if (annotations[Annotation.allocatedBy] !== ALLOCATED_BY_VALUE) wantAnnotations[Annotation.allocatedBy] = ALLOCATED_BY_VALUE;
  if (annotations[Annotation.allocatedFrom] !== allocation.group) wantAnnotations[Annotation.allocatedFrom] = allocation.group;
  if (Object.keys(wantAnnotations).length > 0) patch.metadata = { annotations: wantAnnotations };
  if (current.join(',') !== allocation.addresses.join(',')) {
    patch.status = { loadBalancer: { ingress: allocation.addresses.map((ip) => ({ ip, ipMode: 'VIP' })) } };
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}
