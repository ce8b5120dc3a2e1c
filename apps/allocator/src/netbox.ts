// What the Netbox address source of @purelb/ipam-netbox needs from Kubernetes: the token
// (a Secret in the allocator's namespace), who still wants an address (the Services), the
// status reasons of a Secret that cannot be read, and log lines for what it did.
import type { NetboxSourceEvent } from '@purelb/ipam-netbox';
import { Annotation, type NetboxSpec, type Service } from '@purelb/api';
import { KubeApiError, type KubeClient, type Logger } from '@purelb/k8s-glue';

/** Secret key holding the Netbox token, as in PureLB. */
export const NETBOX_TOKEN_KEY = 'user-token';
/** Secret name when `spec.netbox.secretName` is absent. */
export const DEFAULT_NETBOX_SECRET = 'netbox-client';

/** The token Secret could not be used; `reason` is the ServiceGroup's Valid=False reason. */
class SecretError extends Error {
  readonly reason: 'NetboxSecretMissing' | 'NetboxSecretForbidden';
  constructor(reason: 'NetboxSecretMissing' | 'NetboxSecretForbidden', message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Reads the group's token from Secret `spec.secretName` (default netbox-client), key user-token. */
export async function readNetboxToken(kube: KubeClient, namespace: string, spec: NetboxSpec): Promise<string> {
  const name = spec.secretName ?? DEFAULT_NETBOX_SECRET;
  let secret: { data?: Record<string, string> };
  try {
    secret = await kube.get<{ data?: Record<string, string> }>(`/api/v1/namespaces/${namespace}/secrets/${name}`);
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 404) throw new SecretError('NetboxSecretMissing', `Secret ${namespace}/${name} (key ${NETBOX_TOKEN_KEY}) with the Netbox token does not exist`);
    if (e instanceof KubeApiError && e.status === 403) throw new SecretError('NetboxSecretForbidden', `the allocator may not read Secret ${namespace}/${name}: it needs RBAC get on secrets in ${namespace}`);
    throw e;
  }
  const b64 = secret.data?.[NETBOX_TOKEN_KEY];
  if (!b64) throw new SecretError('NetboxSecretMissing', `Secret ${namespace}/${name} has no key ${NETBOX_TOKEN_KEY}`);
  return Buffer.from(b64, 'base64').toString('utf8').trim();
}

/** The Valid=False reason of a token that could not be read; undefined for Netbox's own errors. */
export function tokenFailureReason(e: unknown): string | undefined {
  if (e instanceof SecretError) return e.reason;
  if (e instanceof KubeApiError) return 'NetboxSecretUnreadable';
  return undefined;
}

/** Who still wants an address, from the Services cache. */
export function serviceHolders(services: { get(key: string): Service | undefined; list(): Service[] }): {
  serviceWants(service: string): boolean;
  sharingKeyInUse(key: string): boolean;
  sharingKeyOf(service: string): string | undefined;
} {
  const keyOf = (s: Service | undefined): string | undefined => s?.metadata.annotations?.[Annotation.allowSharedIp]?.trim();
  return {
    serviceWants: (key) => {
      const s = services.get(key);
      return s !== undefined && !s.metadata.deletionTimestamp && s.spec.type === 'LoadBalancer';
    },
    sharingKeyInUse: (key) => services.list().some((s) => !s.metadata.deletionTimestamp && keyOf(s) === key),
    sharingKeyOf: (service) => keyOf(services.get(service)) || undefined,
  };
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** One log line for each thing the Netbox source did. */
export function logNetboxEvent(log: Logger, e: NetboxSourceEvent): void {
  switch (e.type) {
    case 'ready':
      return log.info({ group: e.group, held: e.holders }, 'Netbox group ready: adopted what Netbox says we hold');
    case 'unusable':
      return log.warn({ group: e.group, err: errText(e.error), retryInMs: e.retryInMs }, 'Netbox group not usable; retrying');
    case 'allocated':
      return log.info({ group: e.group, holder: e.holder, address: e.address }, 'took an address from Netbox');
    case 'allocation-failed':
      return log.warn({ group: e.group, holder: e.holder, err: e.error.message, retryInMs: e.retryInMs }, 'Netbox allocation failed; will retry');
    case 'released':
      return log.info({ group: e.group, holder: e.holder, address: e.address, outcome: e.outcome, why: e.why }, 'gave an address back to Netbox');
    case 'release-failed':
      return log.warn({ group: e.group, address: e.address, err: errText(e.error) }, 'giving an address back to Netbox failed');
    case 'handed-over':
      return log.warn({ group: e.group, address: e.address, holder: e.holder, owner: e.owner }, 'Netbox handed out an address a Service already uses; its record now names that Service');
    case 'relabel-failed':
      return log.warn({ group: e.group, address: e.address, err: errText(e.error) }, 'could not correct the Netbox record');
  }
}
