// Benchmarks for @purelb/linux-net (npm run bench -- linux-net), as root, in network
// namespaces made and deleted here; addresses from 2001:db8::/32 and 192.0.2.0/24 only.
// Besides the address calls and GARP latency: the batch calls (2,000 addresses withdrawn
// with and without /len) and how long probeAddress takes when nobody and somebody answers.
//
// The 1,000 addresses go on an `ifb` link: like the agent's `dummy` kube-lb0 (which this
// kernel lacks) it has no ARP and joins no multicast groups, so the figure is the cost of
// the calls, not of MLD reports a veth would send for every IPv6 address.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openNetlinkHandle, parseArpFrame, PURELB_ADDRESS_PROTOCOL, type BatchResult } from '../src/index.ts';
import { PacketCapture, TestNetns, assertNetnsPrerequisites, connectVeth } from '../src/testing/index.ts';
import { type BenchSuite, median, nowMs, percentile, repeat } from '../../../bench/lib.ts';

const ADDRESSES = 1000;
const RUNS = 7;
const GARP_SAMPLES = 60;
/** Addresses a batch run adds and withdraws. */
const BATCH = 2000;
const PROBE_SAMPLES = 21;

const v6 = (i: number): string => `2001:db8:100::${(i + 1).toString(16)}/128`;

function withNamespace<T>(fn: (ns: TestNetns) => Promise<T>): Promise<T> {
  const ns = new TestNetns('lnetbench');
  return fn(ns).finally(() => ns.delete());
}

/** One run: our 2,000 operations and iproute2's, on fresh links of the same namespace. */
async function opsRun(dir: string): Promise<{ ours: number; oursSequential: number; ip: number }> {
  return withNamespace(async (ns) => {
    for (const l of ['vip0', 'vip1', 'vip2']) {
      ns.ip('link', 'add', l, 'type', 'ifb');
      ns.ip('link', 'set', l, 'up');
    }
    const h = ns.run(() => openNetlinkHandle());
    try {
      const addrs = Array.from({ length: ADDRESSES }, (_, i) => v6(i));
      const index = (await h.getLink('vip0')).index;
      // As a reconcile applies a diff: every add in flight, then every delete.
      let t0 = nowMs();
      const added = await Promise.all(addrs.map((a) => h.addAddress(index, a, { nodad: true })));
      const deleted = await Promise.all(addrs.map((a) => h.deleteAddress(index, a)));
      const ours = nowMs() - t0;
      if (added.filter(Boolean).length !== ADDRESSES || deleted.filter(Boolean).length !== ADDRESSES) throw new Error('not every operation took effect');

      // One call at a time, each awaited: the slowest way a caller can use the handle.
      const index1 = (await h.getLink('vip1')).index;
      t0 = nowMs();
      for (const a of addrs) await h.addAddress(index1, a, { nodad: true });
      for (const a of addrs) await h.deleteAddress(index1, a);
      const oursSequential = nowMs() - t0;

      const batch = join(dir, `batch-${process.pid}.txt`);
      writeFileSync(batch, [...addrs.map((a) => `addr add ${a} dev vip2 nodad`), ...addrs.map((a) => `addr del ${a} dev vip2`)].join('\n') + '\n');
      t0 = nowMs();
      execFileSync('ip', ['-n', ns.name, '-batch', batch], { stdio: 'ignore' });
      const ip = nowMs() - t0;
      return { ours, oursSequential, ip };
    } finally {
      h.close();
    }
  });
}

/** One run of the batch calls on a fresh `ifb` link: 2,000 IPv6 /128 replaced, then withdrawn three ways. */
async function batchRun(): Promise<{ replace: number; del: number; delNoLen: number; delOneByOne: number }> {
  return withNamespace(async (ns) => {
    ns.ip('link', 'add', 'vip0', 'type', 'ifb');
    ns.ip('link', 'set', 'vip0', 'up');
    const h = ns.run(() => openNetlinkHandle());
    try {
      const index = (await h.getLink('vip0')).index;
      const items = Array.from({ length: BATCH }, (_, i) => ({ link: index, address: `2001:db8:300::${(i + 1).toString(16)}/128`, options: { nodad: true, protocol: PURELB_ADDRESS_PROTOCOL } }));
      const check = (rs: BatchResult<unknown>[], what: string): void => {
        if (rs.filter((r) => r.ok && r.value !== false).length !== BATCH) throw new Error(`${what}: not every item took effect`);
      };
      let t0 = nowMs();
      check(await h.replaceAddresses(items), 'replace');
      const replace = nowMs() - t0;
      t0 = nowMs();
      check(await h.deleteAddresses(items.map(({ link, address }) => ({ link, address }))), 'delete');
      const del = nowMs() - t0;
      check(await h.replaceAddresses(items), 'replace again');
      t0 = nowMs();
      check(await h.deleteAddresses(items.map(({ link, address }) => ({ link, address: address.replace('/128', '') }))), 'delete without /len');
      const delNoLen = nowMs() - t0;
      check(await h.replaceAddresses(items), 'replace again');
      t0 = nowMs();
      for (const { link, address } of items) if (!(await h.deleteAddress(link, address))) throw new Error(`${address} was not deleted`);
      const delOneByOne = nowMs() - t0;
      return { replace, del, delNoLen, delOneByOne };
    } finally {
      h.close();
    }
  });
}

/** Probe durations over a veth: nobody holds the address (the whole window) and the peer holds it (the first answer). */
async function probeDurations(): Promise<{ silent4: number[]; answered4: number[]; silent6: number[]; answered6: number[] }> {
  const node = new TestNetns('lnetbench');
  const peer = new TestNetns('lnetbench');
  try {
    connectVeth(node, 'lan0', peer, 'peer0');
    peer.ip('addr', 'add', '192.0.2.10/24', 'dev', 'peer0');
    peer.ip('addr', 'add', '2001:db8:400::10/64', 'dev', 'peer0', 'nodad');
    const h = node.run(() => openNetlinkHandle());
    const out = { silent4: [] as number[], answered4: [] as number[], silent6: [] as number[], answered6: [] as number[] };
    const time = async (address: string, conflict: boolean, into: number[]): Promise<void> => {
      const t0 = nowMs();
      const r = await h.probeAddress('lan0', address);
      into.push(nowMs() - t0);
      if (r.conflict !== conflict) throw new Error(`probe of ${address}: expected conflict ${conflict}, got ${JSON.stringify(r)}`);
    };
    try {
      for (let i = 0; i < PROBE_SAMPLES; i++) {
        await time('192.0.2.11', false, out.silent4);
        await time('192.0.2.10', true, out.answered4);
        await time('2001:db8:400::11', false, out.silent6);
        await time('2001:db8:400::10', true, out.answered6);
      }
    } finally {
      h.close();
    }
    return out;
  } finally {
    node.delete();
    peer.delete();
  }
}

/** Milliseconds from the add call to the first GARP arriving in the peer namespace, per sample. */
async function garpLatencies(): Promise<number[]> {
  const node = new TestNetns('lnetbench');
  const peer = new TestNetns('lnetbench');
  try {
    connectVeth(node, 'lan0', peer, 'peer0');
    const peerIndex = peer.linkIndex('peer0');
    const capture = peer.run(() => new PacketCapture(peerIndex));
    const h = node.run(() => openNetlinkHandle());
    const out: number[] = [];
    try {
      for (let i = 0; i < GARP_SAMPLES; i++) {
        const last = 1 + (i % 250);
        const address = `192.0.2.${last}`;
        const wallStart = performance.timeOrigin + performance.now();
        await h.addAddress('lan0', `${address}/24`);
        await h.announce('lan0', address, { count: 1 });
        const seen = await capture.waitFor((f) => {
          const arp = parseArpFrame(f.frame);
          return arp && arp.senderIp[3] === last && arp.senderIp[0] === 192 ? f.receivedAtMs : undefined;
        }, 2000);
        if (seen === undefined) throw new Error(`no GARP for ${address} within 2 s`);
        out.push(seen - wallStart);
        await h.deleteAddress('lan0', `${address}/24`);
      }
    } finally {
      h.close();
      await capture.close();
    }
    return out;
  } finally {
    node.delete();
    peer.delete();
  }
}

const suite: BenchSuite = {
  suite: 'linux-net',
  targets: {
    addr_ops_per_second: ['>=', 5000],
    vs_ip_batch_ratio: ['<=', 1.0],
    garp_after_add_p95_ms: ['<=', 5],
  },
  async run() {
    assertNetnsPrerequisites();
    const dir = mkdtempSync(join(tmpdir(), 'plb-linux-net-bench-'));
    try {
      const runs = await repeat(RUNS, () => opsRun(dir), 1);
      const ours = runs.map((r) => r.ours);
      const ip = runs.map((r) => r.ip);
      const seq = runs.map((r) => r.oursSequential);
      const ratios = runs.map((r) => r.ours / r.ip);
      const garp = await garpLatencies();
      const batches = await repeat(RUNS, () => batchRun(), 1);
      const probes = await probeDurations();
      const ops = 2 * ADDRESSES;
      const med = (k: keyof (typeof batches)[number]): number => median(batches.map((b) => b[k]));
      return {
        metrics: {
          addr_ops_per_second: ops / (median(ours) / 1000),
          vs_ip_batch_ratio: median(ratios),
          garp_after_add_p95_ms: percentile(garp, 95),
          garp_after_add_p50_ms: median(garp),
          addr_ops_per_second_sequential: ops / (median(seq) / 1000),
          ip_batch_ops_per_second: ops / (median(ip) / 1000),
          batch_replace_2000_ms: med('replace'),
          batch_delete_2000_ms: med('del'),
          batch_delete_without_len_2000_ms: med('delNoLen'),
          delete_one_by_one_2000_ms: med('delOneByOne'),
          probe_silent_ipv4_p50_ms: median(probes.silent4),
          probe_silent_ipv4_p95_ms: percentile(probes.silent4, 95),
          probe_silent_ipv6_p50_ms: median(probes.silent6),
          probe_answered_ipv4_p50_ms: median(probes.answered4),
          probe_answered_ipv6_p50_ms: median(probes.answered6),
        },
        notes: {
          runs: RUNS,
          operations_per_run: ops,
          link_kind: 'ifb (no dummy driver on this kernel)',
          address_family: 'IPv6 /128 nodad (1,000 distinct addresses need more than the IPv4 documentation ranges)',
          garp_samples: GARP_SAMPLES,
          garp_measure: 'wall clock before addAddress to the kernel receive timestamp (SIOCGSTAMP) of the first GARP in the peer namespace over a veth',
          batch: `${BATCH} IPv6 /128 nodad proto 80 on ifb: replaceAddresses, deleteAddresses with /len, without /len (one dump), and deleteAddress one by one awaited; medians of ${RUNS} runs`,
          probe: `probeAddress with defaults (2 probes 30 ms apart, 80 ms wait: 110 ms) over a veth; silent = nobody holds it, answered = the peer's kernel holds it; ${PROBE_SAMPLES} samples each`,
        },
        samples: {
          ours_ms: ours,
          ip_batch_ms: ip,
          sequential_ms: seq,
          garp_ms: garp,
          batch_delete_ms: batches.map((b) => b.del),
          probe_silent_ipv4_ms: probes.silent4,
          probe_answered_ipv4_ms: probes.answered4,
        },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default suite;
