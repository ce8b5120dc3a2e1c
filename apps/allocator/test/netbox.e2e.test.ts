// Netbox ServiceGroups end to end: the real allocator process against the lab's API
// server and the Netbox emulator running as a process of its own on 127.0.0.1.
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import t from 'tap';
import { type DaemonProcess, ManagedProcess, PURELB_NAMESPACE, installPureLB, startAllocator, waitFor, withLab } from '@purelb/lab';
import { DEFAULT_V2_TOKEN } from '@purelb/ipam-netbox/testing';
import { NS, applyGroup, createService, ensureNamespace, getGroup, getService, ips, settle, waitForAddresses, waitForEvent } from './e2e-helpers.ts';

// --- the emulator, as a separate process ------------------------------------------------

const serveScript = join(dirname(fileURLToPath(import.meta.resolve('@purelb/ipam-netbox/testing'))), 'serve.ts');
const emulator = new ManagedProcess('netbox emulator', process.execPath, ['--conditions=@purelb/source', serveScript]);
t.teardown(() => emulator.stop(2000));
const netboxUrl = await waitFor(
  'the Netbox emulator to listen',
  () => {
    if (!emulator.running) throw new Error(`the Netbox emulator exited:\n${emulator.tail(20)}`);
    const m = /\{"url":"([^"]+)"/.exec(emulator.tail(5));
    return m?.[1];
  },
  15_000,
  25,
);

interface NetboxIp {
  id: number;
  address: string;
  status: string;
  description: string;
  tenant: string | null;
}

async function control<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`${netboxUrl}/__emulator/${path}`, { method, signal: AbortSignal.timeout(5000), ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
  if (!r.ok) throw new Error(`emulator ${path}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}
const netboxAddresses = async (): Promise<NetboxIp[]> => (await control<{ ipAddresses: NetboxIp[] }>('GET', 'state')).ipAddresses;
/** Netbox's record of the address (without mask) or undefined. */
const netboxRecord = async (ip: string): Promise<NetboxIp | undefined> => (await netboxAddresses()).find((x) => x.address.split('/')[0] === ip);
const faults = (f: Record<string, unknown>): Promise<unknown> => control('POST', 'faults', f);

await control('POST', 'seed', {
  tenants: [{ name: 'Kubernetes', slug: 'k8s' }],
  prefixes: [{ prefix: '192.0.2.0/24', tenant: 'k8s' }, { prefix: '2001:db8:5::/64', tenant: 'k8s' }],
  ipAddresses: [{ address: '192.0.2.1/24', description: 'gateway' }],
});

// --- the cluster ----------------------------------------------------------------------

const lab = await withLab(t, { nodes: 1 });
const admin = lab.controlPlane.admin;
await installPureLB(admin, { defaults: false });
await ensureNamespace(admin);
await admin.create(`/api/v1/namespaces/${PURELB_NAMESPACE}/secrets`, {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'netbox-client', namespace: PURELB_NAMESPACE },
  data: { 'user-token': Buffer.from(`${DEFAULT_V2_TOKEN}\n`).toString('base64') },
});
await applyGroup(admin, 'nb', { netbox: { url: `${netboxUrl}/api`, tenant: 'k8s' } });
await applyGroup(admin, 'nb-missing', { netbox: { url: netboxUrl, tenant: 'k8s', prefix: '203.0.113.0/24' } });

const FAST_LEASE = ['--lease-duration=2s', '--renew-deadline=1500ms', '--retry-period=250ms'];
let allocator: DaemonProcess = await startAllocator(lab.controlPlane, { identity: 'nb-1', args: FAST_LEASE });
t.teardown(() => allocator.stop(2000));

const NB = { 'purelb.io/service-group': 'nb' };

t.test('a Netbox group: Valid once the prefix resolves; an address is taken from Netbox and recorded there', async (t) => {
  const g = await waitFor('nb to be Valid', async () => ((await getGroup(admin, 'nb')).status?.conditions?.find((c) => c.type === 'Valid' && c.status === 'True') ? true : undefined), 15_000);
  t.ok(g);
  await createService(admin, 'nb-one', { annotations: NB });
  const [ip] = await waitForAddresses(admin, 'nb-one', 1, 15_000);
  t.equal(ip, '192.0.2.2', 'the lowest address Netbox has free');
  t.match(await netboxRecord(ip!), { status: 'active', description: 'purelb:e2e/nb-one', tenant: 'k8s' }, 'recorded in Netbox with tenant and Service');
  const s = await getService(admin, 'nb-one');
  t.equal(s.metadata.annotations?.['purelb.io/allocated-from'], 'nb');
  t.ok(await waitForEvent(admin, 'nb-one', 'AddressAssigned'));
  await createService(admin, 'nb-v6', { annotations: NB, families: ['IPv6'] });
  t.same(await waitForAddresses(admin, 'nb-v6', 1, 15_000), ['2001:db8:5::1'], "the tenant's IPv6 prefix");
  const status = await waitFor('nb status to count what we hold', async () => {
    const x = await getGroup(admin, 'nb');
    return x.status?.ipv4?.usage === '1/254' && x.status?.ipv6?.usage === `1/${(1n << 64n) - 1n}` ? x : undefined;
  }, 10_000);
  t.ok(status, 'inUse/size per family');
  const bad = await waitFor('nb-missing to be Valid=False', async () => (await getGroup(admin, 'nb-missing')).status?.conditions?.find((c) => c.type === 'Valid' && c.status === 'False' && c.reason === 'NetboxPrefixNotFound'), 15_000);
  t.match(bad.message, /prefix 203\.0\.113\.0\/24 of tenant "k8s" does not exist/);
});

t.test('sharing: the second Service of a key gets the key\'s address without asking Netbox', async (t) => {
  const key = { ...NB, 'purelb.io/allow-shared-ip': 'web' };
  await createService(admin, 'nb-http', { annotations: key, ports: [{ port: 80 }] });
  const [a] = await waitForAddresses(admin, 'nb-http', 1, 15_000);
  const postsBefore = (await netboxAddresses()).length;
  await createService(admin, 'nb-https', { annotations: key, ports: [{ port: 443 }] });
  t.same(await waitForAddresses(admin, 'nb-https', 1, 15_000), [a], 'same address');
  t.equal((await netboxAddresses()).length, postsBefore, 'no new address in Netbox');
  t.match(await netboxRecord(a!), { description: 'purelb:sharing-key:web' }, 'Netbox records the sharing key as holder');
  await createService(admin, 'nb-clash', { annotations: key, ports: [{ port: 80 }] });
  t.match((await waitForEvent(admin, 'nb-clash', 'AllocationFailed', 15_000)).message, /port TCP\/80 on shared address .* is already used by Service e2e\/nb-http/, 'sharing rules still apply');
  await admin.delete(`/api/v1/namespaces/${NS}/services/nb-clash`);
  await admin.delete(`/api/v1/namespaces/${NS}/services/nb-http`);
  await settle(1000);
  t.ok(await netboxRecord(a!), 'still in Netbox while nb-https holds it');
  await admin.delete(`/api/v1/namespaces/${NS}/services/nb-https`);
  await waitFor('the shared address to go back to Netbox', async () => ((await netboxRecord(a!)) ? undefined : true), 15_000);
});

t.test('release returns the address to Netbox', async (t) => {
  await createService(admin, 'nb-rel', { annotations: NB });
  const [ip] = await waitForAddresses(admin, 'nb-rel', 1, 15_000);
  t.ok(await netboxRecord(ip!));
  await admin.delete(`/api/v1/namespaces/${NS}/services/nb-rel`);
  await waitFor('the address to be deleted from Netbox', async () => ((await netboxRecord(ip!)) ? undefined : true), 15_000);
  await createService(admin, 'nb-next', { annotations: NB });
  t.same(await waitForAddresses(admin, 'nb-next', 1, 15_000), [ip], 'and Netbox hands it out again');
});

t.test('a restart adopts what Netbox says we hold, and gives back what nobody holds', async (t) => {
  const before = ips(await getService(admin, 'nb-one'));
  await allocator.stop(5000);
  // While no allocator runs: Netbox holds an address for a Service whose status was never
  // written (a crash between the POST and the write), and one for a Service that is gone.
  await control('POST', 'seed', {
    ipAddresses: [
      { address: '192.0.2.77/24', tenant: 'k8s', description: 'purelb:e2e/nb-crashed' },
      { address: '192.0.2.78/24', tenant: 'k8s', description: 'purelb:e2e/nb-ghost' },
    ],
  });
  // And a person deleted nb-one's record in Netbox: nb-one still keeps its address.
  const oneRecord = await netboxRecord(before[0]!);
  const del = await fetch(`${netboxUrl}/api/ipam/ip-addresses/${oneRecord!.id}/`, { method: 'DELETE', headers: { authorization: `Bearer ${DEFAULT_V2_TOKEN}` }, signal: AbortSignal.timeout(5000) });
  t.equal(del.status, 204);
  await createService(admin, 'nb-crashed', { annotations: NB });
  const count = (await netboxAddresses()).length;
  allocator = await startAllocator(lab.controlPlane, { identity: 'nb-2', args: FAST_LEASE });
  t.same(await waitForAddresses(admin, 'nb-crashed', 1, 20_000), ['192.0.2.77'], 'the Service gets what Netbox says it holds');
  await settle(1000);
  t.same(ips(await getService(admin, 'nb-one')), before, 'a restart changes no address, even one Netbox lost');
  await waitFor('the ghost\'s address to go back to Netbox', async () => ((await netboxRecord('192.0.2.78')) ? undefined : true), 15_000);
  t.equal((await netboxAddresses()).length, count - 1, 'nothing new was taken from Netbox');
});

t.test('Netbox down: a Warning Event, no address, and a retry that succeeds once it is back', async (t) => {
  await faults({ down: '503' });
  await createService(admin, 'nb-down', { annotations: NB });
  const e = await waitForEvent(admin, 'nb-down', 'AllocationFailed', 20_000);
  t.equal(e.type, 'Warning');
  t.match(e.message, /Netbox POST .*available-ips\/: HTTP 503/);
  t.same(ips(await getService(admin, 'nb-down')), [], 'no address while Netbox is down');
  await faults({ down: false });
  const [ip] = await waitForAddresses(admin, 'nb-down', 1, 30_000).catch((e: unknown) => {
    t.comment(`allocator log:\n${allocator.tail(60)}`);
    throw e;
  });
  t.match(await netboxRecord(ip!), { description: 'purelb:e2e/nb-down', status: 'active' }, 'the address Netbox recorded for this Service');
  const mine = (await netboxAddresses()).filter((x) => x.description === 'purelb:e2e/nb-down');
  t.equal(mine.length, 1, 'exactly one address taken for it');
  // Netbox saw nb-one's address free (its record was deleted in the restart test) and
  // handed it out again: the allocator gave it to nobody, and the record names nb-one again.
  t.not(ip, '192.0.2.2', 'not the address nb-one uses');
  await waitFor("nb-one's Netbox record to be repaired", async () => ((await netboxRecord('192.0.2.2'))?.description === 'purelb:e2e/nb-one' ? true : undefined), 10_000);
});

t.test('50 Services created at once get 50 distinct addresses, each Netbox\'s record for it', async (t) => {
  const names = Array.from({ length: 50 }, (_, i) => `nb-many-${String(i).padStart(2, '0')}`);
  await Promise.all(names.map((n) => createService(admin, n, { annotations: NB })));
  const got = await Promise.all(names.map(async (n) => [n, (await waitForAddresses(admin, n, 1, 60_000))[0]!] as const));
  t.equal(new Set(got.map(([, ip]) => ip)).size, 50, '50 distinct addresses');
  const records = await netboxAddresses();
  for (const [n, ip] of got) {
    const r = records.find((x) => x.address.split('/')[0] === ip);
    if (r?.description !== `purelb:e2e/${n}`) t.fail(`${n} has ${ip}, which Netbox records as ${JSON.stringify(r)}`);
  }
  t.pass('every address is the one Netbox recorded for its Service');
});
