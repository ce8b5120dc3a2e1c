// Hand-written fault schedules on the simulated cluster of test/sim, with the outcome each
// must have: who holds the address, how soon, and never two holders on the LAN.
import t, { type Test } from 'tap';
import { FINAL_STABLE_MS as STABLE_MS } from './sim/schedule.ts';
import { type SimNode, World } from './sim/world.ts';
import { EXCLUDE_LABEL } from '@purelb/api';
import { GARP_ROUNDS_MS } from '../src/agent.ts';

const ADDRESS = '192.0.2.100';

async function healthyCluster(seed: number): Promise<{ w: World; holder: SimNode }> {
  const services = Array.from({ length: 8 }, (_, i) => ({ name: `svc-${i}`, address: `192.0.2.${100 + i}`, shared: false }));
  const w = new World({ seed, nodes: 3, services, loss: 0, sendgarp: true, watchLagMs: 50, checkEveryEvent: true, trace: true });
  await w.setup();
  for (const n of w.nodes) w.boot(n);
  await w.runUntil(20_000, () => w.allSingleSince !== undefined && w.now() - w.allSingleSince >= STABLE_MS);
  const holder = w.holderOf(ADDRESS);
  if (!holder || w.violations.length > 0) throw new Error(`the cluster did not settle\n${w.describe()}`);
  return { w, holder };
}

/** Runs until another node than `old` holds ADDRESS alone; returns the time it took (ms) or undefined. */
async function takenOver(w: World, old: SimNode, withinMs: number): Promise<{ ms: number | undefined; by: SimNode | undefined }> {
  const t0 = w.now();
  const other = (): SimNode | undefined => {
    const h = w.holderOf(ADDRESS);
    return h && h !== old ? h : undefined;
  };
  await w.runUntil(t0 + withinMs, () => other() !== undefined);
  const by = other();
  return { ms: by ? w.now() - t0 : undefined, by };
}

async function settles(w: World, withinMs: number): Promise<boolean> {
  const t0 = w.now();
  await w.runUntil(t0 + withinMs, () => w.allSingleSince !== undefined && w.now() - Math.max(w.allSingleSince, t0) >= STABLE_MS);
  return w.allSingleSince !== undefined && w.now() - Math.max(w.allSingleSince, t0) >= STABLE_MS;
}

function noTwoHolders(t: Test, w: World): void {
  t.same(w.violations, [], 'never two holders of any address');
  if (w.violations.length > 0) t.comment(w.trace.slice(-200).join('\n'));
}

t.test('kill the holder: another node answers within 3.5 s; after the restart it keeps the address', async (t) => {
  const { w, holder } = await healthyCluster(101);
  w.kill(holder);
  const { ms, by } = await takenOver(w, holder, 10_000);
  t.ok(ms !== undefined && ms <= 3_500, `taken over by ${by?.name} after ${ms === undefined ? '-' : Math.round(ms)} ms`);
  await w.runUntil(w.now() + 2_000);
  w.restart(holder);
  t.ok(await settles(w, 15_000), 'one holder per address after the restart');
  t.equal(w.holderOf(ADDRESS), by, 'the address stays where it went (no pull-back)');
  noTwoHolders(t, w);
});

t.test('purelb_address_takeover_duration_seconds: each address once at start; after a kill, the taker times only its own part', async (t) => {
  const { w, holder } = await healthyCluster(103);
  const atStart = w.nodes.flatMap((n) => n.takeovers);
  t.ok(atStart.length >= 8, `every one of the 8 addresses was timed at least once as it was first added (${atStart.length})`);
  t.ok(atStart.every(([family, s]) => family === 'IPv4' && s > 0 && s < 20), 'IPv4, and each took some time (the probe) but less than the settling');
  const killedAt = w.now();
  w.kill(holder);
  const { ms, by } = await takenOver(w, holder, 10_000);
  t.ok(by && ms !== undefined, `taken over by ${by?.name}`);
  const after = by!.takeovers.filter(([, , at]) => at > killedAt);
  t.ok(after.length >= 1, `${by?.name} timed its takeover (${after.length})`);
  for (const [, seconds, at] of after) {
    t.ok(seconds > 0 && seconds * 1000 <= at - killedAt, `${Math.round(seconds * 1000)} ms from the decision to the NIC, within the ${Math.round(at - killedAt)} ms since the kill (detection is not counted)`);
  }
  noTwoHolders(t, w);
});

t.test('freeze the holder 4 s: another node answers within 3.5 s; the thawed node does not answer again', async (t) => {
  const { w, holder } = await healthyCluster(102);
  const thaw = w.freeze(holder);
  const frozenAt = w.now();
  const { ms, by } = await takenOver(w, holder, 4_000);
  t.ok(ms !== undefined && ms <= 3_500, `taken over by ${by?.name} after ${ms === undefined ? '-' : Math.round(ms)} ms`);
  t.same(w.holders().get(ADDRESS), [by?.name], "the frozen node's kernel no longer answers");
  await w.runUntil(frozenAt + 4_000);
  thaw();
  t.ok(await settles(w, 15_000), 'one holder per address after the thaw');
  t.equal(w.holderOf(ADDRESS), by, 'the address stays with the node that took it over');
  noTwoHolders(t, w);
});

t.test("block the holder's gossip port: it withdraws at once, another node answers within 3 s", async (t) => {
  const { w, holder } = await healthyCluster(103);
  const open = w.blockGossip(holder);
  const t0 = w.now();
  await w.runUntil(t0 + 1_000, () => !w.holders().get(ADDRESS)!.includes(holder.name));
  t.ok(w.now() - t0 <= 600, `the cut-off holder stopped answering after ${Math.round(w.now() - t0)} ms`);
  const { ms, by } = await takenOver(w, holder, 5_000);
  t.ok(ms !== undefined && w.now() - t0 <= 3_000, `taken over by ${by?.name} ${Math.round(w.now() - t0)} ms after the block`);
  t.equal(holder.agent?.mode, 'lease', 'the cut-off node follows its Lease (it holds nothing)');
  await w.runUntil(t0 + 6_000);
  open();
  t.ok(await settles(w, 15_000), 'one holder per address after the port opens');
  noTwoHolders(t, w);
});

t.test('partition the holder alone, its API path cut too: fenced, taken over within 3.5 s', async (t) => {
  const { w, holder } = await healthyCluster(104);
  const heal = w.partition([holder], w.nodes.filter((n) => n !== holder));
  const restore = w.cutApi(holder);
  const { ms, by } = await takenOver(w, holder, 5_000);
  t.ok(ms !== undefined && ms <= 3_500, `taken over by ${by?.name} after ${ms === undefined ? '-' : Math.round(ms)} ms (no Lease news from the holder: fenced by time)`);
  await w.runUntil(w.now() + 12_000);
  t.equal(holder.agent?.mode, 'fenced', 'its own Lease has expired: fenced');
  t.same(w.holders().get(ADDRESS), [by?.name], 'still one holder');
  heal();
  restore();
  t.ok(await settles(w, 20_000), 'one holder per address after healing');
  noTwoHolders(t, w);
});

t.test('link flap of the holder while it is frozen: its kernel never answers next to the new holder', async (t) => {
  const { w, holder } = await healthyCluster(105);
  const t0 = w.now();
  const thaw = w.freeze(holder);
  let up: (() => void) | undefined;
  w.at(t0 + 500, () => (up = w.linkDown(holder)));
  w.at(t0 + 2_500, () => up?.());
  w.at(t0 + 4_000, thaw);
  const { ms, by } = await takenOver(w, holder, 5_000);
  t.ok(ms !== undefined && ms <= 3_500, `taken over by ${by?.name} after ${ms === undefined ? '-' : Math.round(ms)} ms`);
  await w.runUntil(t0 + 4_500);
  t.equal(holder.proc?.state, 'running', 'thawed');
  t.ok(await settles(w, 15_000), 'one holder per address after the thaw');
  t.not(w.holderOf(ADDRESS), holder, 'the thawed node does not take it back');
  noTwoHolders(t, w);
});

t.test("cut the holder's API path for 15 s: gossip is fine, so it keeps answering and nobody else does", async (t) => {
  const { w, holder } = await healthyCluster(106);
  const restore = w.cutApi(holder);
  const t0 = w.now();
  let lost = 0;
  await w.runUntil(t0 + 15_000, () => {
    if (w.holderOf(ADDRESS) !== holder) lost++;
    return false;
  });
  restore();
  t.equal(lost, 0, 'the holder answered alone the whole time');
  t.ok(await settles(w, 15_000), 'one holder per address after the path is back');
  noTwoHolders(t, w);
});

t.test('the holder excluded by its Node (label, then NetworkUnavailable on the next): it lets go first, another takes over; included again, it takes addresses again', async (t) => {
  const { w, holder } = await healthyCluster(107);
  const node = (n: SimNode): string => `/api/v1/nodes/${n.name}`;
  await w.server.mergePatch(node(holder), { metadata: { labels: { [EXCLUDE_LABEL]: 'true' } } });
  const first = await takenOver(w, holder, 5_000);
  t.ok(first.ms !== undefined && first.ms <= 1_500, `taken over by ${first.by?.name} after ${first.ms === undefined ? '-' : Math.round(first.ms)} ms`);
  t.ok(await settles(w, 15_000), 'one holder per address with the node excluded');
  t.same([...w.holders()].filter(([, hs]) => hs.includes(holder.name)), [], 'the labelled node holds no address');
  // Its agent restarted while the label is on: it starts excluded and takes nothing.
  w.kill(holder);
  await w.runUntil(w.now() + 2_000);
  w.restart(holder);
  t.ok(await settles(w, 15_000), 'one holder per address after the excluded node restarted');
  t.same(holder.agent?.eligibility, { eligible: false, reason: 'ExcludedByLabel', message: `node ${holder.name} has the label ${EXCLUDE_LABEL}` }, 'restarted while labelled, its agent starts excluded');
  for (const peer of w.nodes.filter((n) => n !== holder)) {
    t.same(peer.membership?.members().find((m) => m.name === holder.name)?.subnets, [], `and offers no subnets to the election (as ${peer.name} sees it)`);
  }
  t.same([...w.holders()].filter(([, hs]) => hs.includes(holder.name)), [], 'and holds no address');
  await w.server.mergePatch(node(holder), { metadata: { labels: { [EXCLUDE_LABEL]: null } } });
  const next = first.by!;
  await w.server.mergePatch(`${node(next)}/status`, { status: { conditions: [{ type: 'NetworkUnavailable', status: 'True' }] } });
  const second = await takenOver(w, next, 5_000);
  t.ok(second.ms !== undefined && second.ms <= 1_500, `taken over from ${next.name} by ${second.by?.name} after ${second.ms === undefined ? '-' : Math.round(second.ms)} ms`);
  t.ok(await settles(w, 15_000), 'one holder per address with NetworkUnavailable');
  t.same([...w.holders()].filter(([, hs]) => hs.includes(next.name)), [], 'the node without network holds no address');
  t.ok([...w.holders()].some(([, hs]) => hs.includes(holder.name)), `${holder.name}, included again, holds addresses again`);
  await w.server.mergePatch(`${node(next)}/status`, { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False' }] } });
  t.ok(await settles(w, 15_000), 'one holder per address after the condition cleared');
  noTwoHolders(t, w);
});

t.test('a ServiceGroup nodeSelector matching one node, then relabelled to match another: every address moves there, never two holders', async (t) => {
  const { w, holder } = await healthyCluster(111);
  const LABEL = 'purelb.io/edge';
  const node = (n: SimNode): string => `/api/v1/nodes/${n.name}`;
  const everyAddressOn = (n: SimNode): boolean => [...w.holders()].length === 8 && [...w.holders()].every(([, hs]) => hs.length === 1 && hs[0] === n.name);
  // Selected: a node that holds ADDRESS not, so the selector has to move it.
  const [first, second] = w.nodes.filter((n) => n !== holder) as [SimNode, SimNode];
  await w.server.mergePatch(node(first), { metadata: { labels: { [LABEL]: 'true' } } });
  await w.server.mergePatch(`/apis/purelb.io/v1/namespaces/purelb/servicegroups/default`, { spec: { local: { nodeSelector: { matchLabels: { [LABEL]: 'true' } } } } });
  const t0 = w.now();
  await w.runUntil(t0 + 15_000, () => everyAddressOn(first));
  t.ok(everyAddressOn(first), `every address on ${first.name}, the one node selected (after ${Math.round(w.now() - t0)} ms)`);
  t.ok(await settles(w, 15_000), 'one holder per address with the selector');
  t.ok(everyAddressOn(first), `and they stay on ${first.name}`);
  // Relabelled: the label leaves the holder and goes to another node.
  await w.server.mergePatch(node(first), { metadata: { labels: { [LABEL]: null } } });
  await w.server.mergePatch(node(second), { metadata: { labels: { [LABEL]: 'true' } } });
  const t1 = w.now();
  await w.runUntil(t1 + 15_000, () => everyAddressOn(second));
  t.ok(everyAddressOn(second), `every address on ${second.name}, the newly selected node (after ${Math.round(w.now() - t1)} ms)`);
  t.ok(await settles(w, 15_000), 'one holder per address after the relabel');
  t.ok(everyAddressOn(second), `and they stay on ${second.name}`);
  noTwoHolders(t, w);
});

t.test('each agent publishes its membership view on its Lease (purelb.io/membership: reached/known)', async (t) => {
  const { w, holder } = await healthyCluster(109);
  const membership = (): Record<string, string | undefined> => {
    const leases = w.server.snapshot('leases').items as unknown as { metadata: { name: string; annotations?: Record<string, string> } }[];
    return Object.fromEntries(leases.map((l) => [l.metadata.name, l.metadata.annotations?.['purelb.io/membership']]));
  };
  await w.runUntil(w.now() + 6_000);
  t.same(Object.values(membership()), ['3/3', '3/3', '3/3'], 'healthy: every agent reaches all three');
  const open = w.blockGossip(holder);
  await w.runUntil(w.now() + 8_000);
  const m = membership();
  t.equal(m[`purelb-agent-${holder.name}`], '1/3', 'the node cut off from gossip reaches only itself');
  t.same(Object.entries(m).filter(([k]) => k !== `purelb-agent-${holder.name}`).map(([, v]) => v), ['2/3', '2/3'], 'the others reach each other');
  open();
  noTwoHolders(t, w);
});

t.test('sendgarp: the taker announces the address in three rounds (at once, +0.5 s, +2 s), and no more', async (t) => {
  const { w, holder } = await healthyCluster(107);
  const rounds = (n: SimNode): number => n.kernel.announcements.filter((a) => a.address === ADDRESS).reduce((sum, a) => sum + a.count, 0);
  t.equal(rounds(holder), GARP_ROUNDS_MS.length, `the first holder announced ${ADDRESS} ${GARP_ROUNDS_MS.length} times once it settled`);
  const before = new Map(w.nodes.map((n) => [n, rounds(n)]));
  w.kill(holder);
  const { by } = await takenOver(w, holder, 10_000);
  t.ok(by, `taken over by ${by?.name}`);
  await w.runUntil(w.now() + 5_000);
  t.equal(rounds(by!) - before.get(by!)!, GARP_ROUNDS_MS.length, `${by?.name} announced it ${GARP_ROUNDS_MS.length} times after taking it`);
  t.equal(w.holderOf(ADDRESS), by, 'and still holds it');
  noTwoHolders(t, w);
});

t.test('sendgarp: a node that lets the address go stops its repeats', async (t) => {
  const { w, holder } = await healthyCluster(109);
  w.kill(holder);
  const { by } = await takenOver(w, holder, 10_000);
  t.ok(by, `taken over by ${by?.name}`);
  const rounds = (): number => by!.kernel.announcements.filter((a) => a.address === ADDRESS).reduce((sum, a) => sum + a.count, 0);
  const first = rounds();
  // Block its gossip right away: it withdraws at once, before the +0.5 s repeat.
  const open = w.blockGossip(by!);
  await w.runUntil(w.now() + 300, () => w.holderOf(ADDRESS) !== by);
  t.not(w.holderOf(ADDRESS), by, `${by?.name} let ${ADDRESS} go`);
  await w.runUntil(w.now() + 5_000);
  t.equal(rounds(), first, `${by?.name} sent no repeat after letting it go`);
  open();
  noTwoHolders(t, w);
});
