import t from 'tap';
import { Counter, Registry } from 'prom-client';
import { startHealthServer } from '../src/index.ts';

t.test('/healthz, /readyz and /metrics on loopback', async (t) => {
  const registry = new Registry();
  const c = new Counter({ name: 'purelb_test_total', help: 'a test counter', registers: [registry] });
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
  const [status, body] = await get('/metrics');
  t.equal(status, 200);
  t.match(body, /^purelb_test_total 3$/m);
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
