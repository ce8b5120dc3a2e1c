// The ARP check's shell: reads this node's ARP sysctls and kube-proxy's kube-ipvs0, asks
// arpVerdict (arp-safety.ts), and reports a change of verdict once: a log line, an Event
// on the Node, the metric. With the LBNodeAgent's setARPSysctls it first writes the strict
// values. The sysctls are those of the agent's own network namespace (/proc/sys/net
// follows the reader's): the node's, since the agent runs with the host network.
// Re-checked every period (the kernel announces no sysctl change) and soon after a change
// of kube-ipvs0 or of its addresses.
import { readFile, writeFile } from 'node:fs/promises';
import { type Service, PURELB_LOAD_BALANCER_CLASS, ingressIPs } from '@purelb/api';
import type { EventRecorder, Logger } from '@purelb/k8s-glue';
import type { NetlinkHandle } from '@purelb/linux-net';
import { type ArpVerdict, type LanLinkArp, KUBE_IPVS_LINK, STRICT_ARP_ANNOUNCE, STRICT_ARP_IGNORE, arpSysctlWrites, arpVerdict, sysctlKey } from './arp-safety.ts';
import type { AgentMetrics } from './metrics.ts';
import { NodeEventReason, nodeRef } from './node-events.ts';

type ArpSysctl = 'arp_ignore' | 'arp_announce';

/** Reads and writes `net.ipv4.conf.<folder>.<name>`. */
export interface SysctlAccess {
  read(folder: string, name: ArpSysctl): Promise<number>;
  write(folder: string, name: ArpSysctl, value: number): Promise<void>;
}

/** The sysctls of this process's network namespace, through /proc/sys. */
export const procSysctls: SysctlAccess = {
  async read(folder, name) {
    const text = await readFile(`/proc/sys/net/ipv4/conf/${folder}/${name}`, 'utf8');
    const value = Number(text.trim());
    if (!Number.isInteger(value)) throw new Error(`${sysctlKey(folder, name)} reads "${text.trim()}", not a number`);
    return value;
  },
  async write(folder, name, value) {
    await writeFile(`/proc/sys/net/ipv4/conf/${folder}/${name}`, `${value}\n`);
  },
};

/** The IPv4 ingress addresses of the Services of our class: what kube-proxy would copy onto kube-ipvs0. */
export function ourIPv4Addresses(services: readonly Service[]): Set<string> {
  const out = new Set<string>();
  for (const svc of services) {
    const cls = svc.spec.loadBalancerClass;
    if (cls !== undefined && cls !== PURELB_LOAD_BALANCER_CLASS) continue;
    for (const ip of ingressIPs(svc)) if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) out.add(ip);
  }
  return out;
}

export interface ArpCheckDeps {
  readonly node: string;
  readonly netlink: Pick<NetlinkHandle, 'listLinks' | 'listAddresses' | 'subscribe'>;
  /** The node's IPv4 LAN links (where its local addresses go). */
  readonly lanLinks: () => readonly string[];
  /** The IPv4 addresses of our Services. */
  readonly ourAddresses: () => ReadonlySet<string>;
  /** Whether the LBNodeAgent in use sets spec.local.setARPSysctls. */
  readonly setSysctls: () => boolean;
  readonly sysctls?: SysctlAccess | undefined;
  readonly events: Pick<EventRecorder, 'event'>;
  readonly metrics: Pick<AgentMetrics, 'arpConfig'>;
  readonly log: Logger;
  /** How often the sysctls are read again (default 60 s). */
  readonly periodMs?: number | undefined;
  /** Wait after a kube-ipvs0 change before checking, so that a burst is one check (default 250 ms). */
  readonly settleMs?: number | undefined;
  /**
   * While the settings stay unsafe, the Warning Event is recorded again this often (default
   * 30 min): the API server deletes Events after its --event-ttl (1 h by default), and a
   * node that is still unsafe must still show it.
   */
  readonly remindMs?: number | undefined;
  /** The clock for reminders (default Date.now). */
  readonly now?: (() => number) | undefined;
}

/** Default {@link ArpCheckDeps.remindMs}: half the API server's default Event lifetime. */
export const ARP_WARNING_REMIND_MS = 30 * 60_000;

export class ArpCheck {
  readonly #d: ArpCheckDeps;
  readonly #sysctls: SysctlAccess;
  readonly #periodMs: number;
  readonly #settleMs: number;
  /** The verdict last reported (its reasons per link); undefined before the first check. */
  #reported: string | undefined;
  #wasUnsafe = false;
  /** When the Warning Event was last recorded (for reminders). */
  #warnedAt = 0;
  /** Sysctl writes that failed, already reported (by message): each is told once while it lasts. */
  #writeFailures = new Set<string>();
  /** Links whose sysctls could not be read, already told. */
  #unreadable = new Set<string>();
  #ipvsIndex: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #soon: NodeJS.Timeout | undefined;
  #subscription: { close(): void } | undefined;
  /** Checks run one after the other. */
  #chain: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(deps: ArpCheckDeps) {
    this.#d = deps;
    this.#sysctls = deps.sysctls ?? procSysctls;
    this.#periodMs = deps.periodMs ?? 60_000;
    this.#settleMs = deps.settleMs ?? 250;
  }

  /** Checks once, then every period and after kube-ipvs0 changes. */
  async start(): Promise<void> {
    await this.#run();
    this.#timer = setInterval(() => this.requestCheck(0), this.#periodMs);
    this.#timer.unref();
    const sub = this.#d.netlink.subscribe();
    this.#subscription = sub;
    void (async () => {
      for await (const c of sub) {
        if (this.#stopped) break;
        // Learnt here too, so that addresses added right after the link count as its own.
        if (c.kind === 'link-updated' && c.link.name === KUBE_IPVS_LINK) this.#ipvsIndex = c.link.index;
        const ipvs =
          c.kind === 'resync' ||
          ((c.kind === 'link-updated' || c.kind === 'link-removed') && c.link.name === KUBE_IPVS_LINK) ||
          ((c.kind === 'address-added' || c.kind === 'address-removed') && c.address.family === 'IPv4' && c.address.linkIndex === this.#ipvsIndex);
        if (ipvs) this.requestCheck(this.#settleMs);
      }
    })().catch((e: unknown) => this.#d.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'ARP check: kernel change subscription ended'));
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#subscription?.close();
  }

  /** A check within `delayMs`; calls while one is pending or running coalesce into one more. */
  requestCheck(delayMs = this.#settleMs): void {
    if (this.#stopped || this.#soon !== undefined) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.#run();
    }, delayMs);
  }

  /** Runs a check after the one running, if any; resolves with its verdict. */
  check(): Promise<ArpVerdict | undefined> {
    return this.#run();
  }

  #run(): Promise<ArpVerdict | undefined> {
    const p = this.#chain.then(() => (this.#stopped ? undefined : this.#checkOnce())).catch((e: unknown) => {
      this.#d.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'ARP check failed; retrying at the next period');
      return undefined;
    });
    this.#chain = p;
    return p;
  }

  async #readLinks(): Promise<LanLinkArp[]> {
    const out: LanLinkArp[] = [];
    const all = { arp_ignore: await this.#sysctls.read('all', 'arp_ignore'), arp_announce: await this.#sysctls.read('all', 'arp_announce') };
    for (const link of this.#d.lanLinks()) {
      try {
        out.push({
          link,
          arpIgnore: { all: all.arp_ignore, link: await this.#sysctls.read(link, 'arp_ignore') },
          arpAnnounce: { all: all.arp_announce, link: await this.#sysctls.read(link, 'arp_announce') },
        });
        this.#unreadable.delete(link);
      } catch (e) {
        // A link gone between the two reads is checked again next time.
        if (!this.#unreadable.has(link)) this.#d.log.warn({ link, err: e instanceof Error ? e.message : String(e) }, 'ARP check: cannot read the link\'s ARP sysctls');
        this.#unreadable.add(link);
      }
    }
    return out;
  }

  async #checkOnce(): Promise<ArpVerdict> {
    let links = await this.#readLinks();
    if (this.#d.setSysctls()) {
      const writes = arpSysctlWrites(links);
      for (const w of writes) {
        try {
          await this.#sysctls.write(w.folder, w.name, w.to);
          this.#writeFailures.clear();
          this.#d.log.info({ sysctl: w.key, from: w.from, to: w.to }, `set ${w.key}=${w.to} (was ${w.from}): setARPSysctls is on`);
          this.#d.events.event(nodeRef(this.#d.node), 'Normal', NodeEventReason.arpSysctlsSet, `set ${w.key}=${w.to} (was ${w.from}), as the LBNodeAgent's setARPSysctls asks`);
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          const why = err.code === 'EROFS' || err.code === 'EACCES' || err.code === 'EPERM' ? `${err.code}: /proc/sys is not writable in the agent's container (it must run privileged to set sysctls); set it on the node instead` : (err.message ?? String(e));
          const message = `cannot set ${w.key}=${w.to} (is ${w.from}): ${why}`;
          if (!this.#writeFailures.has(message)) {
            this.#writeFailures.add(message);
            this.#d.log.warn({ sysctl: w.key, code: err.code }, message);
            this.#d.events.event(nodeRef(this.#d.node), 'Warning', NodeEventReason.arpSysctlsNotSet, message);
          }
        }
      }
      if (writes.length > 0) links = await this.#readLinks();
    }
    const ipvsLink = (await this.#d.netlink.listLinks()).find((l) => l.name === KUBE_IPVS_LINK);
    this.#ipvsIndex = ipvsLink?.index;
    let ipvs: { ourAddresses: string[] } | undefined;
    if (ipvsLink) {
      const ours = this.#d.ourAddresses();
      const onIpvs = await this.#d.netlink.listAddresses({ link: KUBE_IPVS_LINK, family: 'IPv4' }).catch(() => []);
      ipvs = { ourAddresses: onIpvs.map((a) => a.address).filter((a) => ours.has(a)).sort() };
    }
    const verdict = arpVerdict({ links, ipvs });
    this.#d.metrics.arpConfig(verdict);
    this.#report(verdict);
    return verdict;
  }

  /** Tells a change of verdict once: the problems and what to set, or that they are gone. */
  #report(v: ArpVerdict): void {
    const signature = `${v.problems.map((p) => `${p.reason}@${p.link}`).join(',')}|${v.ipvsHoldsOurs}`;
    const now = (this.#d.now ?? Date.now)();
    const ref = nodeRef(this.#d.node);
    if (signature === this.#reported) {
      // Unchanged: only the Warning again, once its reminder is due (no new log line).
      if (!v.safe && now - this.#warnedAt >= (this.#d.remindMs ?? ARP_WARNING_REMIND_MS)) {
        this.#warnedAt = now;
        this.#d.events.event(ref, 'Warning', NodeEventReason.unsafeArp, this.#warning(v));
      }
      return;
    }
    this.#reported = signature;
    if (v.safe) {
      if (this.#wasUnsafe) {
        this.#d.log.info({}, 'ARP settings are safe for local addresses again');
        this.#d.events.event(ref, 'Normal', NodeEventReason.safeArp, 'the ARP settings are safe for local addresses again');
      }
      this.#wasUnsafe = false;
      return;
    }
    this.#wasUnsafe = true;
    this.#warnedAt = now;
    const fixes = [...new Set(v.problems.map((p) => p.fix))];
    this.#d.log.warn({ reasons: v.problems.map((p) => p.reason), fix: fixes }, `ARP settings unsafe for local addresses: ${this.#warning(v)}`);
    this.#d.events.event(ref, 'Warning', NodeEventReason.unsafeArp, this.#warning(v));
  }

  /** The problems and what to set. */
  #warning(v: ArpVerdict): string {
    const fixes = [...new Set(v.problems.map((p) => p.fix))];
    const ipvs = v.problems.some((p) => p.reason !== 'ArpNoReply');
    const fix = `set ${fixes.join(' and ')}${ipvs ? ` (kube-proxy in IPVS mode: ipvs.strictARP: true in its configuration, or --ipvs-strict-arp, sets net.ipv4.conf.all.arp_ignore=${STRICT_ARP_IGNORE} and arp_announce=${STRICT_ARP_ANNOUNCE}; or setARPSysctls: true in the LBNodeAgent)` : ''}`;
    return `${v.problems.map((p) => p.message).join('; ')}. To fix: ${fix}`;
  }
}
