// The allocator's Prometheus metrics (purelb_*).
import { Counter, Gauge, Histogram, MetricsRegistry, type WorkQueueMetrics, buildInfo, k8sRequestMetrics, processMetrics, workQueueMetrics } from '@purelb/k8s-glue';
import { VERSION } from './version.ts';

/** Buckets of purelb_allocation_duration_seconds: 5 ms (the usual, a decision and one write) to 1 min (retries after refused writes). */
export const ALLOCATION_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface AllocatorMetrics {
  readonly registry: MetricsRegistry;
  // The pool gauges: one series per ServiceGroup and family. `pool` is the ServiceGroup's
  // name, as upstream PureLB labels its pool metrics, so its dashboards and alerts select
  // them; `group` holds the same name for queries written against earlier releases.
  readonly poolSize: Gauge<'pool' | 'group' | 'family'>;
  readonly poolInUse: Gauge<'pool' | 'group' | 'family'>;
  readonly poolExcluded: Gauge<'pool' | 'group' | 'family'>;
  readonly allocations: Counter;
  /** Service seen -> status with its new addresses written: purelb_allocation_duration_seconds. */
  readonly allocationDuration: Histogram;
  readonly releases: Counter;
  readonly failures: Counter<'reason'>;
  readonly leader: Gauge;
  /** Service status writes the API server refused or that failed, by HTTP status (0: no answer). */
  readonly writeFailures: Counter<'code'>;
  /** The Service work queue: purelb_allocator_workqueue_*. */
  readonly workqueue: WorkQueueMetrics;
}

export function createMetrics(): AllocatorMetrics {
  const registry = new MetricsRegistry();
  // Standard names for dashboards and alerts made for any Node service; the prefixed copy
  // for queries written against earlier releases.
  processMetrics(registry, ['', 'purelb_allocator_']);
  buildInfo(registry, 'allocator', VERSION);
  // purelb_k8s_request_duration_seconds{verb,code}: every API request of this process.
  k8sRequestMetrics(registry);
  return {
    registry,
    poolSize: new Gauge({ name: 'purelb_address_pool_size', help: 'Addresses in the pools of a ServiceGroup, per family.', labelNames: ['pool', 'group', 'family'], registry }),
    poolInUse: new Gauge({ name: 'purelb_address_pool_addresses_in_use', help: 'Addresses of a ServiceGroup held by Services, per family.', labelNames: ['pool', 'group', 'family'], registry }),
    poolExcluded: new Gauge({
      name: 'purelb_address_pool_addresses_excluded',
      help: 'Free addresses of a ServiceGroup never handed out (a Node\'s own; a subnet\'s network, broadcast or subnet-router anycast address), per family.',
      labelNames: ['pool', 'group', 'family'],
      registry,
    }),
    allocations: new Counter({ name: 'purelb_allocations_total', help: 'Services given new or changed addresses.', registry }),
    allocationDuration: new Histogram({
      name: 'purelb_allocation_duration_seconds',
      help: 'From the leader seeing a Service (its add or update through the watch, or the decision for one it already knew) to the status write with its new addresses landing, in seconds.',
      buckets: ALLOCATION_DURATION_BUCKETS,
      registry,
    }),
    releases: new Counter({ name: 'purelb_releases_total', help: 'Services whose addresses were released.', registry }),
    failures: new Counter({ name: 'purelb_allocation_failures_total', help: 'Allocations that failed, by reason (the IPAM error code).', labelNames: ['reason'], registry }),
    leader: new Gauge({ name: 'purelb_allocator_leader', help: '1 while this replica holds the Lease and writes.', registry }),
    writeFailures: new Counter({ name: 'purelb_allocator_service_write_failures_total', help: 'Service status writes that failed, by HTTP status (409: the Service changed since the decision; 0: no answer); each is retried after a per-Service backoff.', labelNames: ['code'], registry }),
    workqueue: workQueueMetrics(registry, 'purelb_allocator_workqueue'),
  };
}
