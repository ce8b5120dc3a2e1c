// npm run chaos -- --minutes N [--faults K] [--nodes 3..5] [--services 50] [--seed S] ...
// A soak of the safety promise: the lab with the allocator and one agent per node, many
// Services, and faults at random (seeded) times, one at a time, each held for a random
// while, undone, and followed by a settle and a random gap, while the client samples who
// answers ARP for a set of the Services' IPv4 addresses every 20 ms. Writes
// bench-results/chaos.json and exits 1 if any sample had two MACs answering.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, machine, machineLoad, vmRssMb } from '../../bench/lib.ts';
import { type ArpWatchSet, type DaemonProcess, type Lab, type LabNode, PURELB_NAMESPACE, installPureLB, startAgent, startAllocator, startLab, waitFor } from '../src/index.ts';
import { FAULT_KINDS, type FaultKind, type FaultRecord, chaosFigures, seededRandom } from './report.ts';

const HELP = `usage: npm run chaos -- [options]
  --minutes N      run the faults for N minutes (default 5)
  --faults K       stop after K faults (default: no bound but --minutes)
  --nodes N        node namespaces, 3 to 5 (default 3)
  --services N     LoadBalancer Services (IPv4, local addresses), 1 to 120 (default 50)
  --watch N        how many of their addresses the client samples (default 12)
  --interval MS    time between ARP requests per address (default 20)
  --seed S         seed of the fault schedule (default: random, printed)
  --kinds LIST     fault kinds, comma-separated (default all: ${FAULT_KINDS.join(',')})
  --out FILE       where to write the report (default bench-results/chaos.json)
  --shipped        run the daemons as their images do (bundles from tools/bundle.ts)
  --help           this text
Exit status: 0 no duplicate sample, 1 a duplicate sample was seen, 2 bad usage, 3 the
lab or PureLB could not be brought up.`;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    faults: { type: 'string' },
    nodes: { type: 'string', default: '3' },
    services: { type: 'string', default: '50' },
    watch: { type: 'string', default: '12' },
    interval: { type: 'string', default: '20' },
    seed: { type: 'string' },
    kinds: { type: 'string', default: FAULT_KINDS.join(',') },
    out: { type: 'string', default: join(import.meta.dirname, '..', '..', 'bench-results', 'chaos.json') },
    shipped: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const usage = (msg: string): never => {
  console.error(`chaos: ${msg}\n${HELP}`);
  process.exit(2);
};
const minutes = Number(values.minutes);
const maxFaults = values.faults === undefined ? Number.POSITIVE_INFINITY : Number(values.faults);
const nodeCount = Number(values.nodes);
const serviceCount = Number(values.services);
const watchCount = Number(values.watch);
const intervalMs = Number(values.interval);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const kinds = values.kinds.split(',').map((k) => k.trim()).filter(Boolean) as FaultKind[];
if (!(minutes > 0 && minutes <= 24 * 60)) usage('--minutes must be in (0, 1440]');
if (!(maxFaults >= 1)) usage('--faults must be at least 1');
if (!(Number.isInteger(nodeCount) && nodeCount >= 3 && nodeCount <= 5)) usage('--nodes must be 3, 4 or 5');
if (!(Number.isInteger(serviceCount) && serviceCount >= 1 && serviceCount <= 120)) usage('--services must be in 1-120');
if (!(Number.isInteger(watchCount) && watchCount >= 1)) usage('--watch must be at least 1');
if (!(intervalMs >= 5 && intervalMs <= 1000)) usage('--interval must be in 5-1000 ms');
if (!Number.isInteger(seed)) usage('--seed must be an integer');
for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) usage(`unknown fault kind ${k}`);
if (kinds.length === 0) usage('--kinds names no fault');

/** 120 local addresses off the nodes (.11-.15), the client (.100) and the ARP sampler's tags (.101-.116). */
const CHAOS_POOL = '192.0.2.120-192.0.2.239';
const SETTLE_TIMEOUT_MS = 30_000;

const say = (line: string): void => console.log(`[chaos] ${line}`);
const random = seededRandom(seed);
const scale = (x: number, lo: number, hi: number): number => Math.round(lo + x * (hi - lo));
const choose = <T>(x: number, list: readonly T[]): T => list[Math.min(list.length - 1, Math.floor(x * list.length))]!;

/**
 * Everything random about one fault, drawn up front with the same number of draws every
 * time, so a seed gives the same kinds, hold times, gaps and options whatever happens in
 * between (the victim is the node answering for the drawn address at that moment).
 */
interface FaultDraw {
  readonly kind: FaultKind;
  readonly address: number;
  /** The node to hit if nobody (or more than one node) answers for the address. */
  readonly fallback: number;
  readonly hold: number;
  readonly gap: number;
  /** Link side, API mode, or the size of a partition's minority. */
  readonly option: number;
  /** Order of the other nodes, for a partition's minority. */
  readonly order: readonly number[];
}
function drawFault(): FaultDraw {
  return {
    kind: choose(random(), kinds),
    address: random(),
    fallback: random(),
    hold: random(),
    gap: random(),
    option: random(),
    order: Array.from({ length: 5 }, () => random()),
  };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

say(`seed ${seed} (repeat with --seed ${seed}); ${nodeCount} nodes, ${serviceCount} Services, ${Number.isFinite(maxFaults) ? `${maxFaults} faults or ` : ''}${minutes} min; kinds ${kinds.join(',')}`);
const machineAtStart = machineLoad();

let lab: Lab | undefined;
let allocator: DaemonProcess | undefined;
const agents = new Map<string, DaemonProcess>();
let watchSet: ArpWatchSet | undefined;
let aborted = false;
let tearingDown: Promise<void> | undefined;
const teardown = (): Promise<void> => {
  tearingDown ??= (async () => {
    await watchSet?.stop();
    for (const a of agents.values()) await a.stop(3000);
    await allocator?.stop(3000);
    await lab?.stop();
  })();
  return tearingDown;
};
process.on('SIGINT', () => {
  if (aborted) process.exit(130);
  aborted = true;
  say('interrupted: finishing the current fault, then writing the report');
});
process.on('SIGTERM', () => {
  aborted = true;
});

interface Svc {
  metadata: { name: string };
  status?: { loadBalancer?: { ingress?: { ip: string }[] } };
}

let watched: string[] = [];
const nodeOfMac = new Map<string, string>();
try {
  if (values.shipped) {
    say('bundling the allocator and the agent as their images do');
    const { run } = await import('../src/exec.ts');
    await run(process.execPath, [join(import.meta.dirname, '..', '..', 'tools', 'bundle.ts'), 'allocator', 'lbnodeagent'], { timeoutMs: 300_000 });
  }
  lab = await startLab({ nodes: nodeCount, onProgress: say });
  const admin = lab.controlPlane.admin;
  await installPureLB(admin, { sendgarp: true });
  await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/default`, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: 'default', namespace: PURELB_NAMESPACE },
    spec: { local: { v4pools: [{ pool: CHAOS_POOL, subnet: '192.0.2.0/24', aggregation: 'default' }] } },
  });
  say('starting the allocator and the agents');
  allocator = await startAllocator(lab.controlPlane, { identity: 'allocator-0', shipped: values.shipped });
  const l = lab;
  await Promise.all(l.nodes.map(async (n) => agents.set(n.name, await startAgent(l.controlPlane, n, { shipped: values.shipped }))));
  for (const [node, mac] of await lab.nodeMacs()) nodeOfMac.set(mac, node);
  say(`creating ${serviceCount} LoadBalancer Services`);
  for (let i = 0; i < serviceCount; i++) await lab.createDemoService(`chaos-${i}`);
  const addresses = await waitFor(
    `${serviceCount} Services to get addresses`,
    async () => {
      const list = await admin.get<{ items: Svc[] }>('/api/v1/namespaces/default/services?labelSelector=');
      const ips = list.items.filter((s) => s.metadata.name.startsWith('chaos-')).map((s) => s.status?.loadBalancer?.ingress?.[0]?.ip).filter((x): x is string => x !== undefined);
      return ips.length === serviceCount ? ips : undefined;
    },
    60_000,
    250,
  );
  // Every k-th address, so the watched ones spread over the pool (and the nodes).
  const step = Math.max(1, Math.floor(addresses.length / watchCount));
  watched = addresses.filter((_, i) => i % step === 0).slice(0, watchCount);
  say(`sampling ${watched.length} addresses every ${intervalMs} ms: ${watched.join(' ')}`);
  watchSet = lab.watchArpAll(watched, { intervalMs });
  await watchSet.ready;
} catch (e) {
  console.error(`chaos: could not bring the lab up: ${e instanceof Error ? e.message : String(e)}`);
  await teardown().catch(() => undefined);
  process.exit(3);
}

const theLab = lab;
const watches = watchSet;

/** The node answering for a watched address in its latest sample, if exactly one does. */
function holderOf(address: string): LabNode | undefined {
  const s = watches.get(address).last();
  if (!s || s.macs.length !== 1) return undefined;
  const name = nodeOfMac.get(s.macs[0]!);
  return theLab.nodes.find((n) => n.name === name);
}

/** How many members an agent's /metrics says it sees (undefined: no such metric, or unreachable). */
async function membersSeen(node: LabNode, agent: DaemonProcess): Promise<number | undefined> {
  const [r] = await theLab.probe(node.netns, [`http://127.0.0.1:${agent.metricsPort}/metrics`], 1000);
  const m = r?.ok ? /^purelb_memberlist_members (\d+)/m.exec(r.body) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * Settled: every agent runs, every watched address's latest sample has exactly one MAC,
 * and every agent that exports purelb_memberlist_members sees every node.
 */
async function waitSettled(timeoutMs: number): Promise<number | undefined> {
  return waitFor(
    'the cluster to settle',
    async () => {
      for (const [name, a] of agents) {
        if (!a.running) {
          say(`agent ${name} exited by itself; restarting it:\n${a.tail(10)}`);
          agents.set(name, await startAgent(theLab.controlPlane, theLab.nodes.find((n) => n.name === name)!, { shipped: values.shipped }));
          return undefined;
        }
      }
      if (!watched.every((a) => watches.get(a).last()?.macs.length === 1)) return undefined;
      for (const n of theLab.nodes) {
        const seen = await membersSeen(n, agents.get(n.name)!);
        if (seen !== undefined && seen !== theLab.nodes.length) return undefined;
      }
      return Date.now();
    },
    timeoutMs,
    250,
  ).catch(() => undefined);
}

/** Injects one fault; returns what it hit and how to undo it. */
async function inject(kind: FaultKind, victim: LabNode, d: FaultDraw): Promise<{ nodes: string[]; detail: string; holdMs: number; undo: () => Promise<void> }> {
  const agent = agents.get(victim.name)!;
  switch (kind) {
    case 'kill': {
      agent.child.kill('SIGKILL');
      await agent.exited();
      return {
        nodes: [victim.name],
        detail: 'agent SIGKILLed, restarted',
        holdMs: scale(d.hold, 500, 3000),
        undo: async () => {
          agents.set(victim.name, await startAgent(theLab.controlPlane, victim, { shipped: values.shipped }));
        },
      };
    }
    case 'freeze': {
      theLab.freeze(agent);
      const undo = (): Promise<void> => {
        theLab.thaw(agent);
        return Promise.resolve();
      };
      return { nodes: [victim.name], detail: 'agent SIGSTOPped, SIGCONTed', holdMs: scale(d.hold, 1000, 6000), undo };
    }
    case 'gossip': {
      await theLab.setGossipBlocked(victim, true);
      return { nodes: [victim.name], detail: 'gossip blocked', holdMs: scale(d.hold, 2000, 10_000), undo: () => theLab.setGossipBlocked(victim, false) };
    }
    case 'partition':
    case 'partition_api': {
      // The victim's side: it alone, or with others, always a minority.
      const others = theLab.nodes.filter((n) => n !== victim);
      const extra = scale(d.option, 0, Math.floor((theLab.nodes.length - 1) / 2) - 1);
      const side = [victim, ...others.map((n, i) => ({ n, key: d.order[i]! })).sort((a, b) => a.key - b.key).slice(0, extra).map((x) => x.n)];
      const rest = theLab.nodes.filter((n) => !side.includes(n));
      const p = await theLab.partition([side, rest], kind === 'partition_api' ? { api: rest } : {});
      return { nodes: side.map((n) => n.name), detail: kind === 'partition_api' ? 'minority cut from the majority and the API' : 'minority cut from the majority, API kept', holdMs: scale(d.hold, 2000, 10_000), undo: () => p.heal() };
    }
    case 'link': {
      const at = choose(d.option, ['node', 'bridge'] as const);
      await theLab.setLinkUp(victim, false, { at });
      return { nodes: [victim.name], detail: `link down at the ${at}`, holdMs: scale(d.hold, 300, 3000), undo: () => theLab.setLinkUp(victim, true, { at }) };
    }
    case 'api': {
      const mode = choose(d.option, ['refuse', 'drop'] as const);
      await theLab.setApiReachable(victim, false, { mode });
      return { nodes: [victim.name], detail: `API path ${mode}`, holdMs: scale(d.hold, 2000, 10_000), undo: () => theLab.setApiReachable(victim, true) };
    }
  }
}

process.on('uncaughtException', (e) => {
  console.error(`chaos: ${e.stack ?? e.message}`);
  void teardown().finally(() => process.exit(3));
});
process.on('unhandledRejection', (e) => {
  console.error(`chaos: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  void teardown().finally(() => process.exit(3));
});

const startedAt = Date.now();
const samplerStartedAt = startedAt;
const faults: FaultRecord[] = [];
const settledAt = await waitSettled(60_000);
say(settledAt ? `settled after ${((settledAt - startedAt) / 1000).toFixed(1)} s; injecting faults` : 'did not settle within 60 s; injecting faults anyway');
const faultsStart = Date.now();
const deadline = faultsStart + minutes * 60_000;
for (let i = 1; i <= maxFaults && i <= 100_000 && Date.now() < deadline && !aborted; i++) {
  const draw = drawFault();
  const kind = draw.kind;
  const victim = holderOf(choose(draw.address, watched)) ?? choose(draw.fallback, theLab.nodes);
  const atMs = Date.now();
  let record: Omit<FaultRecord, 'undoneAtMs' | 'settledAtMs'>;
  try {
    const f = await inject(kind, victim, draw);
    record = { index: i, kind, nodes: f.nodes, detail: `${f.detail}, held ${(f.holdMs / 1000).toFixed(1)} s`, atMs };
    say(`+${((atMs - faultsStart) / 1000).toFixed(1)} s #${i} ${kind} ${f.nodes.join('+')} (${record.detail})`);
    await sleep(f.holdMs);
    await f.undo();
  } catch (e) {
    say(`#${i} ${kind} ${victim.name} failed: ${e instanceof Error ? e.message : String(e)}`);
    await theLab.heal().catch(() => undefined);
    record = { index: i, kind, nodes: [victim.name], detail: `failed: ${e instanceof Error ? e.message : String(e)}`, atMs };
  }
  const undoneAtMs = Date.now();
  const settled = await waitSettled(SETTLE_TIMEOUT_MS);
  faults.push({ ...record, undoneAtMs, settledAtMs: settled });
  const dup = watched.reduce((n, a) => n + watches.get(a).duplicateSampleCount(), 0);
  say(`   undone; ${settled ? `settled in ${((settled - undoneAtMs) / 1000).toFixed(1)} s` : `not settled after ${SETTLE_TIMEOUT_MS / 1000} s`}; duplicate samples so far: ${dup}`);
  if (i < maxFaults && Date.now() < deadline && !aborted) await sleep(scale(draw.gap, 1000, 4000));
}
const endedAt = Date.now();
let samplerUse = { cpuPercent: 0, rssMb: 0 };
try {
  samplerUse = { cpuPercent: (cpuSeconds(watches.pid!) / ((endedAt - samplerStartedAt) / 1000)) * 100, rssMb: vmRssMb(watches.pid!) };
} catch {
  // the sampler is gone: reported as 0
}
await watches.stop();

const figures = chaosFigures(
  faults,
  watched.map((a) => {
    const w = watches.get(a);
    const s = w.summary();
    // Unanswered runs from the first settle on (before it, the agents were still taking their addresses).
    return { address: a, samples: s.samples, duplicateSamples: s.duplicateSamples, duplicates: w.duplicateSamples(), unavailability: s.unavailability.filter((u) => u.fromMs >= (settledAt ?? faultsStart)), maxGapMs: s.maxGapMs };
  }),
  faultsStart,
  endedAt,
  (mac) => nodeOfMac.get(mac) ?? mac,
);
const metrics: Record<string, number> = {
  ...figures.metrics,
  sampler_requests: watches.counters.sent,
  sampler_skipped_requests: watches.counters.skipped,
  sampler_stray_answers: watches.counters.strays,
  sampler_cpu_percent: Math.round(samplerUse.cpuPercent * 10) / 10,
  sampler_rss_mb: Math.round(samplerUse.rssMb),
};
const report = {
  suite: 'chaos',
  metrics,
  env: {
    ...machine(),
    machine_at_start: machineAtStart,
    machine_at_end: machineLoad(),
    seed,
    repeat: `npm run chaos -- --seed ${seed} --nodes ${nodeCount} --services ${serviceCount} --watch ${watchCount} --interval ${intervalMs} --minutes ${minutes}${Number.isFinite(maxFaults) ? ` --faults ${maxFaults}` : ''} --kinds ${kinds.join(',')}`,
    nodes: nodeCount,
    services: serviceCount,
    watched: watched.join(' '),
    interval_ms: intervalMs,
    agent_command: values.shipped ? 'bundles with the images\' Node flags' : 'TypeScript sources (node --conditions=@purelb/source)',
    timeline: figures.timeline.join('; '),
    duplicates: figures.duplicateLines.join('; ') || 'none',
    method:
      'one fault at a time on the node answering for a random watched address (or a random node), held for a random time, undone; then wait (at most 30 s) until every watched address answers from exactly one MAC and every agent reports every member in purelb_memberlist_members, then a random gap of 1-4 s. The client sends an ARP who-has per watched address every interval from one sampler process; each answer is matched to its request (tagged sender address), and a sample with two MACs is a duplicate. Unavailability: runs of unanswered samples, attributed to the fault in whose window (injection to the next injection) they began; none: before the first fault.',
  },
};
mkdirSync(dirname(resolve(values.out)), { recursive: true });
writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
await teardown();

console.log(figures.timeline.map((l) => `  ${l}`).join('\n'));
console.table(Object.entries(metrics).filter(([k, v]) => v !== 0 || k.startsWith('faults_') || k === 'duplicate_samples').map(([metric, value]) => ({ metric, value })));
say(`report: ${values.out}`);
const duplicates = metrics.duplicate_samples ?? 0;
if (duplicates > 0) {
  say(`FAILED: ${duplicates} samples had two MACs answering one request:\n  ${figures.duplicateLines.join('\n  ')}`);
  process.exit(1);
}
say(`no sample had two MACs answering (${metrics.samples ?? 0} samples, ${faults.length} faults)`);
process.exit(aborted ? 130 : 0);
