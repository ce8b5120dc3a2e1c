// Restarts, leader loss and an API server restart: no address ever changes, nothing is
// left without one.
import t from 'tap';
import { type DaemonProcess, installPureLB, startAllocator, waitFor, withLab } from '@purelb/lab';
import { NS, applyGroup, createService, ensureNamespace, getService, ips, v4, v6, waitForAddresses } from './e2e-helpers.ts';

const lab = await withLab(t, { nodes: 1 });
const admin = lab.controlPlane.admin;
await installPureLB(admin, { defaults: false });
await ensureNamespace(admin);
await applyGroup(admin, 'default', { local: { v4pools: [v4('192.0.2.0/24')], v6pools: [v6('2001:db8::1000-2001:db8::1fff')] } });

// Short Lease timings so a standby takes over in about two seconds.
const FAST_LEASE = ['--lease-duration=2s', '--renew-deadline=1500ms', '--retry-period=250ms'];
const running: DaemonProcess[] = [];
t.teardown(async () => {
  for (const p of running) await p.stop(2000);
});
async function allocator(identity: string): Promise<DaemonProcess> {
  const p = await startAllocator(lab.controlPlane, { identity, args: FAST_LEASE });
  running.push(p);
  return p;
}

async function allAddresses(names: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const list = await admin.get<{ items: { metadata: { name: string }; status?: { loadBalancer?: { ingress?: { ip: string }[] } } }[] }>(`/api/v1/namespaces/${NS}/services`);
  for (const s of list.items) if (names.includes(s.metadata.name)) out.set(s.metadata.name, (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(','));
  return out;
}

async function leaseHolder(): Promise<string | undefined> {
  const r = await admin.raw('GET', '/apis/coordination.k8s.io/v1/namespaces/purelb/leases/purelb-allocator');
  return r.status === 200 ? (JSON.parse(r.body) as { spec: { holderIdentity?: string } }).spec.holderIdentity : undefined;
}

const names = Array.from({ length: 200 }, (_, i) => `svc-${String(i).padStart(3, '0')}`);

t.test('a restart with 200 allocated Services changes no address', async (t) => {
  const first = await allocator('first');
  for (let i = 0; i < names.length; i++) await createService(admin, names[i]!, i % 4 === 0 ? { families: ['IPv4', 'IPv6'] } : {});
  const before = await waitFor('all 200 to be allocated', async () => {
    const m = await allAddresses(names);
    return [...m.values()].filter((v) => v !== '').length === names.length ? m : undefined;
  }, 60_000, 200);
  t.equal(new Set(before.values()).size, names.length, '200 distinct allocations');
  await first.stop();
  t.notOk(first.running);
  // While no allocator runs, a new Service waits; the next allocator must adopt the 200
  // before it gives this one anything, so it cannot take one of their addresses.
  await createService(admin, 'while-down');
  await allocator('second');
  const [fresh] = await waitForAddresses(admin, 'while-down', 1, 20_000);
  t.notOk([...before.values()].some((v) => v.split(',').includes(fresh!)), 'the new Service got an address no one held');
  t.same(await allAddresses(names), before, 'not one address changed');
});

t.test('the leader killed with -9: the standby takes over and no address changes', async (t) => {
  const standby = await allocator('standby');
  const leaderName = await waitFor('a leader', () => leaseHolder(), 10_000);
  const leader = running.find((p) => p.name === `allocator ${leaderName}` && p.running);
  t.ok(leader, `the leader (${leaderName}) is one of ours`);
  t.not(leaderName, 'standby', 'the standby started after the leader and waits');
  const before = await allAddresses(names);
  leader!.child.kill('SIGKILL');
  await leader!.exited();
  const t0 = Date.now();
  await createService(admin, 'after-kill');
  await waitForAddresses(admin, 'after-kill', 1, 20_000);
  const takeoverMs = Date.now() - t0;
  t.equal(await leaseHolder(), 'standby', 'the standby holds the Lease');
  t.ok(standby.running);
  t.ok(takeoverMs < 10_000, `allocated ${takeoverMs} ms after the kill (Lease 2 s)`);
  t.same(await allAddresses(names), before, 'not one address changed');
});

t.test('the API server restarted mid-stream: everything converges', async (t) => {
  const burst = Array.from({ length: 30 }, (_, i) => `mid-${i}`);
  const creating = (async () => {
    for (const n of burst) {
      // The API server is away for part of this loop: retry each create, bounded.
      await waitFor(`create ${n}`, async () => {
        const r = await admin.raw('POST', `/api/v1/namespaces/${NS}/services`, {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: n },
          spec: { type: 'LoadBalancer', ports: [{ port: 80 }], allocateLoadBalancerNodePorts: false },
        }).catch(() => ({ status: 0 }));
        return r.status === 201 || r.status === 409 ? true : undefined;
      }, 60_000, 100);
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  await lab.controlPlane.restartApiServer();
  await creating;
  const got = await waitFor('every Service to have an address', async () => {
    const m = await allAddresses([...burst, ...names]);
    return [...m.values()].every((v) => v !== '') && m.size === burst.length + names.length ? m : undefined;
  }, 60_000, 250);
  const all = [...got.values()].flatMap((v) => v.split(','));
  t.equal(new Set(all).size, all.length, 'no address is held twice');
  t.ok(running.some((p) => p.running), 'an allocator still runs');
  t.equal(ips(await getService(admin, 'mid-29')).length, 1);
});
