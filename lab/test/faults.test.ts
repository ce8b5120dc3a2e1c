// The lab's fault primitives, each checked for what it cuts and what it leaves working,
// and the ARP watcher against addresses put on nodes by hand.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { type LabNode, ManagedProcess, ip, processState, run, waitFor, withLab } from '../src/index.ts';

const lab = await withLab(t, { nodes: 3 });
const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
const macs = await lab.nodeMacs();
const mac = (n: LabNode): string => macs.get(n.name)!;
const portCheck = join(import.meta.dirname, 'fixtures', 'port-check.ts');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const apiGetScript = join(import.meta.dirname, 'fixtures', 'api-get.ts');
const caFile = (): string => join(lab.dir, 'certs', 'apiserver.crt');

/** One GET to the API server from inside a node's namespace; whether it succeeded and how long the request took. */
async function apiGet(node: LabNode, path: string, maxTimeS = 5): Promise<{ ok: boolean; ms: number; body: string }> {
  const out = await run('ip', ['netns', 'exec', node.netns, process.execPath, apiGetScript, `${lab.controlPlane.url}${path}`, caFile(), lab.controlPlane.adminToken, String(maxTimeS * 1000)], { timeoutMs: maxTimeS * 1000 + 10_000 });
  const r = JSON.parse(out) as { ok: boolean; ms: number };
  return { ok: r.ok, ms: r.ms, body: out };
}

/** Starts UDP+TCP listeners on port 7934 in the nodes; returns what each heard so far. */
async function listeners(t: Pick<Test, 'teardown'>, nodes: readonly LabNode[]): Promise<(n: LabNode) => string> {
  const procs = new Map<string, ManagedProcess>();
  for (const n of nodes) {
    const p = new ManagedProcess(`listener ${n.name}`, 'ip', ['netns', 'exec', n.netns, process.execPath, portCheck, 'listen', '7934']);
    procs.set(n.name, p);
    t.teardown(() => p.stop(1000));
  }
  for (const p of procs.values()) await waitFor(`${p.name} to listen`, () => (p.tail().includes('listening') ? true : undefined), 10_000, 20);
  return (n) => procs.get(n.name)!.tail(200);
}

/** Sends one UDP datagram and one TCP message on 7934 from one node to another; true if TCP connected. */
async function send(from: LabNode, to: LabNode, msg: string): Promise<boolean> {
  const out = await run('ip', ['netns', 'exec', from.netns, process.execPath, portCheck, 'send', to.v4, '7934', msg], { timeoutMs: 10_000 });
  return (JSON.parse(out) as { tcp: boolean }).tcp;
}

t.test('watchArp: the MAC of the node holding an address, and duplicate samples when two hold it', async (t) => {
  const a = '192.0.2.150';
  t.teardown(async () => {
    for (const n of [n1, n2]) await ip('-n', n.netns, 'addr', 'del', `${a}/24`, 'dev', 'eth0').catch(() => undefined);
  });
  await ip('-n', n1.netns, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  const w = lab.watchArp(a);
  await w.ready;
  const t0 = Date.now();
  await w.waitFor(`${n1.name} answering`, (s) => s.macs.join() === mac(n1), 5000);
  await ip('-n', n2.netns, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  const both = [mac(n1), mac(n2)].sort().join();
  await w.waitFor('both nodes answering one request', (s) => s.macs.join() === both, 5000);
  await sleep(300);
  await ip('-n', n1.netns, 'addr', 'del', `${a}/24`, 'dev', 'eth0');
  await w.waitFor(`${n2.name} alone`, (s) => s.macs.join() === mac(n2), 5000);
  await ip('-n', n2.netns, 'addr', 'del', `${a}/24`, 'dev', 'eth0');
  await w.waitFor('nobody answering', (s) => s.macs.length === 0, 5000);
  await sleep(300);
  await w.stop();
  const elapsed = Date.now() - t0;
  const sum = w.summary();
  t.ok(w.duplicateSampleCount() >= 10, `duplicate samples while both held it: ${w.duplicateSampleCount()} (of ${w.sampleCount()})`);
  t.ok(w.duplicateSamples().every((s) => s.macs.join() === both), 'every duplicate names the two nodes');
  t.same(w.transitions().map((x) => x.to.join()), [mac(n1), both, mac(n2)], 'n1, then both, then n2');
  t.ok(w.sampleCount() >= (elapsed / 20) * 0.5, `one sample about every 20 ms: ${w.sampleCount()} in ${elapsed} ms`);
  const open = w.unavailability().at(-1);
  t.ok(open && open.toMs === undefined && open.samples >= 10, 'the run of unanswered samples at the end is open');
  t.ok(w.samples().flatMap((s) => s.answers).every((x) => x.afterMs < 20), 'answers within the interval');
  t.same(sum.macs, [mac(n1), mac(n2)].sort());
});

t.test('watchArp: one holder gives no duplicate and no unavailability', async (t) => {
  const a = '192.0.2.151';
  await ip('-n', n3.netns, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  t.teardown(() => ip('-n', n3.netns, 'addr', 'del', `${a}/24`, 'dev', 'eth0').catch(() => undefined));
  const w = lab.watchArp(a, { intervalMs: 10 });
  await w.ready;
  await w.waitFor('an answer', (s) => s.macs.length > 0, 5000);
  await sleep(1000);
  await w.stop();
  const s = w.summary();
  t.equal(s.duplicateSamples, 0);
  t.same(s.macs, [mac(n3)]);
  t.same(s.unavailability.filter((u) => u.fromMs > w.samples()[0]!.atMs + 100), [], 'no unanswered run once answering');
  t.ok(s.samples >= 50, `${s.samples} samples in about a second at 10 ms`);
});

t.test('watchArp (IPv6, neighbour solicitation): one holder, then two', async (t) => {
  const a = '2001:db8::150';
  t.teardown(async () => {
    for (const n of [n1, n2]) await ip('-n', n.netns, 'addr', 'del', `${a}/64`, 'dev', 'eth0').catch(() => undefined);
  });
  await ip('-n', n1.netns, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad');
  const set = lab.watchArpAll([a, '192.0.2.152']);
  await set.ready;
  const w = set.get(a);
  await w.waitFor(`${n1.name} answering`, (s) => s.macs.join() === mac(n1), 5000);
  await ip('-n', n2.netns, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad');
  await w.waitFor('both answering', (s) => s.macs.length === 2, 5000);
  await set.stop();
  t.ok(w.duplicateSampleCount() > 0, `duplicates: ${w.duplicateSampleCount()}`);
  t.equal(set.get('192.0.2.152').summary().answered, 0, 'an address nobody holds: no answer');
  t.ok(set.counters.sent > 0 && set.counters.strays === 0, `sent ${set.counters.sent}, strays ${set.counters.strays}`);
});

t.test('setApiReachable: one node\'s API path refused, its watches cut, then restored', async (t) => {
  t.teardown(() => lab.setApiReachable(n1, true));
  t.ok((await apiGet(n1, `/api/v1/nodes/${n1.name}`)).ok, 'n1 reaches the API server');
  const watch = new ManagedProcess('watch', 'ip', [
    'netns', 'exec', n1.netns, process.execPath, apiGetScript, `${lab.controlPlane.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=60`, caFile(), lab.controlPlane.adminToken, '10000', '--hold',
  ]);
  t.teardown(() => watch.stop(1000));
  await waitFor('the watch to be open', () => (watch.tail().includes('open') ? true : undefined), 10_000, 20);
  t.ok(watch.running, 'a watch is open');
  await lab.setApiReachable(n1, false);
  t.equal(lab.apiPath(n1), 'refuse');
  const cutAt = Date.now();
  await Promise.race([watch.exited(), sleep(3000)]);
  t.notOk(watch.running, `the open watch was cut (${Date.now() - cutAt} ms)`);
  t.match(watch.tail(), /closed/, 'its connection ended');
  const refused = await apiGet(n1, '/version');
  t.notOk(refused.ok, 'a new request fails');
  t.ok(refused.ms < 2000, `and fails fast (${refused.ms} ms)`);
  t.ok((await apiGet(n2, '/version')).ok, 'another node still reaches the API server');
  t.equal((await lab.controlPlane.admin.raw('GET', '/version')).status, 200, 'so does the host');
  await lab.setApiReachable(n1, true);
  t.ok((await apiGet(n1, '/version')).ok, 'restored');
});

t.test('setApiReachable mode drop: requests hang, and go on when the path comes back', async (t) => {
  t.teardown(() => lab.setApiReachable(n2, true));
  await lab.setApiReachable(n2, false, { mode: 'drop' });
  t.equal(lab.apiPath(n2), 'drop');
  const timedOut = await apiGet(n2, '/version', 1);
  t.notOk(timedOut.ok, 'a request with a 1 s timeout fails');
  t.ok(timedOut.ms >= 900, `by its timeout, not by a refusal (${timedOut.ms} ms)`);
  const pending = new ManagedProcess('pending request', 'ip', ['netns', 'exec', n2.netns, process.execPath, apiGetScript, `${lab.controlPlane.url}/version`, caFile(), lab.controlPlane.adminToken, '10000']);
  t.teardown(() => pending.stop(1000));
  await waitFor('the request to be sent', () => (pending.tail().includes('sent') ? true : undefined), 10_000, 20);
  await sleep(1000);
  t.ok(pending.running, 'a request sent while dropped is still waiting a second later');
  await lab.setApiReachable(n2, true);
  await pending.exited();
  const r = JSON.parse(/\{.*\}/.exec(pending.tail())?.[0] ?? '{}') as { ok?: boolean; ms?: number };
  t.ok(r.ok, 'and completes once the path is back');
  t.ok((r.ms ?? 0) >= 1000, `after the path came back (${r.ms} ms)`);
});

t.test('setGossipBlocked: that node cut from every other, the rest still talking', async (t) => {
  const heard = await listeners(t, [n1, n2, n3]);
  t.ok(await send(n1, n2, 'before'), 'n1 -> n2 over TCP before');
  await waitFor('n2 to hear n1', () => (heard(n2).includes('udp before') ? true : undefined), 3000, 20);
  await lab.setGossipBlocked(n1, true);
  t.teardown(() => lab.setGossipBlocked(n1, false));
  t.notOk(await send(n1, n2, 'blocked-1-2'), 'n1 -> n2: TCP does not connect');
  t.notOk(await send(n3, n1, 'blocked-3-1'), 'n3 -> n1: TCP does not connect');
  t.ok(await send(n3, n2, 'open-3-2'), 'n3 -> n2: TCP connects');
  t.ok(await send(n2, n3, 'open-2-3'), 'n2 -> n3: TCP connects');
  await waitFor('n2 to hear n3', () => (heard(n2).includes('udp open-3-2') ? true : undefined), 3000, 20);
  await sleep(300);
  t.notOk(heard(n2).includes('blocked-1-2'), 'no UDP from n1 reached n2');
  t.notOk(heard(n1).includes('blocked-3-1'), 'no UDP from n3 reached n1');
  t.same(await lab.arpWhoHas(n1.v4), [mac(n1)], 'the client still gets n1\'s ARP answer');
  t.same((await lab.probe(lab.network.clientNetns, [`http://${n1.v4}/`]))[0]?.body, n1.name, 'the client still reaches n1');
  t.ok((await apiGet(n1, '/version')).ok, 'n1 still reaches the API server');
  await lab.setGossipBlocked(n1, false);
  t.ok(await send(n1, n2, 'after'), 'unblocked: n1 -> n2 over TCP');
  await waitFor('n2 to hear n1 again', () => (heard(n2).includes('udp after') ? true : undefined), 3000, 20);
});

t.test('partition: a node alone, cut from the others and from the API server; healed', async (t) => {
  const heard = await listeners(t, [n1, n2, n3]);
  const p = await lab.partition([[n1], [n2, n3]], { api: [n2, n3] });
  t.teardown(() => p.heal());
  t.notOk(await send(n1, n3, 'p-1-3'), 'n1 -> n3 cut');
  t.notOk(await send(n2, n1, 'p-2-1'), 'n2 -> n1 cut');
  t.ok(await send(n2, n3, 'p-2-3'), 'n2 -> n3 open');
  t.notOk((await apiGet(n1, '/version')).ok, 'n1 has no API path');
  t.ok((await apiGet(n2, '/version')).ok, 'n2 has one');
  t.same(await lab.arpWhoHas(n1.v4), [mac(n1)], 'the client still hears n1');
  // A gossip block on the same pairs: healing the partition leaves it in place.
  await lab.setGossipBlocked(n1, true);
  await p.heal();
  t.notOk(await send(n1, n2, 'still-1-2'), 'n1 -> n2 still cut by the gossip block');
  t.ok((await apiGet(n1, '/version')).ok, 'n1 reaches the API server again');
  await lab.heal();
  t.ok(await send(n1, n2, 'healed-1-2'), 'heal(): n1 -> n2 open');
  await waitFor('n2 to hear n1', () => (heard(n2).includes('udp healed-1-2') ? true : undefined), 3000, 20);
  t.notOk(heard(n3).includes('p-1-3'), 'nothing from n1 reached n3 while partitioned');
});

t.test('partition without cutting the API path', async (t) => {
  await listeners(t, [n1, n2, n3]);
  const p = await lab.partition([[n1, n2], [n3]]);
  t.teardown(() => p.heal());
  t.notOk(await send(n3, n1, 'q'), 'n3 -> n1 cut');
  t.ok(await send(n1, n2, 'q'), 'n1 -> n2 open');
  for (const n of [n1, n2, n3]) t.equal(lab.apiPath(n), 'open', `${n.name} keeps its API path`);
  await p.heal();
  t.ok(await send(n3, n1, 'q'), 'healed');
});

t.test('freeze and thaw a process', async (t) => {
  const p = new ManagedProcess('ticker', 'ip', ['netns', 'exec', n1.netns, process.execPath, '-e', 'let i = 0; setInterval(() => console.log(i++), 20)']);
  t.teardown(() => p.stop(1000));
  await waitFor('ticks', () => (p.tail().split('\n').length > 3 ? true : undefined), 5000, 20);
  lab.freeze(p);
  t.ok(p.frozen);
  await sleep(100);
  t.equal(processState(p.pid!), 'T', 'stopped');
  const lastTick = (): string => p.tail(3).trim().split('\n').pop() ?? '';
  const before = lastTick();
  await sleep(300);
  t.equal(lastTick(), before, `no output while frozen (last tick ${before})`);
  lab.thaw(p);
  await waitFor('ticks again', () => (lastTick() !== before ? true : undefined), 2000, 20);
  t.not(processState(p.pid!), 'T', 'running again');
  lab.freeze(p);
  const t0 = Date.now();
  await p.stop(2000);
  t.ok(Date.now() - t0 < 1500, 'a frozen process stops on SIGTERM (thawed first)');
});

t.test('setLinkUp: at the node and at the bridge; a cut survives the flap', async (t) => {
  const reach = async (n: LabNode): Promise<boolean> => (await lab.probe(lab.network.clientNetns, [`http://${n.v4}/`], 500))[0]?.ok ?? false;
  await lab.setGossipBlocked(n3, true);
  t.teardown(() => lab.setGossipBlocked(n3, false));
  for (const at of ['node', 'bridge'] as const) {
    await lab.setLinkUp(n3, false, { at });
    t.notOk(await reach(n3), `cut at the ${at}: the client cannot reach n3`);
    if (at === 'bridge') t.match(await ip('-n', n3.netns, 'link', 'show', 'eth0'), /NO-CARRIER/, 'the node sees its carrier gone');
    await lab.setLinkUp(n3, true, { at });
    await waitFor('n3 reachable again', async () => ((await reach(n3)) ? true : undefined), 5000, 50);
    t.pass(`restored at the ${at}`);
    t.notOk(await send(n3, n1, `flap-${at}`), 'the gossip block is still in place');
  }
});
