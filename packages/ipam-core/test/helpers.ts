// Test helpers: not a test file (tap includes *.test.ts only).
import type { Test } from 'tap';
import { type AllocateRequest, type AdoptRequest, type Allocation, type Exclusion, type GroupSpec, Ipam, IpamError, type ServicePort, formatAddress, parseGroup, parseAddress, subnetReserved } from '../src/index.ts';
/** Runs fn and returns what it threw (undefined if it returned). */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** What the test knows about each holder, to check the sharing rules from outside. */
export interface HolderInfo {
  key: string | undefined;
  ports: readonly ServicePort[];
}

/** Everything observable about an Ipam, as plain comparable data. */
export function snapshot(ipam: Ipam): unknown {
  const allocations = [...ipam.allocations()].sort(([a], [b]) => (a < b ? -1 : 1));
  const stats = ipam.groupNames().map((g) => {
    const s = ipam.stats(g);
    return [g, String(s.IPv4.size), String(s.IPv4.inUse), String(s.IPv4.excluded), String(s.IPv6.size), String(s.IPv6.inUse), String(s.IPv6.excluded)];
  });
  return { allocations, stats, orphans: ipam.orphans(), heldExclusions: ipam.heldExclusions() };
}

/**
 * The invariant: one address per family per Service; an address held by several Services
 * only under one non-empty sharing key with disjoint ports; stats equal a recount (the
 * excluded count over the candidates: the exclusions given and every pool's subnet
 * reserved addresses, whichever `exclusionOf` names).
 * Returns a description of the first violation, or undefined.
 */
export function violation(ipam: Ipam, groups: readonly GroupSpec[], holders: ReadonlyMap<string, HolderInfo>, exclusions: readonly Exclusion[] = []): string | undefined {
  const byAddress = new Map<string, string[]>();
  for (const [service, a] of ipam.allocations()) {
    const families = a.addresses.map((x) => parseAddress(x)?.family);
    if (new Set(families).size !== families.length) return `${service} holds two addresses of one family: ${a.addresses.join(',')}`;
    for (const x of a.addresses) byAddress.set(x, [...(byAddress.get(x) ?? []), service]);
  }
  for (const [address, services] of byAddress) {
    if (services.length < 2) continue;
    const infos = services.map((s) => holders.get(s));
    const key = infos[0]?.key;
    if (!key || infos.some((i) => i?.key !== key)) return `${address} is held by ${services.join(',')} without one common sharing key`;
    const seen = new Set<string>();
    for (const i of infos) {
      for (const p of i!.ports) {
        const id = `${p.protocol}/${p.port}`;
        if (seen.has(id)) return `${address}: port ${id} is used twice among ${services.join(',')}`;
        seen.add(id);
      }
    }
  }
  for (const spec of groups) {
    const g = parseGroup(spec);
    const s = ipam.stats(g.name);
    for (const f of ['IPv4', 'IPv6'] as const) {
      let size = 0n;
      for (const p of g.pools[f]) size += p.last - p.first + 1n;
      let inUse = 0n;
      for (const x of byAddress.keys()) {
        const a = parseAddress(x)!;
        if (a.family === f && g.pools[f].some((p) => a.value >= p.first && a.value <= p.last)) inUse++;
      }
      const candidates = new Set<string>();
      for (const e of exclusions) {
        const a = parseAddress(e.address);
        if (a?.family === f) candidates.add(formatAddress(f, a.value));
      }
      for (const p of g.pools[f]) for (const v of subnetReserved(p.subnet)) candidates.add(formatAddress(f, v));
      let excluded = 0n;
      for (const x of candidates) {
        const v = parseAddress(x)!.value;
        if (g.pools[f].some((p) => v >= p.first && v <= p.last) && !byAddress.has(x) && ipam.exclusionOf(x) !== undefined) excluded++;
      }
      if (s[f].size !== size || s[f].inUse !== inUse || s[f].excluded !== excluded) {
        return `stats(${g.name}).${f} = ${s[f].size}/${s[f].inUse}/${s[f].excluded}, recount ${size}/${inUse}/${excluded}`;
      }
    }
  }
  return undefined;
}

/** One step of a stateful table test. */
export type Step =
  | { do: 'setGroups'; groups: GroupSpec[]; orphans?: string[]; error?: string }
  | { do: 'allocate'; req: AllocateRequest; want?: Allocation; error?: string; message?: RegExp }
  | { do: 'adopt'; req: AdoptRequest; want?: Allocation; error?: string; message?: RegExp }
  | { do: 'release'; service: string; want: boolean }
  | { do: 'setExclusions'; exclusions: Exclusion[]; held?: string[]; error?: string }
  /** `v4`/`v6` are [size, inUse] or [size, inUse, excluded]. */
  | { do: 'stats'; group: string; v4: [bigint, bigint] | [bigint, bigint, bigint]; v6: [bigint, bigint] | [bigint, bigint, bigint] };


/** Runs steps in order; after each, the invariant must hold, and a failed call must change nothing. */
export function runSteps(t: Test, steps: readonly Step[], ipam = new Ipam()): Ipam {
  let groups: GroupSpec[] = [];
  let exclusions: Exclusion[] = [];
  const holders = new Map<string, HolderInfo>();
  steps.forEach((step, i) => {
    const label = `step ${i + 1} ${step.do}`;
    const before = snapshot(ipam);
    let thrown: unknown;
    let result: unknown;
    try {
      switch (step.do) {
        case 'setGroups':
          result = ipam.setGroups(step.groups);
          groups = step.groups;
          break;
        case 'allocate':
        case 'adopt': {
          result = step.do === 'allocate' ? ipam.allocate(step.req) : ipam.adopt(step.req);
          holders.set(step.req.service, { key: step.req.sharingKey || undefined, ports: step.req.ports ?? [] });
          break;
        }
        case 'release':
          result = ipam.release(step.service);
          holders.delete(step.service);
          break;
        case 'setExclusions':
          result = ipam.setExclusions(step.exclusions);
          exclusions = step.exclusions;
          break;
        case 'stats':
          result = ipam.stats(step.group);
          break;
      }
    } catch (e) {
      thrown = e;
    }
    const wantError = 'error' in step ? step.error : undefined;
    if (wantError) {
      t.ok(thrown instanceof IpamError, `${label}: throws an IpamError (${String(thrown)})`);
      t.equal((thrown as IpamError | undefined)?.code, wantError, `${label}: code`);
      if ('message' in step && step.message) t.match((thrown as Error | undefined)?.message, step.message, `${label}: message`);
      t.same(snapshot(ipam), before, `${label}: a failed call changes nothing`);
    } else {
      t.equal(thrown, undefined, `${label}: does not throw`);
      if (step.do === 'allocate' || step.do === 'adopt') {
        if (step.want) t.same(result, step.want, `${label}: ${step.req.service}`);
      } else if (step.do === 'release') {
        t.equal(result, step.want, `${label}: release ${step.service}`);
      } else if (step.do === 'setGroups') {
        if (step.orphans) {
          const got = (result as { orphans: { service: string; address: string }[] }).orphans.map((o) => `${o.service}=${o.address}`).sort();
          t.same(got, [...step.orphans].sort(), `${label}: orphans`);
        }
      } else if (step.do === 'setExclusions') {
        if (step.held) {
          const got = (result as { held: { service: string; address: string }[] }).held.map((h) => `${h.service}=${h.address}`).sort();
          t.same(got, [...step.held].sort(), `${label}: held`);
        }
      } else if (step.do === 'stats') {
        const s = result as { IPv4: { size: bigint; inUse: bigint; excluded: bigint }; IPv6: { size: bigint; inUse: bigint; excluded: bigint } };
        const got = (f: 'IPv4' | 'IPv6', want: readonly bigint[]): bigint[] => [s[f].size, s[f].inUse, s[f].excluded].slice(0, want.length);
        t.same([...got('IPv4', step.v4), ...got('IPv6', step.v6)], [...step.v4, ...step.v6], `${label}: stats ${step.group}`);
      }
    }
    const bad = violation(ipam, groups, holders, exclusions);
    t.equal(bad, undefined, `${label}: invariant`);
  });
  return ipam;
}
