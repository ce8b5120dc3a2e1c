// The HTTP endpoints kubelet probes and Prometheus scrapes.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    switch (path) {
      case '/healthz':
      case '/livez':
        return check(opts.live ?? (() => true)) ? reply(200, 'ok\n') : reply(503, 'not live\n');
      case '/readyz':
        return check(opts.ready) ? reply(200, 'ok\n') : reply(503, 'not ready\n');
      case '/metrics': {
        let text: string;
        try {
          text = registry.metrics();
        } catch (e) {
          return reply(500, `metrics failed: ${e instanceof Error ? e.message : String(e)}\n`);
        }
        return reply(200, text, registry.contentType);
      }
      default:
        return reply(404, 'not found\n');
    }
  });
  // Probes are short; a stuck client must not hold a socket for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
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
