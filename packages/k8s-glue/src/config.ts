// Where the API server is and how to authenticate: a kubeconfig file or the in-cluster
// service account.
import { execFile } from 'node:child_process';
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
  /**
   * Credentials from a kubeconfig `exec` plugin (EKS, GKE, kubelogin, ...): asked before
   * each request (cached by the source), told when the server answered 401. When set, its
   * token and client certificate win over `token`, `certPem` and `keyPem`.
   */
  readonly exec?: CredentialSource | undefined;
}

/** What a credential plugin gave. */
export interface ExecCredentialResult {
  readonly token?: string | undefined;
  readonly certPem?: string | undefined;
  readonly keyPem?: string | undefined;
  /** Wall-clock expiry, when the plugin gave one. */
  readonly expiresAt?: Date | undefined;
}

/** A source of credentials the client asks before each request. */
export interface CredentialSource {
  /** Cached credentials, or fresh ones from the plugin when there are none or they (nearly) expired. Rejects with a KubeConfigError. */
  get(): Promise<ExecCredentialResult>;
  /** The server refused `used` (401): the next get() runs the plugin again (unless newer credentials are cached already). */
  invalidate(used: ExecCredentialResult): void;
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
  /** Bound on one run of an `exec` credential plugin (default 60000 ms). */
  readonly execTimeoutMs?: number | undefined;
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
  const fileOpts = { refreshMs, env, execTimeoutMs: opts.execTimeoutMs ?? 60_000 };
  if (opts.kubeconfig) return fromKubeconfigFile(opts.kubeconfig, opts.context, fileOpts);
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(':').filter((f) => f !== '');
    const found = files.find((f) => existsSync(f));
    if (!found) throw new KubeConfigError('', 'KUBECONFIG', `none of ${files.join(', ')} exists`);
    return fromKubeconfigFile(found, opts.context, fileOpts);
  }
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(saDir, 'token'))) return inCluster(saDir, env, refreshMs);
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) return fromKubeconfigFile(home, opts.context, fileOpts);
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

interface FileOptions {
  readonly refreshMs: number;
  readonly env: NodeJS.ProcessEnv;
  readonly execTimeoutMs: number;
}

function fromKubeconfigFile(file: string, contextName: string | undefined, fo: FileOptions): KubeConfig {
  const refreshMs = fo.refreshMs;
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
  for (const unsupported of ['auth-provider', 'username', 'password']) {
    if (user[unsupported] !== undefined) throw new KubeConfigError(file, `${uf}.${unsupported}`, 'is not supported; use a token, a token file, a client certificate or an exec plugin');
  }
  const exec = user.exec === undefined ? undefined : execSource(file, base, userName ?? '', user.exec, { server, caPem, insecure: cluster['insecure-skip-tls-verify'] === true }, fo);
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
    ...(exec ? { exec } : {}),
  };
}

/** The ExecCredential versions a plugin may be asked for (v1alpha1 is gone from kubectl too). */
export const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const;

/**
 * How long before `expirationTimestamp` cached exec credentials are replaced: 10% of their
 * lifetime, between 10 s and 5 min (and at most half the lifetime), so a request never
 * leaves with a token about to expire.
 */
export function execRefreshMarginMs(lifetimeMs: number): number {
  // Never more than half the lifetime, so a short-lived credential is still used twice.
  return Math.max(0, Math.min(lifetimeMs / 2, 300_000, Math.max(10_000, lifetimeMs / 10)));
}

/**
 * A CredentialSource that runs a kubeconfig `exec` plugin as kubectl does: the command
 * (a path with a slash is relative to the kubeconfig's folder, a bare name is looked up in
 * PATH) with its args, the process environment plus its `env` entries and
 * KUBERNETES_EXEC_INFO (an ExecCredential naming the apiVersion, `interactive: false`, and
 * the cluster when `provideClusterInfo` is set), stdin closed. Its stdout must be an
 * ExecCredential of the same apiVersion with `status.token` and/or
 * `status.clientCertificateData` + `status.clientKeyData`. The result is cached until
 * `status.expirationTimestamp` minus a margin ({@link execRefreshMarginMs}), or until a
 * 401 when there is no expiry. Concurrent requests share one run. A failing run rejects
 * with a KubeConfigError naming the kubeconfig, the user and the command, with the exit
 * code and the first line of stderr; the next request tries again.
 */
function execSource(
  file: string,
  base: string,
  userName: string,
  raw: unknown,
  cluster: { server: string; caPem: string | undefined; insecure: boolean },
  fo: FileOptions,
): CredentialSource {
  const field = `users[${userName}].user.exec`;
  if (!isObject(raw)) throw new KubeConfigError(file, field, 'is not a mapping');
  const command = str(raw.command);
  if (!command) throw new KubeConfigError(file, `${field}.command`, 'is missing');
  const apiVersion = str(raw.apiVersion);
  if (!apiVersion) throw new KubeConfigError(file, `${field}.apiVersion`, `is missing (one of ${EXEC_API_VERSIONS.join(', ')})`);
  if (!(EXEC_API_VERSIONS as readonly string[]).includes(apiVersion)) throw new KubeConfigError(file, `${field}.apiVersion`, `${apiVersion} is not supported (one of ${EXEC_API_VERSIONS.join(', ')})`);
  const args = raw.args === undefined || raw.args === null ? [] : raw.args;
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new KubeConfigError(file, `${field}.args`, 'is not a list of strings');
  const extraEnv: Record<string, string> = {};
  if (raw.env !== undefined && raw.env !== null) {
    if (!Array.isArray(raw.env)) throw new KubeConfigError(file, `${field}.env`, 'is not a list');
    for (const [i, e] of raw.env.entries()) {
      const name = isObject(e) ? str(e.name) : undefined;
      if (!isObject(e) || name === undefined || typeof e.value !== 'string') throw new KubeConfigError(file, `${field}.env[${i}]`, 'needs a name and a string value');
      extraEnv[name] = e.value;
    }
  }
  if (raw.interactiveMode === 'Always') throw new KubeConfigError(file, `${field}.interactiveMode`, 'is Always, but a daemon has no terminal to ask on');
  const hint = str(raw.installHint)?.split('\n')[0];
  const bin = command.includes('/') ? resolvePath(base, command) : command;
  const shown = [command, ...args].join(' ');
  const info = {
    apiVersion,
    kind: 'ExecCredential',
    spec: {
      interactive: false,
      ...(raw.provideClusterInfo === true
        ? {
            cluster: {
              server: cluster.server,
              ...(cluster.caPem !== undefined ? { 'certificate-authority-data': Buffer.from(cluster.caPem).toString('base64') } : {}),
              ...(cluster.insecure ? { 'insecure-skip-tls-verify': true } : {}),
            },
          }
        : {}),
    },
  };
  const env = { ...fo.env, ...extraEnv, KUBERNETES_EXEC_INFO: JSON.stringify(info) };
  const fail = (what: string): KubeConfigError => new KubeConfigError(file, field, `user ${userName}: command ${shown}: ${what}`);

  let cached: (ExecCredentialResult & { refreshAt: number }) | undefined;
  let running: Promise<ExecCredentialResult> | undefined;

  const run = (): Promise<ExecCredentialResult> =>
    new Promise((resolve, reject) => {
      execFile(bin, args, { env, timeout: fo.execTimeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024, encoding: 'utf8', windowsHide: true }, (err, stdout, stderr) => {
        const errLine = stderr.split('\n').map((l) => l.trim()).find((l) => l !== '');
        if (err) {
          const e = err as Error & { killed?: boolean; code?: string | number | null; signal?: string | null };
          if (e.code === 'ENOENT') return reject(fail(`not found${hint ? ` (${hint})` : ''}`));
          if (e.code === 'EACCES') return reject(fail('is not executable'));
          if (e.killed) return reject(fail(`no answer within ${fo.execTimeoutMs} ms${errLine ? `; stderr: ${errLine}` : ''}`));
          const how = typeof e.code === 'number' ? `exit code ${e.code}` : e.signal ? `killed by ${e.signal}` : (e.code ?? e.message.split('\n')[0] ?? 'an error');
          return reject(fail(`failed with ${how}${errLine ? `: ${errLine}` : ''}`));
        }
        let out: unknown;
        try {
          out = JSON.parse(stdout);
        } catch {
          return reject(fail(`did not print an ExecCredential (not JSON: ${stdout.trim().split('\n')[0]?.slice(0, 100) ?? ''})`));
        }
        if (!isObject(out) || out.kind !== 'ExecCredential') return reject(fail('did not print an ExecCredential (kind is not ExecCredential)'));
        if (out.apiVersion !== apiVersion) return reject(fail(`answered apiVersion ${String(out.apiVersion)}, asked for ${apiVersion}`));
        const st = isObject(out.status) ? out.status : {};
        const token = str(st.token);
        const certPem = str(st.clientCertificateData);
        const keyPem = str(st.clientKeyData);
        if ((certPem === undefined) !== (keyPem === undefined)) return reject(fail('gave a client certificate without its key, or a key without its certificate'));
        if (token === undefined && certPem === undefined) return reject(fail('gave neither status.token nor status.clientCertificateData'));
        let expiresAt: Date | undefined;
        const exp = str(st.expirationTimestamp);
        if (exp) {
          expiresAt = new Date(exp);
          if (Number.isNaN(expiresAt.getTime())) return reject(fail(`status.expirationTimestamp ${exp} is not a time`));
        }
        resolve({ token, certPem, keyPem, expiresAt });
      });
    });

  return {
    get() {
      const now = Date.now();
      if (cached && now < cached.refreshAt) return Promise.resolve(cached);
      running ??= run()
        .then((c) => {
          const lifetime = c.expiresAt ? c.expiresAt.getTime() - now : Infinity;
          cached = { ...c, refreshAt: c.expiresAt ? c.expiresAt.getTime() - execRefreshMarginMs(lifetime) : Infinity };
          return c;
        })
        .finally(() => (running = undefined));
      return running;
    },
    invalidate(used) {
      if (cached && cached.token === used.token && cached.certPem === used.certPem) cached = undefined;
    },
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
