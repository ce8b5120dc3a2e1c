// The HTTP endpoints kubelet probes and Prometheus scrapes. Probes stay plain HTTP (kubelet
// sends no token); /metrics can have a server of its own, on HTTPS behind MetricsAccess.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { MetricsAccess } from './metrics-access.ts';
import { MetricsRegistry } from './metrics.ts';
import { processMetrics } from './process-metrics.ts';

/** Options of startHealthServer. */
export interface HealthServerOptions {
  /** TCP port; 0 picks a free one (see the returned port). */
  readonly port: number;
  /** Address to listen on (default: every address, v4 and v6). */
  readonly host?: string | undefined;
  /** Metrics served at /metrics (default: a registry of `processMetrics` without a prefix). */
  readonly registry?: MetricsRegistry | undefined;
  /** /readyz answers 200 while true, 503 otherwise (e.g. informers synced, or this replica leads). */
  readonly ready: () => boolean;
  /** /healthz answers 200 while true, 503 otherwise (default: always true: the event loop answering is the check). */
  readonly live?: (() => boolean) | undefined;
  /** Serve /metrics here too (default true; false when a metrics server of its own serves it). */
  readonly serveMetrics?: boolean | undefined;
}

/** A running health server. */
export interface HealthServer {
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Serves GET /metrics, /healthz and /readyz. Resolves once listening. */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const registry = opts.registry ?? defaultRegistry();
  const check = (fn: () => boolean): boolean => {
    try {
      return fn();
    } catch {
      return false;
    }
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = replier(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    switch (path) {
      case '/healthz':
      case '/livez':
        return check(opts.live ?? (() => true)) ? reply(200, 'ok\n') : reply(503, 'not live\n');
      case '/readyz':
        return check(opts.ready) ? reply(200, 'ok\n') : reply(503, 'not ready\n');
      case '/metrics':
        if (opts.serveMetrics === false) return reply(404, 'not found: /metrics is served on the metrics port\n');
        return serveMetricsText(registry, reply);
      default:
        return reply(404, 'not found\n');
    }
  });
  return listen(server, opts.port, opts.host);
}

/** Options of startMetricsServer. */
export interface MetricsServerOptions {
  /** TCP port; 0 picks a free one (see the returned port). */
  readonly port: number;
  /** Address to listen on (default: every address, v4 and v6). */
  readonly host?: string | undefined;
  readonly registry: MetricsRegistry;
  /** Serve HTTPS with this certificate and key (PEM); absent: plain HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined;
  /** Check every request's bearer token (needs `tls`: a token must not cross the network in clear). */
  readonly access?: MetricsAccess | undefined;
}

/** Serves GET /metrics alone, on HTTPS with authentication and authorization when configured. Resolves once listening. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<HealthServer> {
  const { access, registry } = opts;
  if (access && !opts.tls) throw new TypeError('startMetricsServer: access checks need tls (a bearer token must not be sent in clear)');
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = replier(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (path !== '/metrics') return reply(404, 'not found\n');
    if (!access) return serveMetricsText(registry, reply);
    access.check(req.headers.authorization, '/metrics', 'get').then(
      (d) => {
        if (d.status !== 200) {
          if (d.status === 401) res.setHeader('www-authenticate', 'Bearer');
          return reply(d.status, `${d.status === 401 ? 'Unauthorized' : d.status === 403 ? 'Forbidden' : 'Service Unavailable'}: ${d.reason}\n`);
        }
        serveMetricsText(registry, reply);
      },
      (e: unknown) => reply(500, `access check failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  };
  const server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createServer(handler);
  return listen(server, opts.port, opts.host);
}

type Reply = (status: number, body: string, type?: string) => void;

function replier(req: IncomingMessage, res: ServerResponse): Reply {
  return (status, body, type = 'text/plain; charset=utf-8') => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

function serveMetricsText(registry: MetricsRegistry, reply: Reply): void {
  let text: string;
  try {
    text = registry.metrics();
  } catch (e) {
    return reply(500, `metrics failed: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  reply(200, text, registry.contentType);
}

async function listen(server: Server, port: number, host: string | undefined): Promise<HealthServer> {
  // Probes and scrapes are short; a stuck client must not hold a socket for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function defaultRegistry(): MetricsRegistry {
  const registry = new MetricsRegistry();
  processMetrics(registry);
  return registry;
}
