// Whether a node's ARP settings let it answer for addresses it does not hold: a pure
// function of what the agent read (sysctls, kube-proxy's IPVS link), and the sysctl writes
// that make them strict when the LBNodeAgent asks the agent to (setARPSysctls).
//
// The kernel's rules (Documentation/networking/ip-sysctl.rst, net/ipv4/arp.c):
// - The value in force on a link is the larger of `conf.all.X` and `conf.<link>.X`, for both
//   arp_ignore and arp_announce.
// - arp_ignore 0 answers an ARP request for any address of the host, on whatever link it
//   sits; 1 only for an address on the link the request came in on; 2 as 1, and only to a
//   sender in the target's subnet; 3 only for addresses of scope link or global (every
//   Service address is global: like 0 here); 4-7 are reserved and, like any value above 8,
//   answer as 0 does; 8 answers nothing at all.
// - arp_announce 0 takes the source address of an ARP request from the packet that needs
//   it, whatever link it sits on; 1 avoids it only when it is outside the target's subnet
//   (a local address is inside the LAN subnet: no help); 2 always takes the outgoing
//   link's own address. Values above 2 act as 0.
//
// A local address sits only on the LAN link of the node that won it. kube-proxy in IPVS
// mode copies every Service address (LoadBalancer ones included) onto `kube-ipvs0` on every
// node: with arp_ignore 0 every node then answers ARP for every local address (two or more
// MACs for one address), and with arp_announce below 2 a node that does not hold one can
// still put it as the sender of its own ARP requests, which rewrites its neighbours'
// caches. kube-proxy's `ipvs.strictARP: true` (`--ipvs-strict-arp`) sets
// `all.arp_ignore=1` and `all.arp_announce=2` for that reason. Without kube-ipvs0 the
// defaults (0, 0) are safe for PureLB: no other node has the address at all. IPv6 is not
// concerned: the kernel answers a neighbour solicitation only for an address on the link
// it came in on.

/** kube-proxy's link in IPVS mode: every Service address of the cluster is on it. */
export const KUBE_IPVS_LINK = 'kube-ipvs0';

/** What the recommended values are, and what setARPSysctls writes. */
export const STRICT_ARP_IGNORE = 1;
export const STRICT_ARP_ANNOUNCE = 2;

/** One sysctl as `all` and as one link have it. */
export interface SysctlPair {
  readonly all: number;
  readonly link: number;
}

/** The ARP settings of one IPv4 LAN link (a link that holds local addresses). */
export interface LanLinkArp {
  readonly link: string;
  readonly arpIgnore: SysctlPair;
  readonly arpAnnounce: SysctlPair;
}

/** What the verdict is made from. */
export interface ArpFacts {
  /** The node's IPv4 LAN links (none: the node takes no IPv4 local address, nothing to check). */
  readonly links: readonly LanLinkArp[];
  /** kube-ipvs0: undefined when the node has no such link; else the IPv4 addresses of our Services it holds. */
  readonly ipvs: { readonly ourAddresses: readonly string[] } | undefined;
}

export type ArpProblemReason = 'ArpIgnore' | 'ArpAnnounce' | 'ArpNoReply';
/** Every reason, in the order the verdict lists them (the metric's label values). */
export const ARP_PROBLEM_REASONS: readonly ArpProblemReason[] = ['ArpIgnore', 'ArpAnnounce', 'ArpNoReply'];

export interface ArpProblem {
  readonly reason: ArpProblemReason;
  readonly link: string;
  /** One sentence: what is wrong, with the values read. */
  readonly message: string;
  /** The sysctl line that fixes it. */
  readonly fix: string;
}

export interface ArpVerdict {
  readonly safe: boolean;
  readonly problems: readonly ArpProblem[];
  /** Whether kube-ipvs0 exists and holds addresses of ours (then the fix is kube-proxy's strictARP). */
  readonly ipvsHoldsOurs: boolean;
}

/** The value the kernel uses on a link: the larger of `all` and the link's own. */
export function effectiveValue(p: SysctlPair): number {
  return Math.max(p.all, p.link);
}

/** arp_ignore values that answer only for addresses on the incoming link (1, 2) or not at all (8). */
function answersOnlyOwnLink(v: number): boolean {
  return v === 1 || v === 2 || v === 8;
}

/** `net.ipv4.conf.<link>.<name>` as sysctl(8) spells it (a dot in a link name is written `/`). */
export function sysctlKey(link: string, name: 'arp_ignore' | 'arp_announce'): string {
  return `net.ipv4.conf.${link.replaceAll('.', '/')}.${name}`;
}

const values = (p: SysctlPair, link: string): string => `all=${p.all}, ${link}=${p.link}`;

/**
 * Is this node safe for local addresses: could it answer ARP for an address it does not
 * hold (kube-ipvs0 with arp_ignore that answers for any link, or arp_announce below 2), or
 * answer no ARP at all on a LAN link (arp_ignore 8: the local addresses it wins are
 * unreachable)? Problems are listed per LAN link in the order of ARP_PROBLEM_REASONS.
 */
export function arpVerdict(facts: ArpFacts): ArpVerdict {
  const problems: ArpProblem[] = [];
  const ipvs = facts.ipvs;
  const holding = ipvs && ipvs.ourAddresses.length > 0 ? `holds ${ipvs.ourAddresses.length} address(es) of PureLB's Services (${ipvs.ourAddresses.slice(0, 3).join(', ')}${ipvs.ourAddresses.length > 3 ? ', ...' : ''})` : 'is there (kube-proxy in IPVS mode puts every LoadBalancer address on it)';
  for (const l of facts.links) {
    const ignore = effectiveValue(l.arpIgnore);
    const announce = effectiveValue(l.arpAnnounce);
    if (ipvs && !answersOnlyOwnLink(ignore)) {
      problems.push({
        reason: 'ArpIgnore',
        link: l.link,
        message: `${KUBE_IPVS_LINK} ${holding} and arp_ignore on ${l.link} is ${ignore} (${values(l.arpIgnore, l.link)}): this node answers ARP on ${l.link} for addresses another node holds`,
        fix: `${sysctlKey('all', 'arp_ignore')}=${STRICT_ARP_IGNORE}`,
      });
    }
    if (ipvs && announce !== STRICT_ARP_ANNOUNCE) {
      problems.push({
        reason: 'ArpAnnounce',
        link: l.link,
        message: `${KUBE_IPVS_LINK} ${holding} and arp_announce on ${l.link} is ${announce} (${values(l.arpAnnounce, l.link)}): this node may send ARP requests on ${l.link} naming addresses another node holds`,
        fix: `${sysctlKey('all', 'arp_announce')}=${STRICT_ARP_ANNOUNCE}`,
      });
    }
    if (ignore === 8) {
      problems.push({
        reason: 'ArpNoReply',
        link: l.link,
        message: `arp_ignore on ${l.link} is 8 (${values(l.arpIgnore, l.link)}): this node answers no ARP request there, so a local address it wins does not answer`,
        fix: l.arpIgnore.link === 8 ? `${sysctlKey(l.link, 'arp_ignore')}=${STRICT_ARP_IGNORE}` : `${sysctlKey('all', 'arp_ignore')}=${STRICT_ARP_IGNORE}`,
      });
    }
  }
  problems.sort((a, b) => ARP_PROBLEM_REASONS.indexOf(a.reason) - ARP_PROBLEM_REASONS.indexOf(b.reason));
  return { safe: problems.length === 0, problems, ipvsHoldsOurs: (ipvs?.ourAddresses.length ?? 0) > 0 };
}

/** One sysctl write: `key` as sysctl(8) names it, the link folder it lives in, and the values. */
export interface SysctlWrite {
  readonly key: string;
  /** The folder under /proc/sys/net/ipv4/conf (`all` or the link's name). */
  readonly folder: string;
  readonly name: 'arp_ignore' | 'arp_announce';
  readonly from: number;
  readonly to: number;
}

/**
 * The writes that make every LAN link strict (arp_ignore 1 or 2, arp_announce 2), the
 * fewest that do it: nothing when a link already is; otherwise `all` (which raises every
 * link, links added later included, as kube-proxy's strictARP does), and a link's own
 * value only when it is one `all` cannot override (above the strict one: arp_ignore 3-8 or
 * more, arp_announce above 2). A value already in force is never lowered except those.
 */
export function arpSysctlWrites(links: readonly LanLinkArp[]): SysctlWrite[] {
  const writes: SysctlWrite[] = [];
  let all = { arp_ignore: undefined as number | undefined, arp_announce: undefined as number | undefined };
  const allNow = (l: LanLinkArp, name: 'arp_ignore' | 'arp_announce'): number => all[name] ?? (name === 'arp_ignore' ? l.arpIgnore.all : l.arpAnnounce.all);
  for (const l of links) {
    for (const name of ['arp_ignore', 'arp_announce'] as const) {
      const pair = name === 'arp_ignore' ? l.arpIgnore : l.arpAnnounce;
      const ok = name === 'arp_ignore' ? (v: number): boolean => v === 1 || v === 2 : (v: number): boolean => v === STRICT_ARP_ANNOUNCE;
      const strict = name === 'arp_ignore' ? STRICT_ARP_IGNORE : STRICT_ARP_ANNOUNCE;
      const maxStrict = name === 'arp_ignore' ? 2 : STRICT_ARP_ANNOUNCE;
      let allV = allNow(l, name);
      let linkV = pair.link;
      if (ok(Math.max(allV, linkV))) continue;
      if (linkV > maxStrict) {
        writes.push({ key: sysctlKey(l.link, name), folder: l.link, name, from: linkV, to: strict });
        linkV = strict;
      }
      if (!ok(Math.max(allV, linkV))) {
        if (!writes.some((w) => w.folder === 'all' && w.name === name)) writes.push({ key: sysctlKey('all', name), folder: 'all', name, from: allV, to: strict });
        allV = strict;
        all = { ...all, [name]: strict };
      }
    }
  }
  return writes;
}
