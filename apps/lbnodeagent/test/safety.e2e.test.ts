// The safety promise under faults: never two nodes answering for one address. For each
// fault the client samples who answers ARP for the Service's address every 20 ms, from
// before the fault until the address answers again and the cluster has settled after
// the fault is undone; no sample may ever carry two MACs, and the address must answer
// again within a budget. Every fault hits the node announcing the address.
import t, { type Test } from 'tap';
import { type ArpWatch, type LabNode, startAgent, withLab } from '@purelb/lab';
import { addressesOf, startCluster, waitForHolders, waitForSettled } from './e2e-helpers.ts';

/** How soon another node must answer after each fault (ms). */
const BUDGET = {
  kill: 3000,
  freeze: 3000,
  gossipBlocked: 5000,
  partition: 5000,
  linkCut: 1000,
} as const;
/** How long to keep sampling once the cluster has settled after the fault is undone. */
const AFTER_MS = 3000;

const lab = await withLab(t, { nodes: 3 });
const cluster = await startCluster(lab, t);
const macs = await lab.nodeMacs();
const nodeOfMac = new Map([...macs].map(([node, mac]) => [mac, node]));
const nodeOf = (name: string): LabNode => lab.nodes.find((n) => n.name === name)!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fresh Service, its address answered by one node; returns the address, its holder and a running watch. */
async function setUp(t: Test, name: string): Promise<{ address: string; holder: LabNode; watch: ArpWatch }> {
  await lab.createDemoService(name);
  const [address] = await addressesOf(lab, name, 1);
  const [h] = await waitForHolders(lab, address!, (x) => x.length === 1, 'one holder');
  const holder = nodeOf(h!.node);
  const watch = lab.watchArp(address!);
  t.teardown(() => watch.stop());
  await watch.ready;
  await watch.waitFor(`${holder.name} answering`, (s) => s.macs.join() === macs.get(holder.name), 5000);
  await sleep(500);
  return { address: address!, holder, watch };
}

/** Waits until another node than `victim` answers; returns when (ms since the epoch), or undefined after timeoutMs. */
async function otherAnswers(watch: ArpWatch, victim: LabNode, sinceMs: number, timeoutMs: number): Promise<number | undefined> {
  const victimMac = macs.get(victim.name);
  return watch
    .waitFor(`a node other than ${victim.name} answering`, (s) => s.macs.length > 0 && !s.macs.includes(victimMac!), timeoutMs, sinceMs)
    .then((s) => s.atMs, () => undefined);
}

const fmt = (ms: number): string => `${Math.round(ms)} ms`;
const names = (list: readonly string[]): string => list.map((m) => nodeOfMac.get(m) ?? m).join('+') || 'nobody';

/** The assertions every scenario makes once its watch is stopped, and the figures it prints. */
function verdict(t: Test, watch: ArpWatch, faultAt: number, label: string): void {
  const s = watch.summary();
  const unavailable = s.unavailability.filter((u) => u.fromMs >= faultAt - 100);
  t.comment(`${label}: ${s.samples} samples, ${s.duplicateSamples} with two MACs; unavailable: ${unavailable.map((u) => `${fmt(u.durationMs)} at +${fmt(u.fromMs - faultAt)}`).join(', ') || 'never'}; answering: ${watch.transitions().map((x) => `${names(x.to)} at +${fmt(x.atMs - faultAt)}`).join(', ')}`);
  const first = watch.duplicateSamples()[0];
  t.equal(s.duplicateSamples, 0, `never two MACs answering one request${first ? `: first at +${fmt(first.atMs - faultAt)} (${names(first.macs)}), ${s.duplicateSamples} samples in all` : ''}`);
  t.ok(s.maxGapMs < 1000, `the sampler kept sampling (longest gap ${fmt(s.maxGapMs)})`);
}

t.test('(a) the announcing agent killed with -9, its node alive', async (t) => {
  const { holder, watch } = await setUp(t, 'safety-kill');
  const agent = cluster.agents.get(holder.name)!;
  const faultAt = Date.now();
  agent.child.kill('SIGKILL');
  await agent.exited();
  const at = await otherAnswers(watch, holder, faultAt, BUDGET.kill + 10_000);
  t.ok(at !== undefined && at - faultAt <= BUDGET.kill, `another node answers within ${BUDGET.kill} ms (${at === undefined ? 'not at all' : fmt(at - faultAt)})`);
  cluster.agents.set(holder.name, await startAgent(lab.controlPlane, holder));
  await waitForSettled(cluster);
  await sleep(AFTER_MS);
  await watch.stop();
  verdict(t, watch, faultAt, 'kill');
  t.ok(watch.summary().longestUnavailableMs <= BUDGET.kill, `unanswered at most ${BUDGET.kill} ms at a time (${fmt(watch.summary().longestUnavailableMs)})`);
});

t.test('(b) the announcing agent frozen (SIGSTOP) for 4 s, then thawed', async (t) => {
  const { holder, watch } = await setUp(t, 'safety-freeze');
  const agent = cluster.agents.get(holder.name)!;
  t.teardown(() => lab.thaw(agent));
  const faultAt = Date.now();
  lab.freeze(agent);
  await sleep(4000);
  lab.thaw(agent);
  const answered = await watch.waitFor('an answer', (s) => s.macs.length > 0, 10_000).then(() => true, () => false);
  t.ok(answered, 'the address answers after the thaw');
  await waitForSettled(cluster);
  await sleep(AFTER_MS);
  await watch.stop();
  verdict(t, watch, faultAt, 'freeze');
  t.ok(watch.summary().longestUnavailableMs <= BUDGET.freeze, `unanswered at most ${BUDGET.freeze} ms at a time (${fmt(watch.summary().longestUnavailableMs)})`);
});

t.test('(c) the announcing node\'s gossip blocked (that node only)', async (t) => {
  const { holder, watch } = await setUp(t, 'safety-gossip');
  t.teardown(() => lab.setGossipBlocked(holder, false));
  const faultAt = Date.now();
  await lab.setGossipBlocked(holder, true);
  const at = await otherAnswers(watch, holder, faultAt, BUDGET.gossipBlocked + 15_000);
  t.ok(at !== undefined && at - faultAt <= BUDGET.gossipBlocked, `another node answers within ${BUDGET.gossipBlocked} ms (${at === undefined ? 'not at all' : fmt(at - faultAt)})`);
  await sleep(2000);
  await lab.setGossipBlocked(holder, false);
  await waitForSettled(cluster);
  await sleep(AFTER_MS);
  await watch.stop();
  verdict(t, watch, faultAt, 'gossip blocked');
  t.ok(watch.summary().longestUnavailableMs <= BUDGET.gossipBlocked, `unanswered at most ${BUDGET.gossipBlocked} ms at a time (${fmt(watch.summary().longestUnavailableMs)})`);
});

t.test('(d) the announcing node alone, cut from the others and from the API server; healed', async (t) => {
  const { holder, watch } = await setUp(t, 'safety-partition');
  const others = lab.nodes.filter((n) => n !== holder);
  const faultAt = Date.now();
  const p = await lab.partition([[holder], others], { api: others });
  t.teardown(() => p.heal());
  const at = await otherAnswers(watch, holder, faultAt, BUDGET.partition + 15_000);
  t.ok(at !== undefined && at - faultAt <= BUDGET.partition, `another node answers within ${BUDGET.partition} ms (${at === undefined ? 'not at all' : fmt(at - faultAt)})`);
  await sleep(2000);
  await p.heal();
  await waitForSettled(cluster);
  await sleep(AFTER_MS);
  await watch.stop();
  verdict(t, watch, faultAt, 'partition');
  t.ok(watch.summary().longestUnavailableMs <= BUDGET.partition, `unanswered at most ${BUDGET.partition} ms at a time (${fmt(watch.summary().longestUnavailableMs)})`);
});

t.test('(e) the announcing node\'s LAN link cut, its API path up: ten times in a row', async (t) => {
  const { watch } = await setUp(t, 'safety-link');
  const firstFault = Date.now();
  const takeovers: number[] = [];
  for (let i = 0; i < 10; i++) {
    const last = await watch.waitFor('one node answering', (s) => s.macs.length === 1, 10_000);
    const victim = nodeOf(nodeOfMac.get(last.macs[0]!)!);
    const faultAt = Date.now();
    await lab.setLinkUp(victim, false);
    const at = await otherAnswers(watch, victim, faultAt, 10_000);
    takeovers.push(at === undefined ? Number.POSITIVE_INFINITY : at - faultAt);
    await lab.setLinkUp(victim, true);
    t.ok(at !== undefined && at - faultAt <= BUDGET.linkCut, `cut ${i + 1} (${victim.name}): another node answers within ${BUDGET.linkCut} ms (${at === undefined ? 'not within 10 s' : fmt(at - faultAt)})`);
    await waitForSettled(cluster);
    await sleep(1000);
  }
  await sleep(AFTER_MS);
  await watch.stop();
  t.comment(`link cut: another node answered after ${takeovers.map(fmt).join(', ')}`);
  verdict(t, watch, firstFault, 'link cut x10');
});
