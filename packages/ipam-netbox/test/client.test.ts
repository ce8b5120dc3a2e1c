// The HTTP client against the emulator: token forms, every error path, retries with
// backoff, timeouts, pagination.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { NetboxClient, type NetboxRequestRecord, apiRoot, authorizationHeader } from '../src/index.ts';
import { DEFAULT_V1_TOKEN, DEFAULT_V2_TOKEN } from '../src/testing/index.ts';
import { clientFor, rejectsNetbox, startEmulator, throwsNetbox, within } from './helpers.ts';

t.test('token forms and the API root', async (t) => {
  t.equal(authorizationHeader(DEFAULT_V1_TOKEN), `Token ${DEFAULT_V1_TOKEN}`);
  t.equal(authorizationHeader(`${DEFAULT_V2_TOKEN}\n`), `Bearer ${DEFAULT_V2_TOKEN}`, 'v2 token, trailing newline from a Secret');
  t.equal(authorizationHeader('Bearer nbt_a.b'), 'Bearer nbt_a.b', 'a full header value is kept');
  throwsNetbox(t, () => authorizationHeader('  '), 'NETBOX_INVALID_CONFIG', /token is empty/);
  throwsNetbox(t, () => authorizationHeader('ab cd'), 'NETBOX_INVALID_CONFIG', /whitespace/);
  t.equal(apiRoot('https://netbox.example.com'), 'https://netbox.example.com/api');
  t.equal(apiRoot('https://netbox.example.com/api/'), 'https://netbox.example.com/api');
  t.equal(apiRoot('https://example.com/netbox?x=1'), 'https://example.com/netbox/api');
  throwsNetbox(t, () => apiRoot('netbox.example.com'), 'NETBOX_INVALID_CONFIG', /not a URL/);
  throwsNetbox(t, () => apiRoot('ftp://netbox.example.com'), 'NETBOX_INVALID_CONFIG', /not http/);
});

t.test('both token forms are accepted; bad tokens are NETBOX_UNAUTHORIZED, missing permission NETBOX_FORBIDDEN', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Web');
  for (const token of [DEFAULT_V1_TOKEN, DEFAULT_V2_TOKEN]) {
    const body = (await clientFor(t, e, { token }).request('GET', '/tenancy/tenants/')) as { count: number };
    t.equal(body.count, 1, `token ${token.slice(0, 6)}...`);
  }
  await rejectsNetbox(t, clientFor(t, e, { token: 'f'.repeat(40) }).request('GET', '/tenancy/tenants/'), 'NETBOX_UNAUTHORIZED', /token was refused \(HTTP 403: Invalid v1 token\)/);
  await rejectsNetbox(t, clientFor(t, e, { token: 'nbt_nope.nope' }).request('GET', '/tenancy/tenants/'), 'NETBOX_UNAUTHORIZED', /Invalid v2 token/);
  e.faults.authFailureStatus = 401;
  const err = await rejectsNetbox(t, clientFor(t, e, { token: 'f'.repeat(40) }).request('GET', '/tenancy/tenants/'), 'NETBOX_UNAUTHORIZED', /HTTP 401/);
  t.equal(err?.context.status, 401);
  t.match(err?.context.url, /\/api\/tenancy\/tenants\/$/, 'the error names the URL');
  e.faults.authFailureStatus = 403;
  e.addToken({ token: 'a'.repeat(40), writeEnabled: false });
  const ro = clientFor(t, e, { token: 'a'.repeat(40) });
  t.ok(await ro.request('GET', '/ipam/ip-addresses/'), 'a read-only token reads');
  await rejectsNetbox(t, ro.request('DELETE', '/ipam/ip-addresses/1/'), 'NETBOX_FORBIDDEN', /permission denied \(HTTP 403: You do not have permission/);
  const failed = e.requests.filter((r) => r.status === 403 || r.status === 401).length;
  t.equal(failed, 4, 'auth failures are not retried');
});

t.test('a login redirect or an HTML login page is NETBOX_LOGIN_REDIRECT', async (t) => {
  const e = await startEmulator(t);
  const c = clientFor(t, e);
  e.faults.login = 'redirect';
  await rejectsNetbox(t, c.request('GET', '/ipam/prefixes/'), 'NETBOX_LOGIN_REDIRECT', /redirected \(HTTP 302\) to \/login\/\?next=/);
  e.faults.login = 'html';
  await rejectsNetbox(t, c.request('GET', '/ipam/prefixes/'), 'NETBOX_LOGIN_REDIRECT', /HTML page came back instead of JSON \(a login page\)/);
  t.equal(e.requests.length, 2, 'not retried');
});

t.test('5xx and dropped connections are retried with backoff, then NETBOX_UNAVAILABLE', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Web');
  const c = clientFor(t, e, { retries: 3, backoffBaseMs: 20, backoffMaxMs: 80 });
  const records: NetboxRequestRecord[] = [];
  const onRecord = (m: unknown): void => void records.push(m as NetboxRequestRecord);
  subscribe('purelb:netbox:request', onRecord);
  t.teardown(() => unsubscribe('purelb:netbox:request', onRecord));

  e.faults.failNext = 2;
  const t0 = performance.now();
  const ok = (await c.request('GET', '/tenancy/tenants/')) as { count: number };
  const took = performance.now() - t0;
  t.equal(ok.count, 1, 'succeeds on the third try');
  t.same(records.map((r) => [r.status, r.attempt]), [[503, 0], [503, 1], [200, 2]]);
  t.ok(took >= 10 + 20, `backed off between tries (${took.toFixed(0)} ms)`);

  e.faults.failNext = 100;
  e.faults.failStatus = 502;
  await rejectsNetbox(t, c.request('GET', '/tenancy/tenants/'), 'NETBOX_UNAVAILABLE', /HTTP 502.*gave up after 4 tries/);
  e.faults.failNext = 0;

  e.faults.down = 'reset';
  const down = await rejectsNetbox(t, c.request('GET', '/tenancy/tenants/'), 'NETBOX_UNAVAILABLE', /request failed .*gave up after 4 tries/);
  t.ok(down?.transient, 'transient');
  e.faults.down = '503';
  await rejectsNetbox(t, c.request('GET', '/tenancy/tenants/'), 'NETBOX_UNAVAILABLE', /HTTP 503/);
  e.faults.down = false;
  t.ok(await c.request('GET', '/tenancy/tenants/'), 'back up');
});

t.test('nothing listening is NETBOX_UNAVAILABLE naming the URL', async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const c = new NetboxClient({ url: `http://127.0.0.1:${port}`, token: DEFAULT_V1_TOKEN, retries: 1, backoffBaseMs: 5 });
  await rejectsNetbox(t, c.request('GET', '/status/'), 'NETBOX_UNAVAILABLE', new RegExp(`GET http://127\\.0\\.0\\.1:${port}/api/status/: request failed \\(ECONNREFUSED\\)`));
});

t.test('a slow answer times out, is retried, and fails within the bound', async (t) => {
  const e = await startEmulator(t);
  e.faults.latencyMs = 400;
  const c = clientFor(t, e, { timeoutMs: 100, retries: 2, backoffBaseMs: 5, backoffMaxMs: 10 });
  const t0 = performance.now();
  await within(3000, rejectsNetbox(t, c.request('GET', '/status/'), 'NETBOX_UNAVAILABLE', /no answer within 100 ms.*gave up after 3 tries/), 'timeouts');
  const took = performance.now() - t0;
  t.ok(took < 1000, `three 100 ms tries took ${took.toFixed(0)} ms`);
});

t.test('409 races are retried; 409 insufficient is NETBOX_EXHAUSTED at once; 400 carries field errors; 404', async (t) => {
  let calls = 0;
  const srv = createServer((req, res) => {
    calls++;
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/api/race/') return calls < 3 ? send(409, { detail: 'A conflicting change was made; try again.' }) : send(201, { id: 1 });
    if (req.url === '/api/full/') return send(409, { detail: 'An insufficient number of IP addresses are available within 192.0.2.0/30 (1 requested, 0 available)' });
    if (req.url === '/api/bad/') return send(400, { status: ['"bogus" is not a valid choice.'] });
    if (req.url === '/api/notjson/') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('hello');
    }
    return send(404, { detail: 'Not found.' });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const c = new NetboxClient({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/api/`, token: DEFAULT_V1_TOKEN, retries: 3, backoffBaseMs: 5 });
  t.same(await c.request('POST', '/race/', { body: {} }), { id: 1 }, 'a 409 race is retried');
  t.equal(calls, 3);
  calls = 0;
  await rejectsNetbox(t, c.request('POST', '/full/', { body: {} }), 'NETBOX_EXHAUSTED', /no free address \(HTTP 409: An insufficient number/);
  t.equal(calls, 1, 'exhaustion is not retried');
  const bad = await rejectsNetbox(t, c.request('POST', '/bad/', { body: {} }), 'NETBOX_BAD_REQUEST', /HTTP 400: status: "bogus" is not a valid choice/);
  t.same(bad?.context.fields, { status: ['"bogus" is not a valid choice.'] });
  await rejectsNetbox(t, c.request('GET', '/missing/'), 'NETBOX_BAD_RESPONSE', /not found \(HTTP 404: Not found\.\)/);
  t.equal(await c.request('DELETE', '/missing/', { allow404: true }), undefined, 'allowed 404');
  calls = 0;
  await rejectsNetbox(t, c.request('GET', '/notjson/'), 'NETBOX_UNAVAILABLE', /not JSON/);
  t.equal(calls, 4, 'a non-JSON 200 is retried like a flaky proxy');
});

t.test('lists follow next through every page', async (t) => {
  const e = await startEmulator(t, { paginateCount: 5 });
  for (let i = 1; i <= 23; i++) e.addIpAddress({ address: `192.0.2.${i}/24`, description: `purelb:ns/s${i}` });
  const c = clientFor(t, e, { pageSize: 5 });
  const all = (await c.list('/ipam/ip-addresses/?description__isw=purelb:')) as { address: string }[];
  t.equal(all.length, 23);
  t.equal(all[22]!.address, '192.0.2.23/24', 'in address order');
  t.equal(e.requests.filter((r) => r.path === '/api/ipam/ip-addresses/').length, 5, '5 pages of 5');
  const capped = clientFor(t, e, { pageSize: 5, maxPages: 2 });
  await rejectsNetbox(t, capped.list('/ipam/ip-addresses/'), 'NETBOX_BAD_RESPONSE', /more than 2 pages/);
});
