// Where the API server is and how to authenticate: a kubeconfig file or the in-cluster
// service account.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KubeConfigError } from './errors.ts';

/** How to reach and authenticate to one API server. */
export interface KubeConfig {
  /** `https://host:port`, optionally with a path prefix. */
  readonly server: string;
  /** PEM of the CA that signs the server's certificate (absent: the system roots). */
  readonly caPem?: string | undefined;
  /** Bearer token, or a function called per request (so rotated tokens are picked up). */
  readonly token?: string | (() => string) | undefined;
  /** Client certificate and key (PEM) for certificate authentication. */
  readonly certPem?: string | undefined;
  readonly keyPem?: string | undefined;
  /** Do not verify the server's certificate. For throwaway clusters only. */
  readonly insecureSkipTlsVerify?: boolean | undefined;
  /** The context's namespace, or the service account's namespace in a pod. */
  readonly namespace?: string | undefined;
}

/** Where loadKubeConfig looks. */
export interface LoadKubeConfigOptions {
  /** A kubeconfig path; wins over everything else. */
  readonly kubeconfig?: string | undefined;
  /** A context of the kubeconfig other than its current-context. */
  readonly context?: string | undefined;
  /** The service account folder (default /var/run/secrets/kubernetes.io/serviceaccount). */
  readonly serviceAccountDir?: string | undefined;
  /** The environment to read KUBECONFIG and KUBERNETES_SERVICE_HOST/PORT from (default process.env). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** How often a token file is read again (default 60000 ms; projected tokens rotate hourly). */
  readonly tokenRefreshMs?: number | undefined;
}

/** The service account folder Kubernetes mounts into every pod. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Loads the configuration from, in order: `opts.kubeconfig`; `$KUBECONFIG` (the first of
 * its colon-separated files that exists); the in-cluster service account (when
 * KUBERNETES_SERVICE_HOST is set and its token exists); `~/.kube/config`. Throws a
 * KubeConfigError naming the file and the field when nothing usable is found.
 */
export function loadKubeConfig(opts: LoadKubeConfigOptions = {}): KubeConfig {
  const env = opts.env ?? process.env;
  const refreshMs = opts.tokenRefreshMs ?? 60_000;
  if (opts.kubeconfig) return fromKubeconfigFile(opts.kubeconfig, opts.context, refreshMs);
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(':').filter((f) => f !== '');
    const found = files.find((f) => existsSync(f));
    if (!found) throw new KubeConfigError('', 'KUBECONFIG', `none of ${files.join(', ')} exists`);
    return fromKubeconfigFile(found, opts.context, refreshMs);
  }
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(saDir, 'token'))) return inCluster(saDir, env, refreshMs);
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfigFile(home, opts.context, refreshMs);
  throw new KubeConfigError('', '', `no kubeconfig given, KUBECONFIG unset, not in a pod (KUBERNETES_SERVICE_HOST unset or no ${join(saDir, 'token')}), and no ${home}`);
}

function inCluster(saDir: string, env: NodeJS.ProcessEnv, refreshMs: number): KubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST ?? '';
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!port) throw new KubeConfigError('', 'KUBERNETES_SERVICE_PORT', 'is not set although KUBERNETES_SERVICE_HOST is');
  const caFile = join(saDir, 'ca.crt');
  const nsFile = join(saDir, 'namespace');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    caPem: readText(caFile, 'ca.crt'),
    token: tokenFromFile(join(saDir, 'token'), refreshMs),
    ...(existsSync(nsFile) ? { namespace: readText(nsFile, 'namespace').trim() } : {}),
  };
}

/**
 * A token function that reads `file` again once `refreshMs` has passed. A read that fails
 * after a good one keeps the old token (a rotation writes the file by rename, so a failed
 * read is a passing moment); the first read failing throws.
 */
export function tokenFromFile(file: string, refreshMs = 60_000): () => string {
  let token: string | undefined;
  let readAt = 0;
  return () => {
    const now = performance.now();
    if (token === undefined || now - readAt >= refreshMs) {
      try {
        token = readFileSync(file, 'utf8').trim();
        readAt = now;
      } catch (e) {
        if (token === undefined) throw new KubeConfigError(file, 'token', `cannot read: ${(e as Error).message}`);
      }
    }
    return token;
  };
}

type Yaml = Record<string, unknown>;

function fromKubeconfigFile(file: string, contextName: string | undefined, refreshMs: number): KubeConfig {
  let doc: unknown;
  try {
    doc = parseYaml(readText(file, ''));
  } catch (e) {
    if (e instanceof KubeConfigError) throw e;
    throw new KubeConfigError(file, '', `not YAML: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new KubeConfigError(file, '', 'is not a kubeconfig (not a mapping)');
  const base = dirname(file);
  const name = contextName ?? str(doc['current-context']);
  if (!name) throw new KubeConfigError(file, 'current-context', 'is empty and no context was asked for');
  const context = named(file, doc, 'contexts', 'context', name);
  const clusterName = str(context.cluster);
  const userName = str(context.user);
  if (!clusterName) throw new KubeConfigError(file, `contexts[${name}].context.cluster`, 'is missing');
  const cluster = named(file, doc, 'clusters', 'cluster', clusterName);
  const server = str(cluster.server);
  const cf = `clusters[${clusterName}].cluster`;
  if (!server) throw new KubeConfigError(file, `${cf}.server`, 'is missing');
  try {
    new URL(server);
  } catch {
    throw new KubeConfigError(file, `${cf}.server`, `${server} is not a URL`);
  }
  const caPem = pem(file, base, cluster, cf, 'certificate-authority');
  const user = userName ? named(file, doc, 'users', 'user', userName) : {};
  const uf = `users[${userName ?? ''}].user`;
  for (const unsupported of ['exec', 'auth-provider', 'username', 'password']) {
    if (user[unsupported] !== undefined) throw new KubeConfigError(file, `${uf}.${unsupported}`, 'is not supported; use a token, a token file or a client certificate');
  }
  const certPem = pem(file, base, user, uf, 'client-certificate');
  const keyPem = pem(file, base, user, uf, 'client-key');
  if ((certPem === undefined) !== (keyPem === undefined)) {
    throw new KubeConfigError(file, `${uf}.${certPem === undefined ? 'client-certificate' : 'client-key'}`, 'is missing (a client certificate needs both the certificate and the key)');
  }
  let token: string | (() => string) | undefined = str(user.token);
  const tokenFile = str(user.tokenFile);
  if (token === undefined && tokenFile) {
    const path = resolvePath(base, tokenFile);
    if (!existsSync(path)) throw new KubeConfigError(file, `${uf}.tokenFile`, `${path} does not exist`);
    token = tokenFromFile(path, refreshMs);
  }
  const namespace = str(context.namespace);
  return {
    server,
    ...(caPem !== undefined ? { caPem } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(certPem !== undefined ? { certPem } : {}),
    ...(keyPem !== undefined ? { keyPem } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(namespace ? { namespace } : {}),
  };
}

function named(file: string, doc: Yaml, list: string, inner: string, name: string): Yaml {
  const entries = doc[list];
  if (!Array.isArray(entries)) throw new KubeConfigError(file, list, 'is missing or not a list');
  const entry: unknown = entries.find((e) => isObject(e) && e.name === name);
  if (!isObject(entry)) throw new KubeConfigError(file, `${list}[${name}]`, `no ${inner} named ${name}`);
  const value = entry[inner];
  if (!isObject(value)) throw new KubeConfigError(file, `${list}[${name}].${inner}`, 'is missing or not a mapping');
  return value;
}

/** `field-data` (base64) or `field` (a path relative to the kubeconfig's folder). */
function pem(file: string, base: string, obj: Yaml, prefix: string, field: string): string | undefined {
  const data = str(obj[`${field}-data`]);
  if (data) {
    const text = Buffer.from(data, 'base64').toString('utf8');
    if (!text.includes('-----BEGIN')) throw new KubeConfigError(file, `${prefix}.${field}-data`, 'is not base64 of a PEM block');
    return text;
  }
  const path = str(obj[field]);
  if (!path) return undefined;
  const full = resolvePath(base, path);
  if (!existsSync(full)) throw new KubeConfigError(file, `${prefix}.${field}`, `${full} does not exist`);
  return readText(full, `${prefix}.${field}`);
}

function resolvePath(base: string, path: string): string {
  return isAbsolute(path) ? path : join(base, path);
}

function readText(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new KubeConfigError(file, field, `cannot read: ${(e as Error).message}`);
  }
}

function isObject(v: unknown): v is Yaml {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
