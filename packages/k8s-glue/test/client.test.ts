// Transport edge cases a real API server does not produce on demand, against a plain
// HTTP server on loopback: oversized and broken watch lines, cut connections, non-JSON.
import t, { type Test } from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { KubeApiError, KubeClient, KubeErrorCode, type RequestRecord, withQuery } from '../src/index.ts';

async function server(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const srv = createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    srv.closeAllConnections();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

async function collect(it: AsyncIterable<unknown>): Promise<{ events: unknown[]; error?: KubeApiError }> {
  const events: unknown[] = [];
  try {
    for await (const e of it) events.push(e);
  } catch (e) {
    if (e instanceof KubeApiError) return { events, error: e };
    throw e;
  }
  return { events };
}

t.test('withQuery', async (t) => {
  t.equal(withQuery('/a', { x: 'b c', y: undefined, z: 1, e: '' }), '/a?x=b+c&z=1');
  t.equal(withQuery('/a?k=1', { x: true }), '/a?k=1&x=true');
  t.equal(withQuery('/a', {}), '/a');
});

t.test('headers: bearer token from a function per request, user agent, a server path prefix', async (t) => {
  const seen: string[] = [];
  const url = await server(t, (req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization} ${req.headers['user-agent']} ${req.headers['content-type'] ?? '-'}`);
    res.end(req.method === 'DELETE' ? '' : '{"ok":true}');
  });
  let n = 0;
  const client = new KubeClient({ server: `${url}/prefix/`, token: () => `tok${++n}` }, { userAgent: 'ua/1' });
  t.teardown(() => client.close());
  t.same(await client.get('/api/v1/x'), { ok: true });
  await client.mergePatch('/api/v1/x', { a: 1 });
  t.equal(await client.delete('/api/v1/x'), undefined, 'an empty body is undefined');
  t.same(seen, [
    'GET /prefix/api/v1/x Bearer tok1 ua/1 -',
    'PATCH /prefix/api/v1/x Bearer tok2 ua/1 application/merge-patch+json',
    'DELETE /prefix/api/v1/x Bearer tok3 ua/1 -',
  ]);
  t.same(client.requestCounts(), { GET: 1, PATCH: 1, DELETE: 1 });
});

t.test('errors: Status bodies, non-JSON, and the request channel', async (t) => {
  const url = await server(t, (req, res) => {
    if (req.url === '/busy') {
      res.writeHead(429, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'TooManyRequests', message: 'slow down', code: 429 }));
    } else if (req.url === '/html') {
      res.writeHead(502);
      res.end('<html>bad gateway</html>');
    } else {
      res.end('not json');
    }
  });
  const client = new KubeClient({ server: url });
  t.teardown(() => client.close());
  const records: RequestRecord[] = [];
  const onRecord = (m: unknown): void => void records.push(m as RequestRecord);
  subscribe('purelb:k8s-glue:request', onRecord);
  t.teardown(() => unsubscribe('purelb:k8s-glue:request', onRecord));
  await t.rejects(client.get('/busy'), { code: KubeErrorCode.TooManyRequests, status: 429, reason: 'TooManyRequests', message: 'GET /busy: HTTP 429 TooManyRequests: slow down' });
  await t.rejects(client.get('/html'), { code: KubeErrorCode.ServerError, status: 502, reason: '', message: 'GET /html: HTTP 502 <html>bad gateway</html>' });
  await t.rejects(client.get('/text'), { code: KubeErrorCode.BadResponse });
  t.same(records.map((r) => [r.method, r.path, r.status, r.code]), [
    ['GET', '/busy', 429, 'K8S_TOO_MANY_REQUESTS'],
    ['GET', '/html', 502, 'K8S_SERVER_ERROR'],
    ['GET', '/text', 200, 'K8S_BAD_RESPONSE'],
  ]);
});

t.test('watch: lines split across chunks, a line over the bound, a cut connection, a bad line', async (t) => {
  const url = await server(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const path = req.url ?? '';
    if (path.startsWith('/split')) {
      const line = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'é-unicode' } } }) + '\n';
      const bytes = Buffer.from(line + line);
      // Byte by byte, cutting the two-byte é in half.
      let i = 0;
      const tick = setInterval(() => {
        if (i < bytes.length) res.write(bytes.subarray(i, (i += 7)));
        else {
          clearInterval(tick);
          res.end();
        }
      }, 1);
    } else if (path.startsWith('/long')) {
      res.write('{"type":"ADDED","object":{"data":"' + 'x'.repeat(5000));
      res.write('x'.repeat(5000));
    } else if (path.startsWith('/cut')) {
      res.write(JSON.stringify({ type: 'ADDED', object: {} }) + '\n');
      setTimeout(() => res.socket?.destroy(), 20);
    } else {
      res.end('{"type":"ADDED"\n');
    }
  });
  const client = new KubeClient({ server: url }, { maxWatchLineBytes: 4096 });
  t.teardown(() => client.close());
  const split = await collect(client.watch('/split'));
  t.equal(split.error, undefined);
  t.same(split.events, [
    { type: 'ADDED', object: { metadata: { name: 'é-unicode' } } },
    { type: 'ADDED', object: { metadata: { name: 'é-unicode' } } },
  ]);
  const long = await collect(client.watch('/long'));
  t.equal(long.error?.code, KubeErrorCode.BadResponse);
  t.match(long.error?.message, /exceeds 4096/);
  const cut = await collect(client.watch('/cut'));
  t.equal(cut.events.length, 1);
  t.equal(cut.error?.code, KubeErrorCode.Unavailable, `a cut connection is an error, not a clean end (${cut.error?.message})`);
  const bad = await collect(client.watch('/bad'));
  t.equal(bad.error?.code, KubeErrorCode.BadResponse);
  t.equal(client.requestCounts().WATCH, 4);
});

t.test('watch: breaking out of the loop or aborting closes the connection', async (t) => {
  let open = 0;
  const url = await server(t, (_req, res) => {
    open++;
    res.writeHead(200);
    res.on('close', () => open--);
    const tick = setInterval(() => res.write(JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '1' } } }) + '\n'), 5);
    res.on('close', () => clearInterval(tick));
  });
  const client = new KubeClient({ server: url });
  t.teardown(() => client.close());
  let n = 0;
  for await (const _ of client.watch('/w')) if (++n === 3) break;
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const r = await collect(client.watch('/w', { signal: ac.signal }));
  t.equal(r.error, undefined, 'an abort ends the iteration quietly');
  t.ok(r.events.length > 0);
  for (let i = 0; i < 100 && open > 0; i++) await new Promise((res) => setTimeout(res, 10));
  t.equal(open, 0, 'no connection left open on the server');
});

t.test('TCP keepalive is set on the connections of requests and watches', async (t) => {
  const { Socket } = await import('node:net');
  const calls: [boolean | undefined, number | undefined][] = [];
  type KeepAlive = (this: unknown, enable?: boolean, delay?: number) => unknown;
  const proto = Socket.prototype as unknown as { setKeepAlive: KeepAlive };
  const original = Object.getOwnPropertyDescriptor(Socket.prototype, 'setKeepAlive')?.value as KeepAlive;
  proto.setKeepAlive = function (this: unknown, enable?: boolean, delay?: number) {
    calls.push([enable, delay]);
    return original.call(this, enable, delay);
  };
  t.teardown(() => {
    proto.setKeepAlive = original;
  });
  const url = await server(t, (req, res) => res.end(req.url?.includes('watch=true') ? '' : '{}'));
  const client = new KubeClient({ server: url }, { keepAliveDelayMs: 7000 });
  t.teardown(() => client.close());
  await client.get('/api/v1/namespaces');
  t.ok(calls.some(([on, ms]) => on === true && ms === 7000), 'a request socket');
  calls.length = 0;
  for await (const _ of client.watch('/api/v1/namespaces', { timeoutSeconds: 5 })) break;
  t.ok(calls.some(([on, ms]) => on === true && ms === 7000), 'a watch socket');
  calls.length = 0;
  const off = new KubeClient({ server: url }, { keepAliveDelayMs: 0 });
  t.teardown(() => off.close());
  await off.get('/api/v1/namespaces');
  t.notOk(calls.some(([, ms]) => ms === 7000 || ms === 15_000), 'keepAliveDelayMs 0 leaves the agent default');
});
