// Helpers for the agent's end-to-end suites. Not a test file.
import { type DaemonProcess, type Lab, PURELB_NAMESPACE, installPureLB, startAgent, startAllocator, waitFor } from '@purelb/lab';

export interface Cluster {
  readonly lab: Lab;
  readonly allocator: DaemonProcess;
  readonly agents: Map<string, DaemonProcess>;
}

/**
 * PureLB on a lab: CRDs, defaults (GARP on), the allocator and one agent per node; with
 * `shipped`, the daemons run as their images do (bundles built beforehand).
 */
export async function startCluster(lab: Lab, t: { teardown(fn: () => unknown): void }, opts: { shipped?: boolean; agentArgs?: readonly string[] } = {}): Promise<Cluster> {
  await installPureLB(lab.controlPlane.admin, { sendgarp: true });
  await lab.controlPlane.admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/virtual`, {
    apiVersion: 'purelb.io/v1',
    kind: 'ServiceGroup',
    metadata: { name: 'virtual', namespace: PURELB_NAMESPACE },
    spec: { local: { v4pools: [{ pool: '203.0.113.0/28', subnet: '203.0.113.0/24', aggregation: '/32' }], v6pools: [{ pool: '2001:db8:1::/124', subnet: '2001:db8:1::/64', aggregation: '/128' }] } },
  });
  const shipped = opts.shipped ?? false;
  const allocator = await startAllocator(lab.controlPlane, { identity: 'allocator', shipped });
  const agents = new Map<string, DaemonProcess>();
  t.teardown(async () => {
    for (const a of agents.values()) await a.stop(3000);
    await allocator.stop();
  });
  await Promise.all(lab.nodes.map(async (n) => agents.set(n.name, await startAgent(lab.controlPlane, n, { shipped, ...(opts.agentArgs ? { args: opts.agentArgs } : {}) }))));
  const cluster = { lab, allocator, agents };
  await waitForSettled(cluster);
  return cluster;
}

/**
 * Waits until every agent's guard is in swim mode with every member, unchanged for
 * `quietMs`: the steady state the assertions are about (startup and healing go through
 * brief handovers).
 */
export async function waitForSettled(c: Cluster, quietMs = 1500, timeoutMs = 60_000): Promise<void> {
  const n = c.lab.nodes.length;
  const lastGuard = (): string => [...c.agents].map(([node, p]) => `${node}: ${p.running ? (p.tail(400).split('\n').filter((l) => l.includes('"guard mode"')).pop() ?? 'no guard mode line yet') : `exited:\n${p.tail(20)}`}`).join('\n');
  await waitFor('every agent to settle in swim mode', () => {
    const now = Date.now();
    for (const p of c.agents.values()) {
      const last = p.tail(400).split('\n').filter((l) => l.includes('"guard mode"')).pop();
      if (!last) return undefined;
      const j = JSON.parse(last) as { time: number; mode: string; reason: string };
      if (j.mode !== 'swim' || !j.reason.includes(`${n} of ${n}`) || now - j.time < quietMs) return undefined;
    }
    return true;
  }, timeoutMs, 100).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; last guard lines:\n${lastGuard()}`);
  });
}

export interface SvcView {
  metadata: { annotations?: Record<string, string> };
  status?: { loadBalancer?: { ingress?: { ip: string }[] } };
}

export async function addressesOf(lab: Lab, name: string, count: number, ns = 'default'): Promise<string[]> {
  return waitFor(`${ns}/${name} to get ${count} address(es)`, async () => {
    const s = await lab.controlPlane.admin.get<SvcView>(`/api/v1/namespaces/${ns}/services/${name}`);
    const ips = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
    return ips.length === count ? ips : undefined;
  }, 15_000, 25);
}

export function annotations(lab: Lab, name: string, ns = 'default'): Promise<Record<string, string>> {
  return lab.controlPlane.admin.get<SvcView>(`/api/v1/namespaces/${ns}/services/${name}`).then((s) => s.metadata.annotations ?? {});
}

/** Waits until the holders of an address are exactly `want` (node names, sorted). */
export async function waitForHolders(lab: Lab, address: string, want: (holders: string[]) => boolean, what: string, timeoutMs = 10_000): Promise<{ node: string; link: string; prefixLength: number }[]> {
  return waitFor(`${address}: ${what}`, async () => {
    const h = await lab.holders(address);
    return want(h.map((x) => x.node).sort()) ? h : undefined;
  }, timeoutMs, 20);
}

export function url(address: string): string {
  return address.includes(':') ? `http://[${address}]/` : `http://${address}/`;
}

/** Asks the address over HTTP from the client until it answers; returns the answering node. */
export async function answeredBy(lab: Lab, address: string, timeoutMs = 10_000): Promise<string> {
  return waitFor(`${address} to answer from the client`, async () => {
    const [r] = await lab.probe(lab.network.clientNetns, [url(address)], 500);
    return r?.ok ? r.body : undefined;
  }, timeoutMs, 20);
}
