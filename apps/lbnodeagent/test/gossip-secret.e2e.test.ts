// The gossip Secret against the real API server with two agents gossiping: a rotation
// reaches the running membership without a restart (an agent restarted afterwards, which
// reads only the new key, gossips with one that was never restarted); an invalid or
// deleted Secret keeps the last keys, with one log line, a Warning Event and the metric
// at 0; an agent started with an invalid Secret exits 1 with one line naming it. The
// running agents' /metrics pages are read for the names dashboards and alerts rely on.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { STANDARD_PROCESS_METRICS, metricTypes } from '@purelb/k8s-glue/testing';
import { type DaemonProcess, MEMBERLIST_SECRET, PURELB_NAMESPACE, startAgent, waitFor, withLab } from '@purelb/lab';
import { startCluster, waitForSettled } from './e2e-helpers.ts';

const lab = await withLab(t, { nodes: 2 });
const admin = lab.controlPlane.admin;
const cluster = await startCluster(lab, t);
const secretPath = `/api/v1/namespaces/${PURELB_NAMESPACE}/secrets/${MEMBERLIST_SECRET}`;
/** A Secret data value holding the base64 text of a key. */
const stored = (text: string): string => Buffer.from(text).toString('base64');
const keyA = Buffer.from((await admin.get<{ data: { key: string } }>(secretPath)).data.key, 'base64').toString();
const keyB = randomBytes(32).toString('base64');

/** The log messages of an agent (JSON lines) that contain `fragment`. */
const lines = (p: DaemonProcess, fragment: string): string[] =>
  p
    .tail(2000)
    .split('\n')
    .map((l) => {
      try {
        return (JSON.parse(l) as { msg?: string }).msg ?? l;
      } catch {
        return l;
      }
    })
    .filter((m) => m.includes(fragment));
const agent = (name: string): DaemonProcess => cluster.agents.get(name)!;

async function metric(node: string, name: string): Promise<string | undefined> {
  const n = lab.nodes.find((x) => x.name === node)!;
  const [r] = await lab.probe(n.netns, [`http://127.0.0.1:${agent(node).metricsPort}/metrics`], 2000);
  return new RegExp(`^${name} (\\S+)$`, 'm').exec(r?.body ?? '')?.[1];
}

async function secretEvents(reason: string): Promise<{ message: string; source?: { host?: string } }[]> {
  const list = await admin.get<{ items: { reason: string; message: string; source?: { host?: string } }[] }>(
    `/api/v1/namespaces/${PURELB_NAMESPACE}/events?fieldSelector=involvedObject.name%3D${MEMBERLIST_SECRET}`,
  );
  return list.items.filter((e) => e.reason === reason);
}

t.test('a rotation reaches the running membership without a restart', async (t) => {
  // Gap-free: accept B while sealing with A, then seal with B and drop A.
  await admin.mergePatch(secretPath, { data: { key: stored(keyB), keys: stored(keyA) } });
  for (const n of lab.nodes) await waitFor(`${n.name} to take the new keys`, () => (lines(agent(n.name), 'gossip keys replaced').length >= 1 ? true : undefined), 20_000, 100);
  await admin.mergePatch(secretPath, { data: { key: stored(keyB), keys: null } });
  for (const n of lab.nodes) await waitFor(`${n.name} to drop the old key`, () => (lines(agent(n.name), 'gossip keys replaced').length >= 2 ? true : undefined), 20_000, 100);
  await waitForSettled(cluster);
  t.pass('both agents gossip after the rotation');
  // node-1 restarted knows only B: it can gossip with node-2 only if node-2 switched in place.
  await agent('node-1').stop();
  cluster.agents.set('node-1', await startAgent(lab.controlPlane, lab.nodes[0]!));
  await waitForSettled(cluster);
  t.pass('a restarted agent (key B only) gossips with the agent that was never restarted');
  t.equal(await metric('node-2', 'purelb_gossip_secret_valid'), '1');
});

t.test('/metrics of a running agent: standard process names, build info and the latency histograms', async (t) => {
  const n = lab.nodes.find((x) => x.name === 'node-2')!;
  const [r] = await lab.probe(n.netns, [`http://127.0.0.1:${agent('node-2').metricsPort}/metrics`], 2000);
  const text = r?.body ?? '';
  const types = metricTypes(text);
  const want: (readonly [string, string])[] = [
    ...STANDARD_PROCESS_METRICS,
    ['purelb_lbnodeagent_process_resident_memory_bytes', 'gauge'],
    ['purelb_build_info', 'gauge'],
    ['purelb_k8s_request_duration_seconds', 'histogram'],
    ['purelb_address_takeover_duration_seconds', 'histogram'],
  ];
  for (const [name, type] of want) t.equal(types.get(name), type, `# TYPE ${name} ${type}`);
  t.match(text, /^purelb_build_info\{version="\d+\.\d+\.\d+[^"]*",node_version="v\d+\.\d+\.\d+",component="lbnodeagent"\} 1$/m);
  t.match(text, /^purelb_k8s_request_duration_seconds_count\{verb="GET",code="200"\} [1-9]\d*$/m, 'the LISTs of its caches were timed');
});

t.test('an invalid Secret keeps the last keys, reported once by each agent', async (t) => {
  await admin.mergePatch(secretPath, { data: { key: stored('c2VjcmV0') } });
  const message = `Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET} key "key": decodes to 6 bytes, need 32; the last valid gossip keys stay in use`;
  for (const n of lab.nodes) {
    await waitFor(`${n.name} to report the invalid Secret`, () => (lines(agent(n.name), message).length === 1 ? true : undefined), 20_000, 100);
    await waitFor(`${n.name}'s metric to drop`, async () => ((await metric(n.name, 'purelb_gossip_secret_valid')) === '0' ? true : undefined), 20_000, 200);
  }
  const evs = await waitFor('a Warning on the Secret from each node', async () => {
    const e = await secretEvents('InvalidGossipSecret');
    return new Set(e.map((x) => x.source?.host)).size === 2 ? e : undefined;
  }, 20_000, 200);
  t.ok(evs.every((e) => e.message === message), 'the Event names the Secret, the key and what is wrong');
  // The same problem again: no second line.
  await admin.mergePatch(secretPath, { metadata: { labels: { touched: 'once' } } });
  await new Promise((r) => setTimeout(r, 1500));
  for (const n of lab.nodes) t.equal(lines(agent(n.name), message).length, 1, `${n.name}: logged once`);
  await waitForSettled(cluster);
  t.pass('the agents still gossip with the last valid key');
  for (const n of lab.nodes) t.equal(lines(agent(n.name), '    at ').length, 0, `${n.name}: no stack trace`);
});

t.test('a deleted Secret keeps the last keys too', async (t) => {
  await admin.delete(secretPath);
  for (const n of lab.nodes) await waitFor(`${n.name} to report the deletion`, () => (lines(agent(n.name), 'was deleted; the last valid gossip keys stay in use').length === 1 ? true : undefined), 20_000, 100);
  await waitForSettled(cluster);
  t.pass('the agents still gossip');
  for (const n of lab.nodes) t.ok(agent(n.name).running, `${n.name}: running`);
});

t.test('starting with an unusable Secret: exit 1, one line naming the Secret and the key', async (t) => {
  const start = (): { status: number | null; out: string } => {
    const r = spawnSync(
      process.execPath,
      ['--conditions=@purelb/source', join(import.meta.dirname, '..', 'src', 'main.ts'), `--kubeconfig=${lab.controlPlane.kubeconfigPath}`, `--namespace=${PURELB_NAMESPACE}`, '--node-name=node-x', '--metrics-host=127.0.0.1', '--metrics-port=0'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  const table: [string, Record<string, string> | undefined, string][] = [
    ['missing', undefined, `Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET}: does not exist`],
    ['not base64', { key: stored('not base64!') }, `Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET} key "key": not base64`],
    ['16 bytes', { key: stored(randomBytes(16).toString('base64')) }, `Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET} key "key": decodes to 16 bytes, need 32`],
    ['a bad rotation key', { key: stored(keyB), keys: stored('abc!') }, `Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET} key "keys": not base64`],
    ['no "key"', { other: stored(keyB) }, `Secret ${PURELB_NAMESPACE}/${MEMBERLIST_SECRET}: has no key "key"`],
  ];
  for (const [what, data, message] of table) {
    await admin.delete(secretPath);
    if (data) await admin.create(`/api/v1/namespaces/${PURELB_NAMESPACE}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: MEMBERLIST_SECRET, namespace: PURELB_NAMESPACE }, data });
    const r = start();
    t.equal(r.status, 1, `${what}: exit code 1`);
    const out = r.out.trim().split('\n');
    t.equal(out.length, 1, `${what}: one line (${r.out.slice(0, 300)})`);
    const line = JSON.parse(out[0] ?? '{}') as { level?: string; msg?: string };
    t.equal(line.level, 'error', `${what}: an error line`);
    t.ok(line.msg?.startsWith(message), `${what}: "${line.msg}" starts with "${message}"`);
    t.notMatch(r.out, /\n\s+at /, `${what}: no stack trace`);
  }
});
