// A daemon's two listeners and their settings: plain HTTP probes (/healthz, /livez,
// /readyz) for kubelet, and /metrics, by default on HTTPS where only a caller whose
// bearer token the API server authenticates, and allows `get` on /metrics, is served.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { KubeClient } from './client.ts';
import { type HealthServer, startHealthServer, startMetricsServer } from './health.ts';
import { MetricsAccess, kubeAccessReviewer } from './metrics-access.ts';
import type { MetricsRegistry } from './metrics.ts';
import { type PemKeyPair, selfSignedCertificate } from './self-signed-cert.ts';
import { type Setting, SettingsError, parseBool, parseInteger } from './settings.ts';

/** The endpoint settings of a daemon, parsed. */
export interface EndpointConfig {
  readonly host: string;
  readonly metricsPort: number;
  readonly healthPort: number;
  /** HTTPS and token checks on /metrics. */
  readonly secure: boolean;
  /** The certificate and key read from the files given; undefined: self-signed at start (when secure). */
  readonly tls: PemKeyPair | undefined;
}

/** The settings rows (flag, environment, default, meaning), with this daemon's default ports. */
export function endpointSettings(metricsPort: number, healthPort: number): Setting[] {
  return [
    ['--metrics-host', 'PURELB_METRICS_HOST', '0.0.0.0', 'address the /metrics and the probe servers listen on'],
    ['--metrics-port', 'PURELB_METRICS_PORT', String(metricsPort), 'port of /metrics (0: any free port)'],
    ['--health-port', 'PURELB_HEALTH_PORT', String(healthPort), 'port of /healthz, /livez and /readyz, always plain HTTP (0: any free port)'],
    ['--metrics-secure', 'PURELB_METRICS_SECURE', 'true', '/metrics on HTTPS, served only to a bearer token the API server authenticates (TokenReview) and allows to get /metrics (SubjectAccessReview); false: plain HTTP, no checks'],
    ['--metrics-cert-file', 'PURELB_METRICS_CERT_FILE', '', 'PEM certificate of the HTTPS metrics server; empty: a self-signed one made at start'],
    ['--metrics-key-file', 'PURELB_METRICS_KEY_FILE', '', 'PEM private key of that certificate'],
  ];
}

/** Parses the rows of endpointSettings; reads the certificate files. Throws SettingsError naming the flag. */
export function parseEndpointSettings(get: (flag: string) => string): EndpointConfig {
  const metricsPort = parseInteger('--metrics-port', get('--metrics-port'), 0, 65535);
  const healthPort = parseInteger('--health-port', get('--health-port'), 0, 65535);
  if (metricsPort !== 0 && metricsPort === healthPort) throw new SettingsError(`--health-port: ${healthPort} is the --metrics-port too; the probes need a port of their own`);
  const secure = parseBool('--metrics-secure', get('--metrics-secure'));
  const certFile = get('--metrics-cert-file');
  const keyFile = get('--metrics-key-file');
  if ((certFile === '') !== (keyFile === '')) throw new SettingsError('--metrics-cert-file and --metrics-key-file go together: give both or neither');
  if (certFile !== '' && !secure) throw new SettingsError('--metrics-cert-file: a certificate is only used with --metrics-secure=true');
  const read = (flag: string, path: string, label: RegExp): string => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new SettingsError(`${flag}: cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!label.test(text)) throw new SettingsError(`${flag}: ${path} holds no PEM block of the right kind`);
    return text;
  };
  const tls = certFile === '' ? undefined : { cert: read('--metrics-cert-file', certFile, /-----BEGIN CERTIFICATE-----/), key: read('--metrics-key-file', keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/) };
  return { host: get('--metrics-host'), metricsPort, healthPort, secure, tls };
}

/** The running listeners. */
export interface Endpoints {
  readonly metricsPort: number;
  readonly healthPort: number;
  readonly secure: boolean;
  /** True when the certificate was made at start (scrapers cannot verify it: skip verification or give a certificate). */
  readonly selfSigned: boolean;
  close(): Promise<void>;
}

/** What startEndpoints serves. */
export interface EndpointsOptions {
  readonly registry: MetricsRegistry;
  /** /readyz answers 200 while true. */
  readonly ready: () => boolean;
  /** Asks the TokenReviews and SubjectAccessReviews (needs `create` on both: system:auth-delegator). */
  readonly client: KubeClient;
  /** Common name of a self-signed certificate (e.g. purelb-allocator). */
  readonly name: string;
}

/** Starts the probe server and the metrics server. Resolves once both listen. */
export async function startEndpoints(config: EndpointConfig, opts: EndpointsOptions): Promise<Endpoints> {
  const health = await startHealthServer({ port: config.healthPort, host: config.host, registry: opts.registry, ready: opts.ready, serveMetrics: false });
  let metrics: HealthServer;
  const tls = config.secure ? (config.tls ?? selfSignedCertificate({ commonName: opts.name, altNames: [hostname(), 'localhost'] })) : undefined;
  try {
    metrics = await startMetricsServer({
      port: config.metricsPort,
      host: config.host,
      registry: opts.registry,
      tls,
      access: config.secure ? new MetricsAccess(kubeAccessReviewer(opts.client)) : undefined,
    });
  } catch (e) {
    await health.close();
    throw e;
  }
  return {
    metricsPort: metrics.port,
    healthPort: health.port,
    secure: config.secure,
    selfSigned: config.secure && config.tls === undefined,
    close: async () => {
      await Promise.all([metrics.close(), health.close()]);
    },
  };
}
