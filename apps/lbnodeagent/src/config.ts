// The node agent's settings: flags, each with environment variables as fallback.
import { type EndpointConfig, type LogLevel, type Setting, SettingsError, endpointSettings, parseEndpointSettings, parseBool, parseDuration, parseInteger, parseJsonObject, parseLogLevel, readSettings } from '@purelb/k8s-glue';

export interface AgentConfig {
  readonly kubeconfig: string | undefined;
  readonly namespace: string;
  readonly nodeName: string;
  readonly memberlistPort: number;
  /** Undefined: the node's InternalIP of the family of the first one listed. */
  readonly memberlistBind: string | undefined;
  readonly memberlistSecret: string;
  readonly virtualLinkKind: string;
  /** The /metrics and probe listeners. */
  readonly endpoints: EndpointConfig;
  readonly leaseDurationMs: number;
  readonly renewPeriodMs: number;
  readonly addressLifetimeS: number;
  readonly resyncMs: number;
  readonly stallThresholdMs: number;
  /** How often the ARP settings are read again. */
  readonly arpCheckMs: number;
  readonly logLevel: LogLevel;
  /** Create the gossip Secret (a random key) when it does not exist. */
  readonly createMemberlistSecret: boolean;
  /** An LBNodeAgent (JSON) to create when the namespace has none. */
  readonly defaultLBNodeAgent: Record<string, unknown> | undefined;
}

export const SETTINGS: readonly Setting[] = [
  ['--kubeconfig', 'KUBECONFIG', '(in-cluster)', 'kubeconfig to use; absent: in-cluster service account, then ~/.kube/config'],
  ['--namespace', 'PURELB_NAMESPACE / POD_NAMESPACE', 'purelb', 'namespace of the LBNodeAgent configuration, the gossip Secret and the agents\' Leases'],
  ['--node-name', 'NODE_NAME', '', 'this node\'s name (required; from the downward API spec.nodeName)'],
  ['--memberlist-port', 'PURELB_MEMBERLIST_PORT', '7934', 'UDP and TCP port of the membership protocol'],
  ['--memberlist-bind', 'PURELB_MEMBERLIST_BIND', '(node InternalIP)', 'address the membership protocol binds and advertises'],
  ['--memberlist-secret', 'PURELB_MEMBERLIST_SECRET', 'purelb-memberlist', 'Secret holding the gossip keys: `key` (base64, 32 bytes) seals, `keys` (comma-separated) are also accepted'],
  ['--virtual-link-kind', 'PURELB_VIRTUAL_LINK_KIND', 'dummy', 'link kind of the virtual interface (extlbint) when the agent creates it; another kind where the kernel lacks dummy'],
  ...endpointSettings(7473, 7475),
  ['--lease-duration', 'PURELB_LEASE_DURATION', '10s', 'duration of this agent\'s Lease (purelb-agent-<node>): the split-brain guard\'s view of who is alive'],
  ['--renew-period', 'PURELB_RENEW_PERIOD', '2s', 'how often the Lease is renewed'],
  ['--address-lifetime', 'PURELB_ADDRESS_LIFETIME', '1', 'seconds a local (elected) address lives on its interface unless renewed (renewed every quarter of that, only while this node may hold it): a killed or frozen agent\'s addresses stop answering by themselves; virtual addresses are permanent'],
  ['--stall-threshold', 'PURELB_STALL_THRESHOLD', '250ms', 'an event-loop beat this late is a stall (a freeze, a long GC pause): local addresses are withdrawn until a membership probe sent after it is answered'],
  ['--resync', 'PURELB_RESYNC', '500ms', 'how often the guard is re-checked (Leases age, gossip health changes); addresses are re-read and re-applied when its outcome changes, and at least every 5 s'],
  ['--arp-check-period', 'PURELB_ARP_CHECK_PERIOD', '60s', 'how often the node\'s ARP settings (arp_ignore, arp_announce) are checked again; kube-proxy\'s kube-ipvs0 is also checked as soon as it or its addresses change'],
  ['--log-level', 'PURELB_LOG_LEVEL', 'info', 'debug, info, warn, error or silent'],
  ['--create-memberlist-secret', 'PURELB_MEMBERLIST_SECRET_CREATE', 'false', 'create the gossip Secret with a random key when it does not exist (the one-file manifest ships none); an existing Secret is never replaced'],
  ['--default-lbnodeagent', 'PURELB_DEFAULT_LBNODEAGENT', '', 'an LBNodeAgent (JSON) to create when the namespace has none (first install from the manifest)'],
];

export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): AgentConfig {
  const v = readSettings(SETTINGS, argv, env);
  const get = (flag: string): string => v.get(flag)!;
  const nodeName = get('--node-name');
  if (!nodeName) throw new SettingsError('--node-name (or NODE_NAME) is required');
  const c: AgentConfig = {
    kubeconfig: get('--kubeconfig') === '(in-cluster)' ? undefined : get('--kubeconfig'),
    namespace: get('--namespace'),
    nodeName,
    memberlistPort: parseInteger('--memberlist-port', get('--memberlist-port'), 0, 65535),
    memberlistBind: get('--memberlist-bind') === '(node InternalIP)' ? undefined : get('--memberlist-bind'),
    memberlistSecret: get('--memberlist-secret'),
    virtualLinkKind: get('--virtual-link-kind'),
    endpoints: parseEndpointSettings(get),
    leaseDurationMs: parseDuration('--lease-duration', get('--lease-duration')),
    renewPeriodMs: parseDuration('--renew-period', get('--renew-period')),
    addressLifetimeS: parseInteger('--address-lifetime', get('--address-lifetime'), 0, 3600),
    resyncMs: parseDuration('--resync', get('--resync')),
    stallThresholdMs: parseDuration('--stall-threshold', get('--stall-threshold')),
    arpCheckMs: parseDuration('--arp-check-period', get('--arp-check-period')),
    logLevel: parseLogLevel('--log-level', get('--log-level')),
    createMemberlistSecret: parseBool('--create-memberlist-secret', get('--create-memberlist-secret')),
    defaultLBNodeAgent: parseJsonObject('--default-lbnodeagent', get('--default-lbnodeagent')),
  };
  if (c.renewPeriodMs * 2 > c.leaseDurationMs) throw new SettingsError('--renew-period must be at most half of --lease-duration, or a healthy agent\'s Lease could lapse');
  if (c.addressLifetimeS < 1) throw new SettingsError('--address-lifetime: at least 1 second; a local address must expire by itself when its agent dies, so 0 (forever) is refused');
  if (c.arpCheckMs < 1000 || c.arpCheckMs > 3_600_000) throw new SettingsError('--arp-check-period: between 1s and 1h');
  if (c.stallThresholdMs < 50 || c.stallThresholdMs > 10_000) throw new SettingsError('--stall-threshold: between 50ms and 10s');
  return c;
}
