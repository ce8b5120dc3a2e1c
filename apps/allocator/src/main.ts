// The allocator daemon: one replica leads (holds the Lease) and writes; the others keep
// warm caches and wait. SIGTERM: finish the writes in flight, hand the Lease over, exit.
import { type Node, type Service, type ServiceGroup, trimNode, trimService } from '@purelb/api';
import {
  eventLoopLagHistogram,
  monitorEventLoopLag,
  EventRecorder,
  Informer,
  KubeApiError,
  KubeClient,
  LeaderElector,
  loadKubeConfig,
  loadSettingsOrExit,
  onShutdown,
  startEndpoints,
  createJsonLogger,
} from '@purelb/k8s-glue';
import { SETTINGS, loadConfig } from './config.ts';
import { AllocatorController } from './controller.ts';
import { createMetrics } from './metrics.ts';

const config = loadSettingsOrExit('allocator', 'gives LoadBalancer Services addresses from PureLB ServiceGroups', SETTINGS, loadConfig);
const log = createJsonLogger({ name: 'allocator', level: config.logLevel });
const client = new KubeClient(loadKubeConfig({ ...(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {}) }), { userAgent: `purelb-allocator/${config.identity}` });
const metrics = createMetrics();
monitorEventLoopLag(eventLoopLagHistogram(metrics.registry));
const services = new Informer<Service>(client, { path: '/api/v1/services', transform: (raw) => trimService(raw as Service) });
const groups = new Informer<ServiceGroup>(client, { path: `/apis/purelb.io/v1/namespaces/${config.namespace}/servicegroups` });
// Every address a Node reports is kept out of every pool.
const nodes = new Informer<Node>(client, { path: '/api/v1/nodes', transform: (raw) => trimNode(raw as Node) });
// Events wait while Service writes are going out (up to 10 s): addresses first in a burst.
// The queue holds a burst's worth of them.
const events: EventRecorder = new EventRecorder(client, { component: 'purelb-allocator', host: config.identity, deferWhile: (): boolean => controller.writingServices(), maxQueue: 10_000 });
const controller = new AllocatorController(
  {
    namespace: config.namespace,
    requireLoadBalancerClass: config.requireLoadBalancerClass,
    writeConcurrency: config.writeConcurrency,
    groupStatusIntervalMs: config.groupStatusIntervalMs,
    // A deposed leader has no write outstanding once a standby may take the Lease.
    writeTimeoutMs: Math.max(1000, config.leaseDurationMs - config.renewDeadlineMs),
  },
  { client, services, groups, nodes, events, metrics, log },
);
for (const inf of [services, groups, nodes]) inf.on('error', (e: unknown) => log.warn({ err: e instanceof Error ? e.message : String(e) }, 'watch error; retrying'));

let synced = false;
const health = await startEndpoints(config.endpoints, { registry: metrics.registry, ready: () => synced, client, name: 'purelb-allocator' });
log.info({ port: health.metricsPort, healthPort: health.healthPort, secure: health.secure, selfSigned: health.selfSigned }, 'serving /metrics (and /healthz, /readyz on healthPort)');

services.start();
groups.start();
nodes.start();
await Promise.all([services.synced(), groups.synced(), nodes.synced()]);
synced = true;
log.info({ services: services.list().length, groups: groups.list().length, nodes: nodes.list().length }, 'caches synced');

const elector = new LeaderElector(client, {
  namespace: config.namespace,
  name: config.leaseName,
  identity: config.identity,
  leaseDurationMs: config.leaseDurationMs,
  renewDeadlineMs: config.renewDeadlineMs,
  retryPeriodMs: config.retryPeriodMs,
});

let shuttingDown = false;
onShutdown(
  async () => {
    shuttingDown = true;
    log.info({}, 'shutting down: finishing writes, releasing the Lease');
    await controller.stop();
    await events.flush();
    if (elector.isLeader()) await elector.release();
    await Promise.all([services.stop(), groups.stop(), nodes.stop()]);
    await health.close();
  },
  { timeoutMs: 20_000 },
);

// First install from the one-file manifest: it ships no custom resources (they cannot be
// applied before their CRDs are established), so the leader creates the default
// ServiceGroup once, if its namespace has none. Once per process: deleting every group
// while it runs does not bring the default back (a restart with none would).
let defaultCreated = config.defaultServiceGroup === undefined;
async function createDefaultServiceGroupOnce(): Promise<void> {
  if (defaultCreated || groups.list().length > 0) {
    defaultCreated = true;
    return;
  }
  const sg = config.defaultServiceGroup!;
  const meta = (sg.metadata ?? {}) as Record<string, unknown>;
  try {
    await client.create(`/apis/purelb.io/v1/namespaces/${config.namespace}/servicegroups`, { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', ...sg, metadata: { ...meta, namespace: config.namespace } });
    log.info({ name: meta.name }, 'created the default ServiceGroup');
    defaultCreated = true;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 409) defaultCreated = true;
    else log.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not create the default ServiceGroup; retrying at the next term');
  }
}

// Campaign until shutdown. Losing the Lease (the API server unreachable past the renew
// deadline, or another replica took it) ends this term at once: the controller stops
// taking work, and the next term rebuilds its state from the caches before it writes.
while (!shuttingDown) {
  await elector.run({
    onStartedLeading: async (signal) => {
      log.info({ identity: config.identity }, 'became leader');
      await createDefaultServiceGroupOnce();
      await controller.lead(signal);
    },
    onStoppedLeading: () => {
      if (!shuttingDown) log.warn({ identity: config.identity }, 'lost the Lease; standing by');
    },
    onNewLeader: (id) => log.info({ leader: id }, 'leader'),
  }).catch((e: unknown) => log.error({ err: e instanceof Error ? e.message : String(e) }, 'leader election failed; retrying'));
  if (!shuttingDown) await new Promise((r) => setTimeout(r, config.retryPeriodMs));
}
