// purelb_k8s_request_duration_seconds from the records KubeClient publishes.
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient, MetricsRegistry, k8sRequestMetrics } from '../src/index.ts';

t.test('each request is observed by verb and status; a watch is not; stop() unsubscribes', async (t) => {
  const srv = createServer((req, res) => {
    if (req.url?.startsWith('/missing')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'NotFound', message: 'gone', code: 404 }));
    } else if (req.url?.includes('watch=true')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'x' } } })}\n`);
    } else {
      // Slow enough to land above the 25 ms bucket.
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      }, 40);
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    srv.closeAllConnections();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  const client = new KubeClient({ server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
  t.teardown(() => client.close());
  const registry = new MetricsRegistry();
  const m = k8sRequestMetrics(registry);
  t.teardown(() => m.stop());

  await client.get('/ok');
  await client.request('PATCH', '/ok', { body: {} });
  await t.rejects(client.get('/missing'));
  for await (const _ of client.watch('/things')) void _;
  const text = registry.metrics();
  t.match(text, '# TYPE purelb_k8s_request_duration_seconds histogram\n');
  t.match(text, '\npurelb_k8s_request_duration_seconds_count{verb="GET",code="200"} 1\n');
  t.match(text, '\npurelb_k8s_request_duration_seconds_count{verb="PATCH",code="200"} 1\n');
  t.match(text, '\npurelb_k8s_request_duration_seconds_count{verb="GET",code="404"} 1\n');
  t.match(text, '\npurelb_k8s_request_duration_seconds_bucket{verb="GET",code="200",le="0.025"} 0\n', 'the 40 ms answer is above 25 ms');
  t.match(text, '\npurelb_k8s_request_duration_seconds_bucket{verb="GET",code="200",le="30"} 1\n', 'and within the last bucket (a loaded machine may take a while)');
  t.notMatch(text, /WATCH/, 'the watch is left out');
  t.equal(m.duration.count, 3);

  m.stop();
  await client.get('/ok');
  t.equal(m.duration.count, 3, 'nothing observed after stop()');
});
