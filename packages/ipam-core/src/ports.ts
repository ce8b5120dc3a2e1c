import { IpamError, IpamErrorCode } from './errors.ts';

/** A Service port as far as sharing cares: two Services may share an address only if no (protocol, port) repeats. */
export interface ServicePort {
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  readonly port: number;
}

const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);

/** Validates ports; throws `IPAM_INVALID_REQUEST` naming the Service and the field. */
export function parsePorts(service: string, ports: readonly ServicePort[]): readonly ServicePort[] {
  const list: unknown = ports;
  if (!Array.isArray(list)) {
    throw new IpamError(IpamErrorCode.InvalidRequest, `Service ${service}: ports: must be a list`, { service, field: 'ports' });
  }
  ports.forEach((p, i) => {
    if (!PROTOCOLS.has(p?.protocol)) {
      throw new IpamError(IpamErrorCode.InvalidRequest, `Service ${service}: ports[${i}].protocol: "${String(p?.protocol)}" is not TCP, UDP or SCTP`, {
        service,
        field: `ports[${i}].protocol`,
      });
    }
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      throw new IpamError(IpamErrorCode.InvalidRequest, `Service ${service}: ports[${i}].port: ${String(p.port)} is not in 1-65535`, {
        service,
        field: `ports[${i}].port`,
      });
    }
  });
  return ports.map((p) => ({ protocol: p.protocol, port: p.port }));
}

/** The first (protocol, port) that both lists contain, if any. */
export function findPortConflict(a: readonly ServicePort[], b: readonly ServicePort[]): ServicePort | undefined {
  for (const p of a) for (const q of b) if (p.port === q.port && p.protocol === q.protocol) return p;
  return undefined;
}
