import t from 'tap';
import { Counter, MetricsRegistry, startHealthServer } from '../src/index.ts';

t.test('/healthz, /readyz and /metrics on loopback', async (t) => {
  const registry = new MetricsRegistry();
  const c = new Counter({ name: 'purelb_test_total', help: 'a test counter', registry });
  c.inc(3);
  let ready = false;
  let live = true;
  const srv = await startHealthServer({ port: 0, host: '127.0.0.1', registry, ready: () => ready, live: () => live });
  t.teardown(() => srv.close());
  const base = `http://127.0.0.1:${srv.port}`;
  const get = async (p: string, method = 'GET'): Promise<[number, string]> => {
    const r = await fetch(base + p, { method, signal: AbortSignal.timeout(5000) });
    return [r.status, await r.text()];
  };
  t.same(await get('/healthz'), [200, 'ok\n']);
  t.same(await get('/readyz'), [503, 'not ready\n']);
  ready = true;
  t.same(await get('/readyz'), [200, 'ok\n']);
  live = false;
  t.equal((await get('/healthz'))[0], 503);
  const scrape = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  t.equal(scrape.status, 200);
  t.equal(scrape.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  t.match(await scrape.text(), /^purelb_test_total 3$/m);
  t.equal((await get('/nope'))[0], 404);
  t.equal((await get('/readyz', 'POST'))[0], 405);
  const throwing = await startHealthServer({
    port: 0,
    host: '127.0.0.1',
    registry,
    ready: () => {
      throw new Error('boom');
    },
  });
  t.teardown(() => throwing.close());
  t.equal((await fetch(`http://127.0.0.1:${throwing.port}/readyz`)).status, 503, 'a throwing check is not ready');
  await srv.close();
  await t.rejects(fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }), 'closed');
});

t.test('/metrics answers 500 naming the metric whose collect hook throws; the server keeps serving', async (t) => {
  const registry = new MetricsRegistry();
  let fail = true;
  new Counter({
    name: 'purelb_flaky_total',
    help: 'fails on demand',
    registry,
    collect() {
      if (fail) throw new Error('source gone');
    },
  });
  const srv = await startHealthServer({ port: 0, host: '127.0.0.1', registry, ready: () => true });
  t.teardown(() => srv.close());
  const url = `http://127.0.0.1:${srv.port}/metrics`;
  const bad = await fetch(url, { signal: AbortSignal.timeout(5000) });
  t.equal(bad.status, 500);
  t.match(await bad.text(), /purelb_flaky_total.*source gone/);
  fail = false;
  const good = await fetch(url, { signal: AbortSignal.timeout(5000) });
  t.equal(good.status, 200);
  t.match(await good.text(), /^purelb_flaky_total 0$/m);
});

t.test('without a registry, /metrics serves the process metrics without a prefix', async (t) => {
  const srv = await startHealthServer({ port: 0, host: '127.0.0.1', ready: () => true });
  t.teardown(() => srv.close());
  const body = await (await fetch(`http://127.0.0.1:${srv.port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(body)?.[1]);
  t.ok(rss > 1_000_000, `process_resident_memory_bytes is plausible (${rss})`);
  t.match(body, /^nodejs_heap_size_used_bytes \d+$/m);
});
