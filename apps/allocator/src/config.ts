// The allocator's configuration: flags, each with an environment variable as fallback.
import { hostname } from 'node:os';
import { type EndpointConfig, type LogLevel, type Setting, SettingsError, endpointSettings, parseEndpointSettings, parseBool, parseDuration, parseInteger, parseJsonObject, parseLogLevel, readSettings } from '@purelb/k8s-glue';

export { SettingsError as ConfigError, parseDuration };

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
  /** The /metrics and probe listeners. */
  readonly endpoints: EndpointConfig;
  readonly writeConcurrency: number;
  readonly groupStatusIntervalMs: number;
  readonly logLevel: LogLevel;
  /** A ServiceGroup to create when the namespace has none (first install from the manifest). */
  readonly defaultServiceGroup: Record<string, unknown> | undefined;
}

/** Every setting: flag, environment variable, default, meaning. Rendered into --help and the README. */
export const SETTINGS: readonly Setting[] = [
  ['--kubeconfig', 'KUBECONFIG', '(in-cluster)', 'kubeconfig to use; absent: in-cluster service account, then ~/.kube/config'],
  ['--namespace', 'PURELB_NAMESPACE / POD_NAMESPACE', 'purelb', 'namespace of the ServiceGroups and of the leader Lease'],
  ['--identity', 'POD_NAME', '<hostname>-<pid>', 'this replica\'s name in the Lease'],
  ['--lease-name', 'PURELB_LEASE_NAME', 'purelb-allocator', 'name of the Lease replicas compete for'],
  ['--lease-duration', 'PURELB_LEASE_DURATION', '15s', 'how long a Lease holds without renewal; a standby takes over this long after the leader dies'],
  ['--renew-deadline', 'PURELB_RENEW_DEADLINE', '10s', 'the leader gives up (and exits) if it cannot renew within this'],
  ['--retry-period', 'PURELB_RETRY_PERIOD', '2s', 'how often the Lease is renewed or tried'],
  ['--require-loadbalancer-class', 'PURELB_REQUIRE_LOADBALANCER_CLASS', 'false', 'serve only Services with spec.loadBalancerClass purelb.io/purelb (otherwise also those with none)'],
  ...endpointSettings(7472, 7474),
  ['--write-concurrency', 'PURELB_WRITE_CONCURRENCY', '16', 'Service status writes in flight at once'],
  ['--group-status-interval', 'PURELB_GROUP_STATUS_INTERVAL', '1s', 'ServiceGroup status (in use/size) is written at most this often'],
  ['--log-level', 'PURELB_LOG_LEVEL', 'info', 'debug, info, warn, error or silent'],
  ['--default-servicegroup', 'PURELB_DEFAULT_SERVICEGROUP', '', 'a ServiceGroup (JSON) the leader creates once, when its namespace has none: the one-file manifest ships no custom resources, so a first install still gets a default group'],
];

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AllocatorConfig {
  const v = readSettings(SETTINGS, argv, env);
  const get = (flag: string): string => v.get(flag)!;
  const config: AllocatorConfig = {
    kubeconfig: get('--kubeconfig') === '(in-cluster)' ? undefined : get('--kubeconfig'),
    namespace: get('--namespace'),
    identity: get('--identity') === '<hostname>-<pid>' ? `${hostname()}-${process.pid}` : get('--identity'),
    leaseName: get('--lease-name'),
    leaseDurationMs: parseDuration('--lease-duration', get('--lease-duration')),
    renewDeadlineMs: parseDuration('--renew-deadline', get('--renew-deadline')),
    retryPeriodMs: parseDuration('--retry-period', get('--retry-period')),
    requireLoadBalancerClass: parseBool('--require-loadbalancer-class', get('--require-loadbalancer-class')),
    endpoints: parseEndpointSettings(get),
    writeConcurrency: parseInteger('--write-concurrency', get('--write-concurrency'), 1, 256),
    groupStatusIntervalMs: parseDuration('--group-status-interval', get('--group-status-interval')),
    logLevel: parseLogLevel('--log-level', get('--log-level')),
    defaultServiceGroup: parseJsonObject('--default-servicegroup', get('--default-servicegroup')),
  };
  if (!(config.retryPeriodMs < config.renewDeadlineMs && config.renewDeadlineMs < config.leaseDurationMs)) {
    throw new SettingsError('--retry-period < --renew-deadline < --lease-duration must hold, or two replicas could both believe they lead');
  }
  return config;
}
