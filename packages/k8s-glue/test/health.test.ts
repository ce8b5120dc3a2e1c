import t from 'tap';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { Counter, MetricsAccess, MetricsRegistry, selfSignedCertificate, startHealthServer, startMetricsServer } from '../src/index.ts';

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

t.test('a self-signed certificate: parses, verifies, names its hosts, serves TLS', async (t) => {
  const { cert, key } = selfSignedCertificate({ commonName: 'purelb-test', altNames: ['localhost', '127.0.0.1', '2001:db8::7'], days: 30 });
  const x = new X509Certificate(cert);
  t.equal(x.subject, 'CN=purelb-test');
  t.equal(x.issuer, 'CN=purelb-test');
  t.ok(x.verify(x.publicKey), 'signed by its own key');
  t.ok(x.checkPrivateKey(createPrivateKey(key)), 'the key belongs to the certificate');
  t.equal(x.checkHost('localhost'), 'localhost');
  t.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
  t.equal(x.checkIP('2001:db8::7'), '2001:db8::7');
  t.equal(x.ca, false);
  const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000;
  t.ok(days > 30 && days < 30.1, `valid 30 days and an hour (${days.toFixed(3)})`);
  const registry = new MetricsRegistry();
  new Counter({ name: 'purelb_tls_total', help: 'h', registry }).inc();
  const srv = await startMetricsServer({ port: 0, host: '127.0.0.1', registry, tls: { cert, key } });
  t.teardown(() => srv.close());
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: srv.port, path: '/metrics', ca: cert, servername: 'localhost', timeout: 5000 }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.end();
  });
  t.match(body, /^purelb_tls_total 1$/m, 'a client trusting only this certificate verified the server');
});

t.test('startMetricsServer with access checks: 401, 403, 200; probes are not served there', async (t) => {
  const { cert, key } = selfSignedCertificate({ commonName: 'purelb-test', altNames: ['127.0.0.1'] });
  const registry = new MetricsRegistry();
  new Counter({ name: 'purelb_guarded_total', help: 'h', registry }).inc(2);
  const reviewer = {
    reviewToken: async (token: string) => (token === 'good' || token === 'meh' ? { authenticated: true, user: { username: token } } : { authenticated: false }),
    reviewAccess: async (user: { username: string }) => ({ allowed: user.username === 'good' }),
  };
  t.rejects(startMetricsServer({ port: 0, registry, access: new MetricsAccess(reviewer) }), /need tls/, 'no bearer tokens over plain HTTP');
  const srv = await startMetricsServer({ port: 0, host: '127.0.0.1', registry, tls: { cert, key }, access: new MetricsAccess(reviewer) });
  t.teardown(() => srv.close());
  const get = (path: string, token?: string) =>
    new Promise<[number, string, string | undefined]>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: srv.port, path, ca: cert, timeout: 5000, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve([res.statusCode ?? 0, b, res.headers['www-authenticate']]));
      });
      req.on('error', reject);
      req.end();
    });
  const [s401, b401, challenge] = await get('/metrics');
  t.equal(s401, 401);
  t.equal(challenge, 'Bearer');
  t.notMatch(b401, /purelb_guarded_total/);
  t.equal((await get('/metrics', 'bad'))[0], 401);
  const [s403, b403] = await get('/metrics', 'meh');
  t.equal(s403, 403);
  t.match(b403, /user "meh" may not get \/metrics/);
  const [s200, b200] = await get('/metrics', 'good');
  t.equal(s200, 200);
  t.match(b200, /^purelb_guarded_total 2$/m);
  t.equal((await get('/healthz', 'good'))[0], 404, 'probes live on the plain health server');
  const probes = await startHealthServer({ port: 0, host: '127.0.0.1', registry, ready: () => true, serveMetrics: false });
  t.teardown(() => probes.close());
  t.equal((await fetch(`http://127.0.0.1:${probes.port}/healthz`)).status, 200);
  t.equal((await fetch(`http://127.0.0.1:${probes.port}/metrics`)).status, 404, 'no unauthenticated metrics on the probe port');
});
