// TLS: the certificate is verified by default; a CA bundle makes a private CA work. The
// server is a node:https server on 127.0.0.1 with a throwaway certificate made by openssl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { NetboxClient } from '../src/index.ts';
import { DEFAULT_V1_TOKEN } from '../src/testing/index.ts';
import { rejectsNetbox } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'plb-ipam-netbox-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
try {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe', timeout: 20_000 });
} catch (e) {
  throw new Error(`openssl is needed to make a test certificate: ${String(e)}`);
}
const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
const srv = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"netbox-version":"4.3.0"}');
});
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
const url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;

t.test('an unknown CA fails verification at once, naming TLS', async (t) => {
  const c = new NetboxClient({ url, token: DEFAULT_V1_TOKEN, retries: 3, backoffBaseMs: 200 });
  t.teardown(() => c.close());
  const t0 = performance.now();
  await rejectsNetbox(t, c.request('GET', '/status/'), 'NETBOX_UNAVAILABLE', /TLS verification failed/);
  t.ok(performance.now() - t0 < 1000, 'not retried');
});

t.test('the CA bundle option makes it verify', async (t) => {
  const c = new NetboxClient({ url, token: DEFAULT_V1_TOKEN, ca: cert });
  t.teardown(() => c.close());
  t.same(await c.request('GET', '/status/'), { 'netbox-version': '4.3.0' });
});

t.test('verification can be turned off (labs only)', async (t) => {
  const c = new NetboxClient({ url, token: DEFAULT_V1_TOKEN, verifyTls: false });
  t.teardown(() => c.close());
  t.same(await c.request('GET', '/status/'), { 'netbox-version': '4.3.0' });
});
