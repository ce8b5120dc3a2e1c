// A minimal JSON client for the lab's own needs (create nodes, slices, CRDs; check RBAC).
// The product's client lives in @purelb/k8s-glue; the lab stays independent of it.
import { request } from 'node:https';
import { LabError } from './exec.ts';

export interface KubeClientOptions {
  readonly url: string;
  /** Bearer token; absent: an unauthenticated client. */
  readonly token?: string | undefined;
  readonly caPem: string;
  /** TLS server name to verify, when the URL's host is not in the certificate (e.g. a local relay). */
  readonly servername?: string | undefined;
}

export interface RawResponse {
  readonly status: number;
  readonly body: string;
}

export class KubeClient {
  readonly #opts: KubeClientOptions;

  constructor(opts: KubeClientOptions) {
    this.#opts = opts;
  }

  /** One request; never throws for an HTTP status, only for transport failures. Bounded by timeoutMs. */
  raw(method: string, path: string, body?: unknown, contentType = 'application/json', timeoutMs = 15_000): Promise<RawResponse> {
    const u = new URL(path, this.#opts.url);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        u,
        {
          method,
          ca: this.#opts.caPem,
          ...(this.#opts.servername !== undefined ? { servername: this.#opts.servername } : {}),
          timeout: timeoutMs,
          headers: {
            accept: 'application/json',
            ...(this.#opts.token ? { authorization: `Bearer ${this.#opts.token}` } : {}),
            ...(payload !== undefined ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new LabError('LAB_TIMEOUT', `${method} ${path}: no answer in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** A request that must succeed (2xx); returns the parsed body. */
  async json<T = Record<string, unknown>>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const r = await this.raw(method, path, body, contentType);
    if (r.status < 200 || r.status >= 300) throw new LabError('LAB_API_ERROR', `${method} ${path}: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
    return (r.body ? JSON.parse(r.body) : {}) as T;
  }

  get<T = Record<string, unknown>>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  create<T = Record<string, unknown>>(path: string, obj: unknown): Promise<T> {
    return this.json<T>('POST', path, obj);
  }

  /** Server-side apply (creates or updates), with the lab as field manager. */
  apply<T = Record<string, unknown>>(path: string, obj: unknown): Promise<T> {
    return this.json<T>('PATCH', `${path}${path.includes('?') ? '&' : '?'}fieldManager=purelb-lab&force=true`, obj, 'application/apply-patch+yaml');
  }

  mergePatch<T = Record<string, unknown>>(path: string, patch: unknown): Promise<T> {
    return this.json<T>('PATCH', path, patch, 'application/merge-patch+json');
  }

  /** DELETE that tolerates an object already gone. */
  async delete(path: string): Promise<void> {
    const r = await this.raw('DELETE', path);
    if (r.status !== 404 && (r.status < 200 || r.status >= 300)) throw new LabError('LAB_API_ERROR', `DELETE ${path}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
  }
}
