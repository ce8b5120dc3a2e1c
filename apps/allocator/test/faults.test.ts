// The allocator under faults, deterministically: an in-memory API server (FakeKubeClient),
// caches fed by hand (so one replica's cache can be behind), a manual clock for retries.
// No lab, no real timers for anything that is asserted.
import t from 'tap';
import { type Node, type Service, type ServiceGroup, ingressIPs } from '@purelb/api';
import { type EventRecorder, type InformerHandlers, type KubeObject, KubeClient, type RequestOptions, maxAttemptsInWindow, objectKey } from '@purelb/k8s-glue';
import { FakeKubeClient, ManualClock } from '@purelb/k8s-glue/testing';
import { FakeNetbox } from '@purelb/ipam-netbox/testing';
import { AllocatorController, type NetboxSettings } from '../src/controller.ts';
import { createMetrics } from '../src/metrics.ts';

const NS = 'purelb';
const SERVICES = '/api/v1/services';
const GROUPS = `/apis/purelb.io/v1/namespaces/${NS}/servicegroups`;
const NODES = '/api/v1/nodes';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/** A cache the test moves by hand: sync() makes it what the fake holds now (optionally leaving some out). */
class ManualCache<T extends KubeObject> {
  #store = new Map<string, T>();
  readonly #handlers: { [K in keyof InformerHandlers<T>]: InformerHandlers<T>[K][] } = { add: [], update: [], delete: [], error: [], stale: [], fresh: [] };
  readonly fake: FakeKubeClient;
  readonly path: string;
  constructor(fake: FakeKubeClient, path: string) {
    this.fake = fake;
    this.path = path;
  }
  get(key: string): T | undefined {
    return this.#store.get(key);
  }
  list(): T[] {
    return [...this.#store.values()];
  }
  on<E extends keyof InformerHandlers<T>>(event: E, handler: InformerHandlers<T>[E]): this {
    (this.#handlers[event] as InformerHandlers<T>[E][]).push(handler);
    return this;
  }
  sync(include: (o: T) => boolean = () => true): void {
    const next = new Map<string, T>();
    for (const o of this.fake.objects<T>(this.path)) if (include(o)) next.set(objectKey(o), Object.freeze(o));
    const old = this.#store;
    this.#store = next;
    for (const [k, o] of next) {
      const prev = old.get(k);
      if (!prev) for (const h of this.#handlers.add) h(o);
      else if (prev.metadata.resourceVersion !== o.metadata.resourceVersion) for (const h of this.#handlers.update) h(o, prev);
    }
    for (const [k, o] of old) if (!next.has(k)) for (const h of this.#handlers.delete) h(o);
  }
}

interface Outcome {
  readonly method: string;
  readonly path: string;
  readonly at: number;
  readonly status: number;
  readonly body: unknown;
}

/** One replica's view of the shared fake: may hold its PATCHes back (an in-flight write), records outcomes. */
class ReplicaClient extends KubeClient {
  hold = false;
  readonly held: (() => void)[] = [];
  readonly outcomes: Outcome[] = [];
  readonly fake: FakeKubeClient;
  readonly clock: ManualClock;
  constructor(fake: FakeKubeClient, clock: ManualClock) {
    super({ server: 'https://fake.invalid' });
    this.fake = fake;
    this.clock = clock;
  }
  override request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const send = (): Promise<T> =>
      this.fake.request<T>(method, path, opts).then(
        (r) => (this.outcomes.push({ method, path, at: this.clock.now(), status: 200, body: opts.body }), r),
        (e: { status?: number }) => {
          this.outcomes.push({ method, path, at: this.clock.now(), status: e.status ?? 0, body: opts.body });
          throw e;
        },
      );
    if (this.hold && method === 'PATCH') return new Promise<T>((resolve, reject) => this.held.push(() => void send().then(resolve, reject)));
    return send();
  }
  patchesTo(name: string): Outcome[] {
    return this.outcomes.filter((o) => o.method === 'PATCH' && o.path.endsWith(`/services/${name}/status`));
  }
}

function replica(fake: FakeKubeClient, clock: ManualClock, netbox?: NetboxSettings) {
  const client = new ReplicaClient(fake, clock);
  const services = new ManualCache<Service>(fake, SERVICES);
  const groups = new ManualCache<ServiceGroup>(fake, GROUPS);
  const nodes = new ManualCache<Node>(fake, NODES);
  const events: { reason: string; message: string }[] = [];
  const recorder = { event: (_ref: unknown, _type: string, reason: string, message: string) => void events.push({ reason, message }) } as unknown as EventRecorder;
  const metrics = createMetrics();
  const controller = new AllocatorController(
    { namespace: NS, requireLoadBalancerClass: false, writeConcurrency: 4, groupStatusIntervalMs: 3_600_000, netbox },
    { client, services, groups, nodes, events: recorder, metrics, log: quiet, clock },
  );
  const sync = (include?: (s: Service) => boolean): void => {
    groups.sync();
    nodes.sync();
    services.sync(include);
  };
  let abort: AbortController | undefined;
  let term: Promise<void> | undefined;
  return {
    client,
    services,
    controller,
    events,
    metrics,
    sync,
    lead(): void {
      abort = new AbortController();
      term = controller.lead(abort.signal);
    },
    depose(): Promise<void> {
      abort?.abort();
      return term ?? Promise.resolve();
    },
  };
}

/** Lets promise chains and the fake's answers run (the fake answers within microtasks). */
async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

async function world(): Promise<{ fake: FakeKubeClient; clock: ManualClock }> {
  const fake = new FakeKubeClient();
  await fake.create(GROUPS, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: 'default', namespace: NS },
    spec: { local: { v4pools: [{ pool: '192.0.2.10-192.0.2.20', subnet: '192.0.2.0/24', aggregation: 'default' }] } },
  });
  return { fake, clock: new ManualClock() };
}

const svc = (name: string, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop', annotations },
  spec: { type: 'LoadBalancer', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack', ports: [{ port: 80, protocol: 'TCP' }] },
});
const create = (fake: FakeKubeClient, name: string, annotations?: Record<string, string>) => fake.create('/api/v1/namespaces/shop/services', svc(name, annotations));
const addressOf = (fake: FakeKubeClient, name: string): string[] => ingressIPs(fake.objects<Service>('/api/v1/namespaces/shop/services').find((s) => s.metadata.name === name)!);

t.test('leader change on a stale cache: a marked Service the new leader cannot see yet keeps its address', async (t) => {
  const { fake, clock } = await world();
  await create(fake, 'a');
  const one = replica(fake, clock);
  one.sync();
  one.lead();
  await settle();
  t.same(addressOf(fake, 'a'), ['192.0.2.10'], 'the first leader gave a its address');
  one.sync();
  await one.depose();

  // The second replica's Service watch is in a backoff: its cache never saw a.
  const two = replica(fake, clock);
  await create(fake, 'b');
  two.sync((s) => s.metadata.name !== 'a');
  t.equal(two.controller.ipam.get('shop/a'), undefined, 'the standby does not know a');
  // And the LIST the new leader takes fails a few times first: nothing is allocated meanwhile.
  fake.failNext(503, { method: 'GET', path: /^\/api\/v1\/services\?/, times: 3 });
  two.lead();
  await settle();
  t.equal(two.client.patchesTo('b').length, 0, 'no write before a LIST since the Lease was won succeeded');
  t.notOk(two.controller.synced);
  for (let i = 0; i < 10 && !two.controller.synced; i++) {
    clock.advance(1000);
    await settle();
  }
  t.ok(two.controller.synced, 'the LIST succeeded after its backoff');
  t.same(addressOf(fake, 'a'), ['192.0.2.10'], 'a keeps its address');
  t.same(addressOf(fake, 'b'), ['192.0.2.11'], 'b gets the next one, not a\'s');
  t.equal(two.client.patchesTo('a').length, 0, 'a was adopted from the LIST, not written');
  t.same(two.controller.ipam.get('shop/a')?.addresses, ['192.0.2.10']);

  // The cache catches up: nothing moves.
  two.sync();
  await settle();
  t.same([addressOf(fake, 'a'), addressOf(fake, 'b')], [['192.0.2.10'], ['192.0.2.11']]);
  t.equal(two.client.patchesTo('a').length, 0);
  await two.depose();
  await two.controller.stop();
  await one.controller.stop();
});

t.test('a standby adopts marked Services as it sees them, so a new leader starts warm', async (t) => {
  const { fake, clock } = await world();
  await create(fake, 'a');
  const one = replica(fake, clock);
  const two = replica(fake, clock);
  one.sync();
  two.sync();
  one.lead();
  await settle();
  t.equal(two.controller.ipam.get('shop/a'), undefined);
  two.sync();
  t.same(two.controller.ipam.get('shop/a')?.addresses, ['192.0.2.10'], 'the standby mirrors a the moment it sees it');
  await fake.mergePatch('/api/v1/namespaces/shop/services/a', { spec: { type: 'ClusterIP' } });
  one.sync();
  await settle();
  two.sync();
  t.equal(two.controller.ipam.get('shop/a'), undefined, 'and lets it go when the leader released it');
  await fake.delete('/api/v1/namespaces/shop/services/a');
  two.sync();
  t.equal(two.controller.ipam.serviceCount, 0);
  await one.depose();
  await one.controller.stop();
  await two.controller.stop();
});

t.test('a deposed leader\'s late status write is refused by resourceVersion and moves nothing', async (t) => {
  const { fake, clock } = await world();
  await create(fake, 'a');
  const one = replica(fake, clock);
  one.sync();
  one.client.hold = true; // its write to a is in flight (the API server is slow to answer it)
  one.lead();
  await settle();
  t.equal(one.client.held.length, 1, 'the first leader decided a -> 192.0.2.10 and sent it');
  const deposed = one.depose(); // its renewals failed: it stops, the write still outstanding

  // Meanwhile the user asks for another address and b is created; the new leader serves both.
  await fake.mergePatch('/api/v1/namespaces/shop/services/a', { metadata: { annotations: { 'purelb.io/addresses': '192.0.2.15' } } });
  await create(fake, 'b');
  const two = replica(fake, clock);
  two.sync();
  two.lead();
  await settle();
  t.same([addressOf(fake, 'a'), addressOf(fake, 'b')], [['192.0.2.15'], ['192.0.2.10']]);

  // Now the old write arrives.
  one.client.held.shift()!();
  await settle();
  await deposed;
  const late = one.client.patchesTo('a');
  t.equal(late.length, 1);
  t.equal(late[0]!.status, 409, 'refused: it was decided on a version of a that is no longer current');
  t.match(late[0]!.body, { metadata: { resourceVersion: /^\d+$/ } }, 'it carried the resourceVersion it was decided on');
  t.same([addressOf(fake, 'a'), addressOf(fake, 'b')], [['192.0.2.15'], ['192.0.2.10']], 'nothing moved; no address is held twice');
  t.same(two.controller.ipam.holdersOf('192.0.2.10'), ['shop/b']);
  await two.depose();
  await two.controller.stop();
  await one.controller.stop();
});

t.test('the LIST at the gate is fresher than the cache: what it shows is adopted, not replaced', async (t) => {
  const { fake, clock } = await world();
  await create(fake, 'a');
  const one = replica(fake, clock);
  one.sync();
  // An earlier leader's write landed after this replica's cache last heard of a.
  await fake.mergePatch('/api/v1/namespaces/shop/services/a/status', {
    metadata: { annotations: { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'default' } },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.12', ipMode: 'VIP' }] } },
  });
  t.same(ingressIPs(one.services.get('shop/a')!), [], 'the cache still shows a without an address');
  one.lead();
  await settle();
  t.same(addressOf(fake, 'a'), ['192.0.2.12'], 'the fresh LIST showed a\'s address: adopted, not replaced');
  t.equal(one.client.patchesTo('a').length, 0);
  await one.depose();
  await one.controller.stop();
});

for (const status of [403, 422]) {
  t.test(`a Service whose status write is always refused (${status}) is retried with growing delays, at most ${maxAttemptsInWindow(60_000)} times a minute`, async (t) => {
    const { fake, clock } = await world();
    await create(fake, 'bad');
    await create(fake, 'good');
    fake.failNext(status, { method: 'PATCH', path: '/services/bad/status', times: 1_000_000 });
    const one = replica(fake, clock);
    one.sync();
    one.lead();
    for (let ms = 0; ms < 60_000; ms += 50) {
      await settle(4);
      clock.advance(50);
    }
    await settle();
    const tries = one.client.patchesTo('bad');
    t.ok(tries.every((o) => o.status === status));
    const gaps = tries.slice(1).map((o, i) => o.at - tries[i]!.at);
    t.same(gaps, [250, 500, 1000, 2000, 4000, 8000, 16000], 'the delay doubles from 250 ms');
    t.equal(tries.length, 8, 'requests in the first minute');
    t.ok(tries.length <= maxAttemptsInWindow(60_000) && tries.length <= 10, 'within the stated bound (8) and the target (10)');
    t.same(addressOf(fake, 'good'), ['192.0.2.11'], 'other Services are served meanwhile (bad holds .10 in the allocator, unwritten)');
    t.equal(one.client.patchesTo('good').length, 1);
    // The next minute: one more attempt (at 63.75 s), then one every few minutes.
    for (let ms = 0; ms < 60_000; ms += 250) {
      await settle(4);
      clock.advance(250);
    }
    await settle();
    t.equal(one.client.patchesTo('bad').length - tries.length, 1, 'the second minute: one request');
    await one.depose();
    await one.controller.stop();
  });
}

t.test('many failing Services: each backs off on its own, and the retries stay bounded overall', async (t) => {
  const { fake, clock } = await world();
  for (let i = 0; i < 30; i++) await create(fake, `s${i}`);
  fake.failNext(403, { method: 'PATCH', path: '/status', times: 1_000_000 });
  const one = replica(fake, clock);
  one.sync();
  one.lead();
  for (let ms = 0; ms < 60_000; ms += 50) {
    await settle(4);
    clock.advance(50);
  }
  await settle();
  const patches = one.client.outcomes.filter((o) => o.method === 'PATCH');
  t.ok(patches.length <= 30 * 8, `${patches.length} requests for 30 Services in a minute`);
  for (let i = 0; i < 30; i++) t.ok(one.client.patchesTo(`s${i}`).length <= 8);
  await one.depose();
  await one.controller.stop();
});

t.test('a Netbox group takes the same path: pending while Netbox answers, then one write of the address it recorded; a new leader adopts it', async (t) => {
  const { fake, clock } = await world();
  await fake.create(`/api/v1/namespaces/${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'netbox-client', namespace: NS }, data: { 'user-token': Buffer.from('fake-token\n').toString('base64') } });
  await fake.create(GROUPS, { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'nb', namespace: NS }, spec: { netbox: { url: 'https://netbox.invalid', tenant: 'k8s' } } });
  const netbox = new FakeNetbox({ prefixes: ['198.51.100.0/29'] });
  const settings: NetboxSettings = { connect: netbox.connect, clock: netbox.clock, random: () => 0 };
  await create(fake, 'web', { 'purelb.io/service-group': 'nb' });
  const one = replica(fake, clock, settings);
  one.sync();
  netbox.holding = true;
  one.lead();
  for (let i = 0; i < 10 && netbox.calls.every((c) => c.op !== 'allocate'); i++) {
    netbox.answer();
    await settle();
  }
  t.match(netbox.calls, [{ op: 'resolve' }, { op: 'held' }, { op: 'allocate', holder: 'shop/web' }], 'the group was read, then an address asked for');
  t.equal(one.client.patchesTo('web').length, 0, 'nothing written while pending');
  t.equal(one.controller.ipam.get('shop/web'), undefined);
  netbox.answer();
  await settle();
  t.same(addressOf(fake, 'web'), ['198.51.100.1'], 'the address Netbox answered with');
  t.equal(netbox.holderOf('198.51.100.1'), 'shop/web');
  t.equal(one.client.patchesTo('web').length, 1, 'one write');
  t.match(one.events, [{ reason: 'AddressAssigned', message: 'Assigned 198.51.100.1 from ServiceGroup nb' }]);
  one.sync();
  await one.depose();

  const two = replica(fake, clock, settings);
  two.sync();
  t.same(two.controller.ipam.get('shop/web'), { group: 'nb', addresses: ['198.51.100.1'] }, 'the standby mirrors it');
  netbox.holding = false;
  two.lead();
  await settle();
  t.same(addressOf(fake, 'web'), ['198.51.100.1'], 'a leader change changes no address');
  t.equal(netbox.calls.filter((c) => c.op === 'allocate').length, 1, 'and asks Netbox for none');
  t.equal(two.client.patchesTo('web').length, 0);

  // Deleted: the address goes back to Netbox through the same release path as a local one.
  await fake.delete('/api/v1/namespaces/shop/services/web');
  two.sync();
  await settle();
  t.same(netbox.records(), [], 'given back to Netbox');
  await two.depose();
  await two.controller.stop();
  await one.controller.stop();
  t.equal(netbox.openConnections, 0, 'stop closes the Netbox connections');
});

t.test('pool metrics carry pool (the ServiceGroup, as upstream PureLB) beside group and family', async (t) => {
  const { fake, clock } = await world();
  await create(fake, 'a');
  const one = replica(fake, clock);
  one.sync();
  one.lead();
  await settle();
  t.same(addressOf(fake, 'a'), ['192.0.2.10']);
  const text = one.metrics.registry.metrics();
  t.match(text, '\npurelb_address_pool_size{pool="default",group="default",family="IPv4"} 11\n', 'size: 192.0.2.10-192.0.2.20');
  // In use follows at the group status interval (an hour here): only the labels are checked.
  t.match(text, /\npurelb_address_pool_addresses_in_use\{pool="default",group="default",family="IPv4"\} \d+\n/);
  t.match(text, '\npurelb_address_pool_addresses_excluded{pool="default",group="default",family="IPv4"} 0\n');
  t.notMatch(text, /^purelb_address_pool_\w+\{group=/m, 'no series without pool');
  await one.depose();
  await one.controller.stop();
});

t.test('purelb_allocation_duration_seconds: from the Service seen to its status written, retries included', async (t) => {
  const { fake, clock } = await world();
  const one = replica(fake, clock);
  one.sync();
  one.lead();
  await settle();
  const h = one.metrics.allocationDuration;
  t.equal(h.count, 0, 'nothing allocated yet');

  // A write that takes 300 ms to land.
  one.client.hold = true;
  await create(fake, 'a');
  one.sync();
  await settle();
  t.equal(one.client.held.length, 1, 'the write is in flight');
  clock.advance(300);
  one.client.hold = false;
  for (const release of one.client.held.splice(0)) release();
  await settle();
  t.same(addressOf(fake, 'a'), ['192.0.2.10']);
  t.equal(h.count, 1, 'one allocation timed');
  t.equal(h.sum, 0.3, 'seen -> written: 300 ms');

  // A write refused once (503), written after the Service's backoff.
  fake.failNext(503, { method: 'PATCH', path: '/services/b/status', times: 1 });
  await create(fake, 'b');
  one.sync();
  await settle();
  t.same(addressOf(fake, 'b'), [], 'the first write failed');
  let waited = 0;
  for (; waited < 10_000 && addressOf(fake, 'b').length === 0; waited += 5) {
    clock.advance(5);
    await settle();
  }
  t.same(addressOf(fake, 'b'), ['192.0.2.11'], 'the retry landed');
  t.equal(h.count, 2);
  t.ok(waited > 0 && Math.abs(h.sum - 0.3 - waited / 1000) < 1e-9, `the retry's backoff is counted (${waited} ms)`);

  // A Service seen again without a change is not timed.
  one.sync();
  await settle();
  t.equal(h.count, 2, 'no new observation without a new address');
  const text = one.metrics.registry.metrics();
  t.match(text, '\npurelb_allocation_duration_seconds_bucket{le="0.1"} 0\n', 'neither took 100 ms or less');
  t.match(text, `\npurelb_allocation_duration_seconds_bucket{le="0.25"} ${waited <= 250 ? 1 : 0}\n`, 'the retry by its backoff');
  t.match(text, `\npurelb_allocation_duration_seconds_bucket{le="0.5"} ${waited <= 500 ? 2 : 1}\n`, 'the 300 ms one at or below 0.5 s');
  await one.depose();
  await one.controller.stop();
});
