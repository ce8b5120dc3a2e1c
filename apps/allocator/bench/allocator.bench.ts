// Benchmarks for the allocator (npm run bench -- allocator), against the lab's real
// kube-apiserver with one allocator replica as a separate process:
//   - create to allocated at a steady 20 Services/s (p50/p99, median over runs);
//   - 1,000 Services created at once until every one has an address;
//   - API writes per new Service, from the API server's own apiserver_request_total;
//   - the allocator's resident memory holding 5,000 allocated Services.
// Every time is taken by this process: t0 just before the Service POST, t1 when a watch
// on Services delivers the Service with an ingress address. Services are IPv6
// single-stack from 2001:db8:5::/64: the IPv4 documentation ranges hold too few
// addresses for thousands of Services. No address is ever configured on an interface.
import { readFileSync } from 'node:fs';
import { KubeClient as GlueClient, loadKubeConfig } from '@purelb/k8s-glue';
import { join } from 'node:path';
import { type DaemonProcess, type Lab, PURELB_NAMESPACE, installPureLB, run, shippedCommand, startAllocator, startLab, waitFor } from '@purelb/lab';
import { type BenchSuite, cpuSeconds, median, nowMs, percentile, machineLoad, vmRssMb } from '../../../bench/lib.ts';

const LATENCY_RUNS = 5;
const LATENCY_SERVICES = 200;
const LATENCY_PACE_MS = 50; // 20 Services/s
const BURST_RUNS = 3;
const BURST_SERVICES = 1000;
const POST_CONCURRENCY = 32;
const RSS_SERVICES = 5000;
const IDLE_WINDOW_MS = 8000;
const SETTLE_MS = 3000;
const POOL = '2001:db8:5::/64';
const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'APPLY']);
/**
 * Writes the API server makes itself for each Service POST (its ClusterIP allocator
 * records every cluster IP as an IPAddress object through its loopback client): caused by
 * the bench's POSTs, not by the allocator.
 */
const API_SERVER_OWN = new Set(['POST ipaddresses']);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface SvcView {
  metadata: { name: string; namespace: string; resourceVersion: string };
  status?: { loadBalancer?: { ingress?: { ip?: string }[] } };
}

/**
 * One watch on every Service: remembers when each Service was first seen with an ingress
 * address (this process's clock). Resumes from the last resourceVersion if the stream ends.
 */
class AllocationWatch {
  readonly allocatedAt = new Map<string, number>();
  readonly #client: GlueClient;
  readonly #abort = new AbortController();
  #rv = '';
  #listeners = new Set<() => void>();
  #done: Promise<void> | undefined;

  constructor(client: GlueClient) {
    this.#client = client;
  }

  async start(): Promise<void> {
    const list = await this.#client.list<SvcView>('/api/v1/services');
    for (const s of list.items) this.#see(s);
    this.#rv = list.metadata.resourceVersion;
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    for (let attempt = 0; attempt < 1000 && !this.#abort.signal.aborted; attempt++) {
      try {
        for await (const ev of this.#client.watch<SvcView>('/api/v1/services', { resourceVersion: this.#rv, timeoutSeconds: 1800, signal: this.#abort.signal })) {
          if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
            this.#rv = ev.object.metadata.resourceVersion;
            this.#see(ev.object);
          } else if (ev.type === 'DELETED') {
            this.#rv = ev.object.metadata.resourceVersion;
            this.allocatedAt.delete(`${ev.object.metadata.namespace}/${ev.object.metadata.name}`);
          }
        }
      } catch (e) {
        if (this.#abort.signal.aborted) return;
        // A 410 would need a relist; with a fresh lab and minutes of history it does not happen.
        process.stderr.write(`allocator bench: Service watch ended (${e instanceof Error ? e.message : String(e)}); resuming\n`);
        await sleep(50);
      }
    }
  }

  #see(s: SvcView): void {
    const key = `${s.metadata.namespace}/${s.metadata.name}`;
    if (this.allocatedAt.has(key) || !(s.status?.loadBalancer?.ingress ?? []).some((i) => i.ip)) return;
    this.allocatedAt.set(key, nowMs());
    for (const l of this.#listeners) l();
  }

  /** Resolves when every key has an address; rejects after timeoutMs. */
  waitAll(keys: readonly string[], timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let missing = keys.filter((k) => !this.allocatedAt.has(k));
      const check = (): void => {
        missing = missing.filter((k) => !this.allocatedAt.has(k));
        if (missing.length === 0) finish();
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(new Error(`${missing.length} of ${keys.length} Services got no address in ${timeoutMs} ms (first: ${missing[0]})`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        resolve();
      };
      this.#listeners.add(check);
      check();
    });
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }
}

function serviceBody(ns: string, name: string, type = 'LoadBalancer'): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns },
    spec: {
      type,
      ipFamilies: ['IPv6'],
      ipFamilyPolicy: 'SingleStack',
      ...(type === 'LoadBalancer' ? { allocateLoadBalancerNodePorts: false } : {}),
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    },
  };
}

async function ensureNamespace(client: GlueClient, ns: string): Promise<void> {
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
}

/** Creates the Services with at most `concurrency` POSTs in flight; returns each POST's t0. */
async function createMany(client: GlueClient, ns: string, names: readonly string[], concurrency: number, type = 'LoadBalancer'): Promise<Map<string, number>> {
  const t0 = new Map<string, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++]!;
      t0.set(`${ns}/${name}`, nowMs());
      await client.create(`/api/v1/namespaces/${ns}/services`, serviceBody(ns, name, type));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return t0;
}

/**
 * The Events written between two wall-clock instants: per reason and source, and how many
 * were not the allocator's (the API server writes a few of its own, e.g. its ClusterIP
 * repair loop's ClusterIPNotAllocated, for Services the bench created).
 */
async function eventCensus(client: GlueClient, fromMs: number, toMs: number): Promise<{ text: string; foreign: number }> {
  interface Ev { metadata: { creationTimestamp: string }; reason: string; involvedObject: { kind: string; name: string }; source?: { component?: string }; reportingComponent?: string }
  const all = await client.list<Ev>('/api/v1/events');
  // creationTimestamp has whole seconds: widen the window to them.
  const from = Math.floor(fromMs / 1000) * 1000;
  const inWindow = all.items.filter((e) => {
    const t = Date.parse(e.metadata.creationTimestamp);
    return t >= from && t <= toMs;
  });
  const by = new Map<string, number>();
  let foreign = 0;
  for (const e of inWindow) {
    const source = e.source?.component || e.reportingComponent || '?';
    if (source !== 'purelb-allocator') foreign++;
    const k = `${e.reason} (${source})`;
    by.set(k, (by.get(k) ?? 0) + 1);
  }
  return { text: [...by].map(([k, n]) => `${k} ${n}`).join(', '), foreign };
}

/**
 * Waits until the allocator has stopped writing (apart from Lease renewals) for `quietMs`,
 * at least `minMs` and at most `maxMs`: Events and the ServiceGroup status trail the Service
 * writes and belong in the count.
 */
async function settleWrites(lab: Lab, minMs: number, quietMs: number, maxMs: number): Promise<Map<string, number>> {
  const start = nowMs();
  const busy = (m: Map<string, number>): number => totalWithout(m, new Set(['PUT leases', 'PATCH leases']));
  let last = await writeCounters(lab);
  let lastChange = nowMs();
  while (nowMs() - start < maxMs) {
    await sleep(250);
    const now = await writeCounters(lab);
    if (busy(now) !== busy(last)) lastChange = nowMs();
    last = now;
    if (nowMs() - start >= minMs && nowMs() - lastChange >= quietMs) break;
  }
  return last;
}

/**
 * Deletes the Services and waits until the API server lists none of them, then a little
 * more for the allocator to release them: every burst starts from the same cluster, since
 * the API server here accepts Service POSTs more slowly the more Services it holds.
 */
async function deleteMany(client: GlueClient, ns: string, names: readonly string[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++]!;
      await client.delete(`/api/v1/namespaces/${ns}/services/${name}`, { ignoreNotFound: true });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  await waitFor(`the Services of ${ns} to be gone`, async () => ((await client.list(`/api/v1/namespaces/${ns}/services`)).items.length === 0 ? true : undefined), 60_000, 250);
  await sleep(SETTLE_MS);
}

/** apiserver_request_total for write verbs, by `verb resource[/subresource]`. */
async function writeCounters(lab: Lab): Promise<Map<string, number>> {
  const r = await lab.controlPlane.admin.raw('GET', '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics of the API server: HTTP ${r.status}`);
  const out = new Map<string, number>();
  for (const line of r.body.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const m = /^apiserver_request_total\{([^}]*)\}\s+([0-9.e+]+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (!WRITE_VERBS.has(labels.verb ?? '')) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

function diff(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out.set(k, d);
  }
  return out;
}

const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
const totalWithout = (m: Map<string, number>, skip: ReadonlySet<string>): number => [...m].filter(([k]) => !skip.has(k)).reduce((a, [, v]) => a + v, 0);

function ownWrites(client: GlueClient): number {
  const c = client.requestCounts();
  return (c.POST ?? 0) + (c.PUT ?? 0) + (c.PATCH ?? 0);
}


async function rssMedian(pid: number, reads: number, everyMs: number): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < reads; i++) {
    if (i > 0) await sleep(everyMs);
    values.push(vmRssMb(pid));
  }
  return median(values);
}


const repoRoot = join(import.meta.dirname, '..', '..', '..');

/** Bundles the allocator as its image does (tools/bundle.ts); the lab then runs it `shipped`. */
async function bundleAllocator(): Promise<void> {
  await run(process.execPath, [join(repoRoot, 'tools', 'bundle.ts'), 'allocator'], { timeoutMs: 300_000 });
}

/** Heap and RSS as the process reports them on its /metrics (k8s-glue's process metrics). */
async function memoryBreakdown(port: number): Promise<string> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  const get = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
  return `rss ${get('purelb_allocator_process_resident_memory_bytes').toFixed(1)} MB, heap used ${get('purelb_allocator_nodejs_heap_size_used_bytes').toFixed(1)} MB of ${get('purelb_allocator_nodejs_heap_size_total_bytes').toFixed(1)} MB, external ${get('purelb_allocator_nodejs_external_memory_bytes').toFixed(1)} MB`;
}

const suite: BenchSuite = {
  suite: 'allocator',
  targets: {
    create_to_allocated_p50_ms: ['<=', 15],
    create_to_allocated_p99_ms: ['<=', 40],
    burst_1000_seconds: ['<=', 5],
    writes_per_service: ['<=', 2],
    allocator_rss_mb: ['<=', 100],
    allocator_rss_mb_after_restart: ['<=', 100],
  },
  async run() {
    const started = nowMs();
    const notes: Record<string, string | number> = { machine_at_start: machineLoad() };
    const samples: Record<string, number[]> = {};
    const lab = await startLab({ nodes: 1 });
    let allocator: DaemonProcess | undefined;
    let watch: AllocationWatch | undefined;
    let restarted: DaemonProcess | undefined;
    await bundleAllocator();
    const client = new GlueClient(loadKubeConfig({ kubeconfig: lab.kubeconfigPath }), { maxSockets: POST_CONCURRENCY + 8 });
    try {
      const admin = lab.controlPlane.admin;
      await installPureLB(admin, { defaults: false });
      await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/default`, {
        apiVersion: 'purelb.io/v1',
        kind: 'ServiceGroup',
        metadata: { name: 'default', namespace: PURELB_NAMESPACE },
        spec: { local: { v6pools: [{ pool: POOL, subnet: POOL, aggregation: 'default' }] } },
      });
      // Every allocator here runs as its image runs it: the bundle, with the image's Node flags.
      const idle = await startAllocator(lab.controlPlane, { identity: 'bench-idle', shipped: true });
      await sleep(2000);
      notes.allocator_rss_mb_idle_0_services = Number((await rssMedian(idle.pid!, 3, 300)).toFixed(1));
      notes.allocator_command = `node ${shippedCommand('allocator').map((a) => a.replace(`${repoRoot}/`, '')).join(' ')}`;
      await idle.stop();
      allocator = await startAllocator(lab.controlPlane, { identity: 'bench', shipped: true });
      const pid = allocator.pid!;
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('allocator')) throw new Error(`pid ${pid} is not the allocator`);
      watch = new AllocationWatch(client);
      await watch.start();

      // Warm-up: connections, the allocator's first writes, JIT. Not recorded.
      await ensureNamespace(client, 'warm');
      const warmNames = Array.from({ length: 50 }, (_, i) => `w${i}`);
      await createMany(client, 'warm', warmNames, 4);
      await watch.waitAll(warmNames.map((n) => `warm/${n}`), 30_000);

      // 1. Steady 20 Services/s: each POST starts on its own schedule, never waiting for the last.
      const p50s: number[] = [];
      const p99s: number[] = [];
      const postMs: number[] = [];
      samples.create_to_allocated_ms = [];
      for (let run = 0; run < LATENCY_RUNS; run++) {
        const ns = `lat-${run}`;
        await ensureNamespace(client, ns);
        await sleep(1000);
        const t0 = new Map<string, number>();
        const posts: Promise<void>[] = [];
        const begin = nowMs();
        for (let i = 0; i < LATENCY_SERVICES; i++) {
          const due = begin + i * LATENCY_PACE_MS;
          const wait = due - nowMs();
          if (wait > 0) await sleep(wait);
          const name = `s${i}`;
          const start = nowMs();
          t0.set(`${ns}/${name}`, start);
          posts.push(client.create(`/api/v1/namespaces/${ns}/services`, serviceBody(ns, name)).then(() => void postMs.push(nowMs() - start)));
        }
        await Promise.all(posts);
        await watch.waitAll([...t0.keys()], 30_000);
        const lat = [...t0].map(([k, t]) => watch!.allocatedAt.get(k)! - t);
        samples.create_to_allocated_ms.push(...lat);
        p50s.push(percentile(lat, 50));
        p99s.push(percentile(lat, 99));
        notes[`latency_run_${run}`] = `p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms, sent over ${((nowMs() - begin) / 1000).toFixed(1)} s`;
      }
      notes.post_service_p50_ms = Number(percentile(postMs, 50).toFixed(2));
      notes.post_service_p99_ms = Number(percentile(postMs, 99).toFixed(2));

      // 2 + 3. Bursts in fresh namespaces, with the API server's write counters around them.
      const bursts: number[] = [];
      const perSvc: number[] = [];
      const perSvcAll: number[] = [];
      const groupWritesPerBurst: number[] = [];
      const lags: number[] = [];
      samples.burst_1000_seconds = [];
      samples.writes_per_service = [];
      samples.writes_per_service_all = [];
      for (let run = 0; run < BURST_RUNS; run++) {
        const ns = `burst-${run}`;
        await ensureNamespace(client, ns);
        // Idle window: the allocator's time-based writes (Lease renewals, group status).
        const idle0 = await writeCounters(lab);
        const i0 = nowMs();
        await sleep(IDLE_WINDOW_MS);
        const idle1 = await writeCounters(lab);
        const i1 = nowMs();
        const idleWrites = diff(idle1, idle0);

        const names = Array.from({ length: BURST_SERVICES }, (_, i) => `b${i}`);
        const servicesBefore = (await client.list('/api/v1/services')).items.length;
        const own0 = ownWrites(client);
        const before = idle1;
        const b0 = i1;
        const wall0 = Date.now();
        const cpu0 = cpuSeconds(pid);
        const start = nowMs();
        const t0 = await createMany(client, ns, names, POST_CONCURRENCY);
        const postsDone = nowMs();
        const keys = [...t0.keys()];
        await watch.waitAll(keys, 120_000);
        const last = Math.max(...keys.map((k) => watch!.allocatedAt.get(k)!));
        const seconds = (last - start) / 1000;
        const allocatorCpu = cpuSeconds(pid) - cpu0;
        bursts.push(seconds);
        const after = await settleWrites(lab, SETTLE_MS, 2000, 30_000);
        const b1 = nowMs();
        const census = await eventCensus(client, wall0, Date.now());
        const own = ownWrites(client) - own0;
        const burstWrites = diff(after, before);
        // Everything the allocator wrote: all writes in the window but the bench's POSTs and
        // what the API server wrote itself (IPAddress objects, its own Events).
        const allocatorWrites = totalWithout(burstWrites, API_SERVER_OWN) - own - census.foreign;
        const about = (prefix: string): number => [...burstWrites].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);
        // Writes about the new Services: to the Services themselves (status, metadata) and
        // their Events. The bench's own writes are POSTs of Services; the API server's own
        // Events are in census.foreign.
        const serviceWrites = about('PATCH services') + about('PUT services') + about('APPLY services') + about('POST events') + about('PATCH events') - census.foreign;
        const groupWrites = about('PATCH servicegroups') + about('PUT servicegroups');
        lags.push(last - postsDone);
        perSvc.push(serviceWrites / BURST_SERVICES);
        perSvcAll.push(allocatorWrites / BURST_SERVICES);
        groupWritesPerBurst.push(groupWrites);
        samples.burst_1000_seconds.push(seconds);
        samples.writes_per_service.push(serviceWrites / BURST_SERVICES);
        samples.writes_per_service_all.push(allocatorWrites / BURST_SERVICES);
        const fmt = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
        notes[`burst_run_${run}`] = `${seconds.toFixed(2)} s to all allocated (POSTs done after ${((postsDone - start) / 1000).toFixed(2)} s); window ${((b1 - b0) / 1000).toFixed(1)} s: writes ${fmt(burstWrites)}; of them the bench's own ${own}, the API server's own ${total(burstWrites) - totalWithout(burstWrites, API_SERVER_OWN) + census.foreign}`;
        notes[`burst_run_${run}_events`] = census.text;
        notes[`burst_run_${run}_services_before`] = servicesBefore;
        notes[`burst_run_${run}_allocator_cpu_seconds`] = Number(allocatorCpu.toFixed(2));
        await deleteMany(client, ns, names, POST_CONCURRENCY);
        notes[`burst_run_${run}_idle_writes`] = `${fmt(idleWrites)} in ${((i1 - i0) / 1000).toFixed(1)} s`;
      }

      // The floor on this machine: the same 1,000 POSTs as ClusterIP Services, which the
      // allocator reads but leaves alone (the API server's share of a burst).
      {
        await ensureNamespace(client, 'floor');
        const floorNames = Array.from({ length: BURST_SERVICES }, (_, i) => `c${i}`);
        const f0 = nowMs();
        await createMany(client, 'floor', floorNames, POST_CONCURRENCY, 'ClusterIP');
        notes.burst_1000_clusterip_posts_seconds = Number(((nowMs() - f0) / 1000).toFixed(2));
        await deleteMany(client, 'floor', floorNames, POST_CONCURRENCY);
      }

      // 4. Fill up to 5,000 allocated Services and read the allocator's RSS.
      const have = watch.allocatedAt.size;
      const fill = Math.max(0, RSS_SERVICES - have);
      await ensureNamespace(client, 'fill');
      const fillNames = Array.from({ length: fill }, (_, i) => `f${i}`);
      await createMany(client, 'fill', fillNames, POST_CONCURRENCY);
      await watch.waitAll(fillNames.map((n) => `fill/${n}`), 180_000);
      await sleep(3000);
      const rssReads: number[] = [];
      for (let i = 0; i < 7; i++) {
        if (i > 0) await sleep(1000);
        rssReads.push(vmRssMb(pid));
      }
      samples.allocator_rss_mb = rssReads;

      notes.allocator_memory = await memoryBreakdown(allocator.metricsPort);

      // 5. A restart: a second replica takes over and adopts the same 5,000 Services (its
      // initial list of 5,000 grows the heap for a while).
      await allocator.stop();
      restarted = await startAllocator(lab.controlPlane, { identity: 'bench-restarted', shipped: true });
      const rp = restarted;
      await waitFor('the restarted allocator to lead', () => {
        if (!rp.running) throw new Error(`restarted allocator exited:\n${rp.tail(30)}`);
        return rp.tail(200).includes('became leader') ? true : undefined;
      }, 60_000, 50);
      // V8 gives back heap it grew for the initial list only after a while of little
      // allocation (its memory reducer): read over 30 s, report the last 7 reads.
      const restartSeries: number[] = [];
      for (let i = 0; i < 30; i++) {
        await sleep(1000);
        restartSeries.push(vmRssMb(rp.pid!));
      }
      const restartReads = restartSeries.slice(-7);
      notes.allocator_rss_mb_after_restart_series = restartSeries.map((v) => v.toFixed(0)).join(' ');
      samples.allocator_rss_mb_after_restart = restartReads;
      notes.allocator_memory_after_restart = await memoryBreakdown(rp.metricsPort);
      const metrics = {
        create_to_allocated_p50_ms: median(p50s),
        create_to_allocated_p99_ms: median(p99s),
        burst_1000_seconds: median(bursts),
        writes_per_service: median(perSvc),
        writes_per_service_all: median(perSvcAll),
        group_status_writes_per_burst: median(groupWritesPerBurst),
        allocator_rss_mb: median(rssReads),
        allocator_rss_mb_after_restart: median(restartReads),
        burst_1000_after_last_post_ms: median(lags),
      };
      notes.services_allocated_at_rss_read = watch.allocatedAt.size;
      notes.runs = `latency ${LATENCY_RUNS} x ${LATENCY_SERVICES} Services paced ${LATENCY_PACE_MS} ms (p50/p99 per run, median of runs); burst ${BURST_RUNS} x ${BURST_SERVICES} (${POST_CONCURRENCY} POSTs in flight, fresh namespace each, deleted after); RSS median of 7 reads over 6 s`;
      notes.addresses = `IPv6 single-stack Services from ServiceGroup pool ${POOL} (the IPv4 documentation ranges are too small for thousands of Services)`;
      notes.timing = 't0 just before the Service POST (this process), t1 when this process\'s watch on Services delivers the Service with an ingress address; includes the API server\'s POST handling and watch fan-out';
      notes.writes = `apiserver_request_total, verbs POST/PUT/PATCH/APPLY, from the last idle read before a burst until the allocator has written nothing but Lease renewals for 2 s (at least ${SETTLE_MS} ms after the last allocation), minus the bench's own POSTs and what the API server wrote itself (an IPAddress per Service POST, and its own Events, counted by source). writes_per_service: writes about the new Services (their status and metadata, their Events) / ${BURST_SERVICES}; writes_per_service_all: every write the allocator sent in the window, ServiceGroup status and Lease renewals included, / ${BURST_SERVICES}; group_status_writes_per_burst: ServiceGroup status writes in the window (at most one per group per --group-status-interval, 1 s by default)`;
      notes.burst = 'burst_1000_seconds runs from the first POST to the last address seen; each burst starts from the same cluster (burst_run_N_services_before Services; the previous burst\'s Services are deleted first), because this API server accepts Service POSTs more slowly the more Services it holds (with the allocator stopped, 1,000 ClusterIP POSTs took 2.2 s with 1,000 Services present and 10.5 s with 7,000, in a separate run); burst_1000_clusterip_posts_seconds is the API server alone on the same cluster: 1,000 ClusterIP Service POSTs, which the allocator reads and leaves alone; burst_1000_after_last_post_ms is how long after the last POST was answered the last address was seen';
      notes.rss = 'VmRSS (includes the pages of the node binary it touched, about 50 MB, which every Node process on a host shares). allocator_rss_mb: the allocator that allocated the 5,000 Services, median of 7 reads over 6 s; allocator_rss_mb_after_restart: a second replica that took over and adopted them, median of the last 7 of 30 reads, one a second';
      notes.setup = '1-node lab, one allocator replica at a time (default flags), run as its image runs it: apps/allocator/dist/allocator.mjs (tools/bundle.ts) with the Node flags of the Dockerfile ENTRYPOINT (allocator_command); no agents';
      notes.suite_seconds = Math.round((nowMs() - started) / 1000);
      notes.machine_at_end = machineLoad();
      return { metrics, notes, samples };
    } finally {
      await watch?.stop().catch(() => undefined);
      client.close();
      await allocator?.stop().catch(() => undefined);
      await restarted?.stop().catch(() => undefined);
      await lab.stop();
    }
  },
};

export default suite;
