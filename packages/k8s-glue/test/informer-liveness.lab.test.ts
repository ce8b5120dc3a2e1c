// Watch liveness against the lab's real kube-apiserver, through a loopback TCP relay that
// can blackhole its open connections: nothing passes any more and nothing is closed, as
// when a NAT or conntrack entry is lost (new connections still pass). The informer must
// notice the silence within its idle bound, resume from its resourceVersion, and deliver
// the change made while it was cut off.
import t, { type Test } from 'tap';
import { type Server, type Socket, connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { withLab } from '@purelb/lab';
import { BOOKMARK_PERIOD_MS, Informer, KubeClient, WATCH_IDLE_TIMEOUT_MS } from '../src/index.ts';
import { adminClient, type ConfigMap, configMap, testNamespace, until } from './helpers.ts';

const lab = await withLab(t, { nodes: 1 });
const admin = adminClient(lab, { timeoutMs: 5000 });
t.teardown(() => admin.close());

interface Relay {
  readonly url: string;
  /** Connections relayed now. */
  readonly open: number;
  /** From now on nothing passes on the connections open now, either way, and none is closed. */
  blackhole(): void;
}

async function relay(t: Test, port: number): Promise<Relay> {
  const conns = new Set<{ client: Socket; upstream: Socket; dead: boolean }>();
  const srv: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    const r = { client, upstream, dead: false };
    conns.add(r);
    const drop = (): void => {
      conns.delete(r);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => void (r.dead || upstream.write(d)));
    upstream.on('data', (d: Buffer) => void (r.dead || client.write(d)));
    // A dead path carries no close either: only the client giving up ends its side.
    client.on('close', drop);
    upstream.on('close', () => (r.dead ? undefined : drop()));
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const r of conns) {
      r.client.destroy();
      r.upstream.destroy();
    }
    return new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  return {
    url: `https://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    get open() {
      return conns.size;
    },
    blackhole() {
      for (const r of conns) r.dead = true;
    },
  };
}

interface Run {
  readonly detectMs: number;
  readonly silentAtDetectionMs: number;
  readonly resumeMs: number;
}

/**
 * Starts an informer through a fresh relay, waits for `ready`, blackholes the relay,
 * changes `target` through the admin client, and measures: blackhole to 'stale', the
 * silence at that moment, and 'stale' to the change arriving.
 */
async function dropAndResume(t: Test, ns: string, idleTimeoutMs: number, ready: (inf: Informer<ConfigMap>, listHeardAt: number) => Promise<void>): Promise<Run> {
  const base = `/api/v1/namespaces/${ns}/configmaps`;
  const r = await relay(t, lab.controlPlane.port);
  const client = new KubeClient({ server: r.url, caPem: lab.controlPlane.caPem, token: lab.controlPlane.adminToken }, { userAgent: 'k8s-glue-liveness-test', timeoutMs: 5000 });
  t.teardown(() => client.close());
  const inf = new Informer<ConfigMap>(client, { path: base, idleTimeoutMs, backoff: { initialMs: 200, maxMs: 1000 } });
  const log: { what: string; at: number }[] = [];
  // What the cache held when the silence was noticed (read in the handler: the watch
  // restarts at once, and a poll after it could already see the change).
  let atStale: string | undefined;
  inf.on('stale', (ms) => {
    atStale ??= inf.get(`${ns}/target`)?.data?.v;
    log.push({ what: `stale ${Math.round(ms)}`, at: performance.now() });
  });
  inf.on('fresh', () => log.push({ what: 'fresh', at: performance.now() }));
  inf.on('update', (o) => {
    if (o.metadata.name === 'target') log.push({ what: `target ${o.data?.v}`, at: performance.now() });
  });
  inf.start();
  t.teardown(() => inf.stop());
  await inf.synced();
  const listHeardAt = inf.lastHeardAt!;
  await ready(inf, listHeardAt);
  t.ok(inf.healthy, 'healthy before the drop');
  const watchesBefore = client.requestCounts().WATCH ?? 0;
  t.equal(watchesBefore, 1, 'one watch so far: the quiet time did not restart it');
  const heardBefore = inf.lastHeardAt!;
  const droppedAt = performance.now();
  r.blackhole();
  await admin.mergePatch(`${base}/target`, { data: { v: 'changed-while-dropped' } });
  await until('the drop to be noticed', () => log.some((e) => e.what.startsWith('stale')), idleTimeoutMs + 10_000, 50);
  const stale = log.find((e) => e.what.startsWith('stale'))!;
  t.equal(atStale, 'before', 'the change did not pass the blackhole');
  await until('the change made during the drop', () => inf.get(`${ns}/target`)?.data?.v === 'changed-while-dropped', 15_000, 20);
  const arrived = log.find((e) => e.what === 'target changed-while-dropped')!;
  t.ok(log.findIndex((e) => e === stale) < log.findIndex((e) => e.what === 'fresh'), 'stale, then fresh');
  t.ok((client.requestCounts().WATCH ?? 0) >= 2, 'the watch was started again');
  t.equal(client.requestCounts().GET ?? 0, 1, 'resumed from its resourceVersion, no relist');
  t.ok(inf.healthy, 'healthy after');
  return { detectMs: stale.at - droppedAt, silentAtDetectionMs: stale.at - heardBefore, resumeMs: arrived.at - stale.at };
}

// The quiet case waits for the server's first bookmark (about a minute) and then the whole
// default bound (90 s): this test runs for about three minutes.
t.test('a blackholed watch is noticed within its bound and resumed; the change made meanwhile arrives', { timeout: 330_000 }, async (t) => {
  // (a) The default bound on a quiet collection: a real server's bookmarks keep the watch
  // alive past a bookmark period, then a drop is noticed at most WATCH_IDLE_TIMEOUT_MS
  // after the last bookmark. (b) A short bound on a busy collection (a heartbeat object
  // written every 500 ms), to measure the mechanism itself.
  const quietNs = await testNamespace(t, admin, 'glue-live-quiet');
  const busyNs = await testNamespace(t, admin, 'glue-live-busy');
  for (const ns of [quietNs, busyNs]) await admin.create(`/api/v1/namespaces/${ns}/configmaps`, configMap('target', { v: 'before' }));
  await admin.create(`/api/v1/namespaces/${busyNs}/configmaps`, configMap('heartbeat', { n: '0' }));
  let beats = 0;
  let writing = true;
  const writer = (async () => {
    for (let i = 0; i < 10_000 && writing; i++) {
      await admin.mergePatch(`/api/v1/namespaces/${busyNs}/configmaps/heartbeat`, { data: { n: String(++beats) } }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  t.teardown(async () => {
    writing = false;
    await writer;
  });
  // Long enough that a loaded machine's late heartbeat never looks like a dead watch.
  const SHORT = 6000;
  const [quiet, busy] = await Promise.all([
    dropAndResume(t, quietNs, WATCH_IDLE_TIMEOUT_MS, async (inf, listHeardAt) => {
      // A bookmark: lastHeardAt moves with no event at all.
      await until('a bookmark from the server', () => inf.lastHeardAt! > listHeardAt, BOOKMARK_PERIOD_MS + 15_000, 200);
      t.comment(`first bookmark ${Math.round(inf.lastHeardAt! - listHeardAt)} ms after the list`);
    }),
    dropAndResume(t, busyNs, SHORT, async (inf) => {
      await until('heartbeats through the watch', () => Number(inf.get(`${busyNs}/heartbeat`)?.data?.n ?? 0) >= 3, 10_000, 50);
    }),
  ]);
  writing = false;
  await writer;
  for (const [name, run, bound] of [['default bound, quiet', quiet, WATCH_IDLE_TIMEOUT_MS], ['6 s bound, busy', busy, SHORT]] as const) {
    t.comment(`${name}: noticed ${Math.round(run.detectMs)} ms after the blackhole (silent for ${Math.round(run.silentAtDetectionMs)} ms), change delivered ${Math.round(run.resumeMs)} ms later`);
    t.ok(run.silentAtDetectionMs >= bound, `${name}: not before the bound`);
    t.ok(run.silentAtDetectionMs <= bound + 1000, `${name}: within the bound (+1 s for timers)`);
    t.ok(run.detectMs <= bound + 1000, `${name}: noticed within the bound of the blackhole`);
    t.ok(run.resumeMs <= 5000, `${name}: resumed within 5 s`);
  }
});
