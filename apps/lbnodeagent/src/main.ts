// The node agent daemon (one per node, host network). SIGTERM: withdraw, leave the
// membership, delete the virtual link it created, exit.
import { Keyring, Membership, UdpTransport } from '@purelb/election';
import { type LBNodeAgent, type NodeView, type Service, type ServiceGroup, parseLBNodeAgent, trimNodeView, trimService } from '@purelb/api';
import {
  EventRecorder,
  Informer,
  KubeApiError,
  KubeClient,
  loadKubeConfig,
  loadSettingsOrExit,
  onShutdown,
  startEndpoints,
  createJsonLogger,
} from '@purelb/k8s-glue';
import { openNetlinkHandle } from '@purelb/linux-net';
import { SETTINGS, loadConfig } from './config.ts';
import { GossipSecretError, GossipSecretWatcher, loadGossipKeys, replaceKeys } from './gossip-secret.ts';
import { type LeaseView, type SliceView, NodeAgent } from './agent.ts';
import { createMetrics } from './metrics.ts';
import { ArpCheck, ourIPv4Addresses } from './arp-check.ts';
import { eligibilityEvent, nodeRef } from './node-events.ts';

const config = loadSettingsOrExit('lbnodeagent', 'puts LoadBalancer addresses on this node when it should have them', SETTINGS, loadConfig);
const log = createJsonLogger({ name: 'lbnodeagent', level: config.logLevel, base: { node: config.nodeName } });
const client = new KubeClient(loadKubeConfig({ ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}) }), { userAgent: `purelb-lbnodeagent/${config.nodeName}` });
const ns = config.namespace;

// The gossip keys: one seals, all open (rotation without a gap). A first install from the
// one-file manifest has no Secret; with --create-memberlist-secret the first agent makes
// one with a random key, and the others read that one (an existing Secret is never
// replaced). An unusable Secret stops the agent with one line naming it and the key.
const secretRef = { namespace: ns, name: config.memberlistSecret };
let gossipKeys: Buffer[];
try {
  gossipKeys = await loadGossipKeys(client, secretRef, config.createMemberlistSecret, log);
} catch (e) {
  if (!(e instanceof GossipSecretError)) throw e;
  log.error({ code: e.code }, e.message);
  process.exit(1);
}
const keyring = new Keyring(gossipKeys);

// Where peers reach this member: the flag, else this node's first InternalIP.
let bind = config.memberlistBind;
if (!bind) {
  const node = await client.get<{ status?: { addresses?: { type: string; address: string }[] } }>(`/api/v1/nodes/${config.nodeName}`);
  bind = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
  if (!bind) {
    log.error({}, `node ${config.nodeName} has no InternalIP; set --memberlist-bind`);
    process.exit(1);
  }
}
const transport = await UdpTransport.open({ bindAddress: bind, port: config.memberlistPort });
const membership = new Membership({ name: config.nodeName, transport, keyring });
const netlink = openNetlinkHandle({ virtualLinkKind: config.virtualLinkKind });
const metrics = createMetrics(membership);

const services = new Informer<Service>(client, { path: '/api/v1/services', transform: (raw) => trimService(raw as Service) });
const slices = new Informer<SliceView>(client, {
  path: '/apis/discovery.k8s.io/v1/endpointslices',
  transform: (raw) => {
    const r = raw as { metadata: SliceView['metadata']; endpoints?: { nodeName?: string; conditions?: { ready?: boolean } }[] };
    return {
      metadata: { name: r.metadata.name, namespace: r.metadata.namespace, resourceVersion: r.metadata.resourceVersion, labels: { 'kubernetes.io/service-name': r.metadata.labels?.['kubernetes.io/service-name'] ?? '' } },
      endpoints: (r.endpoints ?? []).map((e) => ({ ...(e.nodeName ? { nodeName: e.nodeName } : {}), ready: e.conditions?.ready !== false })),
    };
  },
});
const groups = new Informer<ServiceGroup>(client, { path: `/apis/purelb.io/v1/namespaces/${ns}/servicegroups` });
const agents = new Informer<LBNodeAgent>(client, { path: `/apis/purelb.io/v1/namespaces/${ns}/lbnodeagents` });
// The agents' Leases carry this agent's own renewals (every --renew-period): silence for
// three periods means the watch is dead, and the safety rule must stop trusting it.
const leases = new Informer<LeaseView>(client, {
  path: `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`,
  labelSelector: 'purelb.io/component=lbnodeagent',
  idleTimeoutMs: 3 * config.renewPeriodMs,
});
// Every Node, trimmed to its labels and NetworkUnavailable: this node's own for the
// eligibility rule (the exclusion label, NetworkUnavailable), every member's for the
// ServiceGroups' node selectors (all agents elect among the same selected members).
const nodes = new Informer<NodeView>(client, {
  path: '/api/v1/nodes',
  transform: (raw) => trimNodeView(raw as NodeView),
});
const events = new EventRecorder(client, { component: 'purelb-lbnodeagent', host: config.nodeName });
// Key rotation without a restart: a valid change replaces the membership's keys in place.
const gossipSecret = new GossipSecretWatcher(secretRef, gossipKeys, { client, log, events, registry: metrics.registry, apply: (keys) => replaceKeys(keyring, keys) });
const informers = [services, slices, groups, agents, leases, nodes];
for (const inf of informers) inf.on('error', (e: unknown) => log.warn({ err: e instanceof Error ? e.message : String(e) }, 'watch error; retrying'));

const agent = new NodeAgent(
  {
    node: config.nodeName,
    namespace: ns,
    leaseDurationMs: config.leaseDurationMs,
    renewPeriodMs: config.renewPeriodMs,
    addressLifetimeS: config.addressLifetimeS,
    resyncMs: config.resyncMs,
    stallThresholdMs: config.stallThresholdMs,
    memberlistAddress: transport.address,
  },
  {
    client, netlink, membership, services, slices, groups, agents, leases, nodes, events, metrics, log,
    onEligibilityChange: (before, now) => {
      const ev = eligibilityEvent(before, now);
      if (ev) events.event(nodeRef(config.nodeName), ev.type, ev.reason, ev.message);
    },
  },
);

// The node's ARP settings, checked (and made strict when the LBNodeAgent says so). An
// invalid LBNodeAgent keeps the last valid choice, as the agent keeps its links.
let setARPSysctls = false;
const arpCheck = new ArpCheck({
  node: config.nodeName,
  netlink,
  lanLinks: () => agent.ipv4LocalLinks,
  ourAddresses: () => ourIPv4Addresses(services.list()),
  setSysctls: () => {
    const list = agents.list();
    const cfg = list.find((a) => a.metadata.name === 'default') ?? list[0];
    const parsed = cfg && parseLBNodeAgent(cfg);
    if (parsed?.ok) setARPSysctls = parsed.settings.setARPSysctls;
    return setARPSysctls;
  },
  events,
  metrics,
  log,
  periodMs: config.arpCheckMs,
});
for (const ev of ['add', 'update'] as const) agents.on(ev, () => arpCheck.requestCheck());

const health = await startEndpoints(config.endpoints, { registry: metrics.registry, ready: () => agent.ready, client, name: 'purelb-lbnodeagent' });
log.info({ port: health.metricsPort, healthPort: health.healthPort, secure: health.secure, selfSigned: health.selfSigned, memberlist: transport.address }, 'serving /metrics (and /healthz, /readyz on healthPort)');

let stopping = false;
onShutdown(
  async () => {
    stopping = true;
    log.info({}, 'shutting down: withdrawing, leaving the membership');
    arpCheck.stop();
    await agent.stop();
    await events.flush();
    await membership.shutdown();
    await Promise.all([...informers.map((i) => i.stop()), gossipSecret.stop()]);
    netlink.close();
    await health.close();
  },
  { timeoutMs: 10_000 },
);

for (const inf of informers) inf.start();
gossipSecret.start();
await Promise.all([...informers.map((i) => i.synced()), gossipSecret.synced()]);
membership.start();
// First install from the manifest: no LBNodeAgent yet; the defaults are created once.
if (config.defaultLBNodeAgent && agents.list().length === 0) {
  const meta = (config.defaultLBNodeAgent.metadata ?? {}) as Record<string, unknown>;
  await client
    .create(`/apis/purelb.io/v1/namespaces/${ns}/lbnodeagents`, { apiVersion: 'purelb.io/v1', kind: 'LBNodeAgent', ...config.defaultLBNodeAgent, metadata: { ...meta, namespace: ns } })
    .then(() => log.info({ name: meta.name }, 'created the default LBNodeAgent'))
    .catch((e: unknown) => {
      if (!(e instanceof KubeApiError && e.status === 409)) log.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not create the default LBNodeAgent');
    });
}
await agent.start();
// Not awaited: reading the node's settings never holds up the start.
void arpCheck.start();
log.info({ services: services.size, peers: agent.seeds().length }, 'caches synced; agent started');

// Join through the peers the other agents' Leases name; keep trying until one answers
// (the first agent of a cluster has nobody to join, and that is fine).
const joinLoop = async (): Promise<void> => {
  for (let attempt = 0; attempt < 86_400 && !stopping; attempt++) {
    const seeds = agent.seeds();
    if (seeds.length > 0) {
      const answered = await membership.join(seeds).catch(() => 0);
      if (answered > 0) {
        log.info({ seeds, answered }, 'joined the membership');
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 1000));
    if (membership.liveMembers().length > 1) return;
  }
};
void joinLoop();
