// The allocator's configuration: flags, each with an environment variable as fallback.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

export interface AllocatorConfig {
  /** kubeconfig path; absent: $KUBECONFIG, in-cluster, ~/.kube/config. */
  readonly kubeconfig: string | undefined;
  /** Namespace of the ServiceGroups and the Lease. */
  readonly namespace: string;
  /** This replica's name in the Lease. */
  readonly identity: string;
  readonly leaseName: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly requireLoadBalancerClass: boolean;
  readonly metricsHost: string;
  readonly metricsPort: number;
  readonly writeConcurrency: number;
  readonly groupStatusIntervalMs: number;
  readonly logLevel: string;
}

/** Every setting: flag, environment variable, default, meaning. Rendered into --help and the README. */
export const SETTINGS = [
  ['--kubeconfig', 'KUBECONFIG', '(in-cluster)', 'kubeconfig to use; absent: in-cluster service account, then ~/.kube/config'],
  ['--namespace', 'PURELB_NAMESPACE / POD_NAMESPACE', 'purelb', 'namespace of the ServiceGroups and of the leader Lease'],
  ['--identity', 'POD_NAME', '<hostname>-<pid>', 'this replica\'s name in the Lease'],
  ['--lease-name', 'PURELB_LEASE_NAME', 'purelb-allocator', 'name of the Lease replicas compete for'],
  ['--lease-duration', 'PURELB_LEASE_DURATION', '15s', 'how long a Lease holds without renewal; a standby takes over this long after the leader dies'],
  ['--renew-deadline', 'PURELB_RENEW_DEADLINE', '10s', 'the leader gives up (and exits) if it cannot renew within this'],
  ['--retry-period', 'PURELB_RETRY_PERIOD', '2s', 'how often the Lease is renewed or tried'],
  ['--require-loadbalancer-class', 'PURELB_REQUIRE_LOADBALANCER_CLASS', 'false', 'serve only Services with spec.loadBalancerClass purelb.io/purelb (otherwise also those with none)'],
  ['--metrics-host', 'PURELB_METRICS_HOST', '0.0.0.0', 'address of the /metrics, /healthz, /readyz server'],
  ['--metrics-port', 'PURELB_METRICS_PORT', '7472', 'port of that server (0: any free port)'],
  ['--write-concurrency', 'PURELB_WRITE_CONCURRENCY', '16', 'Service status writes in flight at once'],
  ['--group-status-interval', 'PURELB_GROUP_STATUS_INTERVAL', '1s', 'ServiceGroup status (in use/size) is written at most this often'],
  ['--log-level', 'PURELB_LOG_LEVEL', 'info', 'debug, info, warn or error'],
] as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ALLOCATOR_BAD_CONFIG';
}

/** `250ms`, `2s`, `1m` or a bare number of milliseconds. */
export function parseDuration(setting: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new ConfigError(`${setting}: "${text}" is not a duration like 500ms, 2s or 1m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

function parseInteger(setting: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${setting}: "${text}" is not a whole number in ${min}-${max}`);
  return n;
}

function parseBool(setting: string, text: string): boolean {
  if (/^(true|1|yes)$/i.test(text)) return true;
  if (/^(false|0|no|)$/i.test(text)) return false;
  throw new ConfigError(`${setting}: "${text}" is not true or false`);
}

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AllocatorConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(SETTINGS.map(([flag]) => [flag.slice(2), { type: 'string' as const }])),
    strict: true,
  });
  const get = (flag: string, envNames: string, dflt: string): string => {
    const v = values[flag.slice(2)];
    if (typeof v === 'string') return v;
    for (const e of envNames.split(' / ')) if (env[e] !== undefined && env[e] !== '') return env[e];
    return dflt;
  };
  const c = (i: number): [string, string, string] => {
    const s = SETTINGS[i]!;
    return [s[0], s[1], s[2]];
  };
  const config: AllocatorConfig = {
    kubeconfig: get(...c(0)) === '(in-cluster)' ? undefined : get(...c(0)),
    namespace: get(...c(1)),
    identity: get(c(2)[0], c(2)[1], `${hostname()}-${process.pid}`),
    leaseName: get(...c(3)),
    leaseDurationMs: parseDuration('--lease-duration', get(...c(4))),
    renewDeadlineMs: parseDuration('--renew-deadline', get(...c(5))),
    retryPeriodMs: parseDuration('--retry-period', get(...c(6))),
    requireLoadBalancerClass: parseBool('--require-loadbalancer-class', get(...c(7))),
    metricsHost: get(...c(8)),
    metricsPort: parseInteger('--metrics-port', get(...c(9)), 0, 65535),
    writeConcurrency: parseInteger('--write-concurrency', get(...c(10)), 1, 256),
    groupStatusIntervalMs: parseDuration('--group-status-interval', get(...c(11))),
    logLevel: get(...c(12)),
  };
  if (!(config.retryPeriodMs < config.renewDeadlineMs && config.renewDeadlineMs < config.leaseDurationMs)) {
    throw new ConfigError('--retry-period < --renew-deadline < --lease-duration must hold, or two replicas could both believe they lead');
  }
  return config;
}
