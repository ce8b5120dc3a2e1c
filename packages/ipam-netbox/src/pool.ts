// A ServiceGroup's view of Netbox: where addresses come from (a prefix, an IP range, or
// the tenant's reserved addresses), taking one, giving it back, and finding what we hold.
import { type Family, type Subnet, FAMILIES, lastAddress, subnetOf, subnetReserved } from '@purelb/ipam-core';
import type { NetboxClient } from './client.ts';
import { NetboxError, NetboxErrorCode, withContext } from './errors.ts';
import { type NetboxIpAddress, type NetboxTenant, parseIpAddress, parseIpRange, parsePrefix, parseTenant, splitCidr } from './models.ts';

/** Where a pool takes its addresses from: the `spec.netbox` fields of a ServiceGroup. */
export interface NetboxPoolSpec {
  /** Tenant (slug, else name) the addresses belong to; also picks the prefix when nothing else does. */
  readonly tenant?: string | undefined;
  /** A prefix by its CIDR text (`192.0.2.0/24`). */
  readonly prefix?: string | undefined;
  /** A prefix by id. */
  readonly prefixId?: number | undefined;
  /** An IP range by id. */
  readonly ipRangeId?: number | undefined;
  /** PureLB's old mode: take the tenant's first `reserved` address and mark it `active`; release puts it back to `reserved`. */
  readonly legacyReserved?: boolean | undefined;
  /** Start of the description that marks our addresses. Default `purelb:`. */
  readonly descriptionPrefix?: string | undefined;
  /** Allocations sent to Netbox at once by this pool (Netbox serializes them anyway). Default 8. */
  readonly concurrency?: number | undefined;
}

/** One place addresses of a family come from. */
export interface NetboxSource {
  readonly kind: 'prefix' | 'ip-range' | 'reserved';
  /** Netbox id of the prefix or range (absent for the tenant's reserved addresses). */
  readonly id?: number | undefined;
  readonly family: Family;
  /** How messages name it: `prefix 192.0.2.0/24`, `ip-range 7 (192.0.2.10-192.0.2.20)`, `reserved addresses of tenant "web"`. */
  readonly label: string;
  /** The prefix text, when there is one (also for a reserved source inside a prefix). */
  readonly prefix?: string | undefined;
  /** Addresses Netbox can hand out from it (for status; 0 when unknown). */
  readonly size: bigint;
  /** Lowest and highest address it covers (for filtering what we hold). */
  readonly first: bigint;
  readonly last: bigint;
}

/** An address this pool holds in Netbox. */
export interface HeldAddress {
  /** Netbox id of the ip-address object. */
  readonly id: number;
  /** The address without mask, canonical text. */
  readonly address: string;
  readonly family: Family;
  /** The mask length recorded in Netbox (the prefix's). */
  readonly maskLength: number;
  /** Whom it is for, read back from the description (`namespace/name` of the Service). */
  readonly holder: string;
}

/** The pool after `resolve()`. */
export interface ResolvedPool {
  readonly tenant: NetboxTenant | undefined;
  readonly sources: Readonly<Partial<Record<Family, NetboxSource>>>;
}

/** What `release` did. */
export type ReleaseOutcome = 'released' | 'already-gone' | 'not-ours';

const FAMILY_NUMBER: Record<Family, number> = { IPv4: 4, IPv6: 6 };

/** A small counting semaphore: at most `n` callers inside at once. */
class Limit {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = Math.max(1, n);
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/**
 * Takes addresses one at a time from Netbox for one ServiceGroup, and gives them back.
 * Each address carries the tenant and a description naming its holder, so `held()` can
 * find everything after a restart.
 */
export class NetboxPool {
  readonly #client: NetboxClient;
  readonly #spec: NetboxPoolSpec;
  readonly #descPrefix: string;
  readonly #limit: Limit;
  /** Reserved addresses are found then patched: two at once could pick the same one. */
  readonly #reservedLock = new Limit(1);
  #resolved: ResolvedPool | undefined;

  constructor(client: NetboxClient, spec: NetboxPoolSpec) {
    this.#client = client;
    this.#spec = spec;
    this.#descPrefix = spec.descriptionPrefix ?? 'purelb:';
    this.#limit = new Limit(spec.concurrency ?? 8);
    if (spec.prefixId !== undefined && spec.ipRangeId !== undefined) {
      throw new NetboxError(NetboxErrorCode.InvalidConfig, 'Netbox: give prefixId or ipRangeId, not both', { field: 'ipRangeId' });
    }
    if (spec.ipRangeId !== undefined && spec.legacyReserved) {
      throw new NetboxError(NetboxErrorCode.InvalidConfig, 'Netbox: legacyReserved takes addresses by tenant (optionally inside a prefix), not from an IP range', { field: 'legacyReserved' });
    }
    if (spec.legacyReserved && !spec.tenant) {
      throw new NetboxError(NetboxErrorCode.InvalidConfig, 'Netbox: legacyReserved needs a tenant', { field: 'tenant' });
    }
    if (spec.prefix === undefined && spec.prefixId === undefined && spec.ipRangeId === undefined && !spec.tenant) {
      throw new NetboxError(NetboxErrorCode.InvalidConfig, 'Netbox: name a prefix, prefixId, ipRangeId or tenant to take addresses from', { field: 'prefix' });
    }
  }

  /** The description that marks an address as held by `holder`. */
  descriptionOf(holder: string): string {
    return `${this.#descPrefix}${holder}`;
  }

  /** The holder named by a description, if it is one of ours. */
  holderOf(description: string): string | undefined {
    return description.startsWith(this.#descPrefix) && description.length > this.#descPrefix.length ? description.slice(this.#descPrefix.length) : undefined;
  }

  /** The sources found by the last successful `resolve()`. */
  get resolved(): ResolvedPool | undefined {
    return this.#resolved;
  }

  /**
   * Finds the tenant and the prefix or range of each family. Fails with
   * NETBOX_TENANT_NOT_FOUND or NETBOX_PREFIX_NOT_FOUND naming what is missing.
   */
  async resolve(): Promise<ResolvedPool> {
    const tenant = this.#spec.tenant ? await this.#findTenant(this.#spec.tenant) : undefined;
    const tq = tenant ? `&tenant_id=${tenant.id}` : '';
    const sources: Partial<Record<Family, NetboxSource>> = {};
    const s = this.#spec;
    if (s.ipRangeId !== undefined) {
      const r = parseIpRange(await this.#client.request('GET', `/ipam/ip-ranges/${s.ipRangeId}/`, { notFound: (d) => this.#notFound(`ip-range ${s.ipRangeId}`, d) }));
      const a = splitCidr(r.startAddress, 'ip-range', 'start_address');
      const b = splitCidr(r.endAddress, 'ip-range', 'end_address');
      sources[r.family] = {
        kind: 'ip-range',
        id: r.id,
        family: r.family,
        label: `ip-range ${r.id} (${a.ip}-${b.ip})`,
        size: BigInt(r.size),
        first: a.value,
        last: b.value,
      };
    } else if (s.prefixId !== undefined || s.prefix !== undefined) {
      let p;
      if (s.prefixId !== undefined) {
        p = parsePrefix(await this.#client.request('GET', `/ipam/prefixes/${s.prefixId}/`, { notFound: (d) => this.#notFound(`prefix ${s.prefixId}`, d) }));
      } else {
        const found = (await this.#client.list(`/ipam/prefixes/?prefix=${encodeURIComponent(s.prefix!)}${tq}`)).map(parsePrefix);
        if (found.length === 0) throw this.#notFound(`prefix ${s.prefix}${tenant ? ` of tenant "${tenant.slug}"` : ''}`, '');
        p = found[0]!;
      }
      sources[p.family] = await this.#prefixSource(p.id, p.prefix, p.family, p.isPool, tenant);
    } else {
      // Only a tenant: its first prefix of each family (Netbox lists them in address order).
      const all = (await this.#client.list(`/ipam/prefixes/?tenant_id=${tenant!.id}`)).map(parsePrefix);
      for (const f of FAMILIES) {
        const p = all.find((x) => x.family === f);
        if (p) sources[f] = await this.#prefixSource(p.id, p.prefix, p.family, p.isPool, tenant);
      }
      if (s.legacyReserved) {
        for (const f of FAMILIES) sources[f] ??= await this.#reservedSource(f, undefined, tenant!);
      }
      if (Object.keys(sources).length === 0) throw this.#notFound(`any prefix of tenant "${tenant!.slug}"`, '');
    }
    this.#resolved = { tenant, sources };
    return this.#resolved;
  }

  /**
   * Takes one free address of `family` for `holder` (the Service, `namespace/name`) and
   * records the holder in its description. A POST retried after a timeout first looks
   * for an address the lost attempt may have created, so one holder never gets two.
   */
  allocate(holder: string, family: Family, opts: { dnsName?: string | undefined } = {}): Promise<HeldAddress> {
    return this.#limit.run(async () => {
      const pool = this.#resolved ?? (await this.resolve());
      const source = pool.sources[family];
      if (!source) {
        const have = Object.values(pool.sources).map((x) => x.label).join(', ');
        throw new NetboxError(NetboxErrorCode.FamilyUnavailable, `Netbox ${this.#client.apiUrl}: no ${family} prefix or range to allocate from for Service ${holder}${have ? ` (only ${have})` : ''}`, {
          service: holder,
          url: this.#client.apiUrl,
        });
      }
      const description = this.descriptionOf(holder);
      const ctx = { service: holder, prefix: source.label };
      try {
        const got = source.kind === 'reserved' ? await this.#takeReserved(source, pool.tenant!, description, opts.dnsName) : await this.#postAvailable(source, pool.tenant, description, opts.dnsName);
        if (got.family !== family || got.value < source.first || got.value > source.last) {
          throw new NetboxError(NetboxErrorCode.BadResponse, `Netbox ${this.#client.apiUrl}: ${source.label} handed out ${got.ip}, which is not a ${family} address inside it`, ctx);
        }
        return { id: got.id, address: got.ip, family: got.family, maskLength: got.maskLength, holder };
      } catch (e) {
        if (!(e instanceof NetboxError)) throw e;
        if (e.code === NetboxErrorCode.Exhausted) {
          throw new NetboxError(NetboxErrorCode.Exhausted, `Netbox ${this.#client.apiUrl}: ${source.label} has no free address for Service ${holder}`, { ...e.context, ...ctx }, { cause: e });
        }
        throw withContext(e, ctx, `${source.label}, Service ${holder}`);
      }
    });
  }

  /**
   * Gives an address back: DELETE (or, in legacy mode, back to `reserved` with the
   * description cleared). An address whose description no longer names `held.holder`
   * was changed by someone else and is left alone ('not-ours').
   */
  async release(held: HeldAddress): Promise<ReleaseOutcome> {
    const path = `/ipam/ip-addresses/${held.id}/`;
    const raw = await this.#client.request('GET', path, { allow404: true });
    if (raw === undefined) return 'already-gone';
    const now = parseIpAddress(raw);
    if (now.description !== this.descriptionOf(held.holder) || now.ip !== held.address) return 'not-ours';
    if (this.#spec.legacyReserved) {
      const r = await this.#client.request('PATCH', path, { body: { status: 'reserved', description: '' }, allow404: true });
      return r === undefined ? 'already-gone' : 'released';
    }
    // A 404 here means someone deleted it between the GET and now: gone either way.
    await this.#client.request('DELETE', path, { allow404: true });
    return 'released';
  }

  /**
   * Records another holder for an address we hold (PATCH of its description): for an
   * address Netbox handed out again after a person deleted the record of the Service that
   * still uses it.
   */
  async relabel(held: HeldAddress, holder: string): Promise<HeldAddress> {
    await this.#client.request('PATCH', `/ipam/ip-addresses/${held.id}/`, { body: { description: this.descriptionOf(holder) } });
    return { ...held, holder };
  }

  /** Every address of this pool's tenant and sources whose description marks it as ours (for adoption after a restart). */
  async held(): Promise<HeldAddress[]> {
    const pool = this.#resolved ?? (await this.resolve());
    const sources = Object.values(pool.sources).filter((x) => x !== undefined);
    let q = `/ipam/ip-addresses/?description__isw=${encodeURIComponent(this.#descPrefix)}`;
    if (pool.tenant) q += `&tenant_id=${pool.tenant.id}`;
    if (sources.length === 1 && sources[0]!.prefix !== undefined) q += `&parent=${encodeURIComponent(sources[0]!.prefix)}`;
    const out: HeldAddress[] = [];
    for (const raw of await this.#client.list(q)) {
      const a = parseIpAddress(raw);
      const holder = this.holderOf(a.description);
      if (!holder) continue;
      if (this.#spec.legacyReserved && a.status !== 'active') continue;
      const src = pool.sources[a.family];
      const v = splitCidr(a.ip, 'ip-address', 'address').value;
      if (!src || v < src.first || v > src.last) continue;
      out.push({ id: a.id, address: a.ip, family: a.family, maskLength: a.maskLength, holder });
    }
    return out;
  }

  // --- internals ---------------------------------------------------------------

  #notFound(what: string, detail: string): NetboxError {
    return new NetboxError(NetboxErrorCode.PrefixNotFound, `Netbox ${this.#client.apiUrl}: ${what} does not exist${detail ? ` (${detail})` : ''}`, {
      url: this.#client.apiUrl,
      prefix: what,
      ...(detail ? { detail } : {}),
    });
  }

  async #findTenant(name: string): Promise<NetboxTenant> {
    for (const field of ['slug', 'name']) {
      const found = await this.#client.list(`/tenancy/tenants/?${field}=${encodeURIComponent(name)}`);
      if (found.length > 0) return parseTenant(found[0]);
    }
    throw new NetboxError(NetboxErrorCode.TenantNotFound, `Netbox ${this.#client.apiUrl}: tenant "${name}" does not exist (looked for it by slug and by name)`, {
      url: this.#client.apiUrl,
    });
  }

  async #prefixSource(id: number, prefix: string, family: Family, isPool: boolean, tenant: NetboxTenant | undefined): Promise<NetboxSource> {
    if (this.#spec.legacyReserved) return this.#reservedSource(family, prefix, tenant!);
    const c = splitCidr(prefix, 'prefix', 'prefix');
    const subnet = subnetOf({ family, value: c.value }, c.maskLength);
    const first = subnet.network;
    const last = lastAddress(subnet);
    // Netbox leaves out what it never hands out: network and broadcast of an IPv4
    // prefix, the subnet-router anycast address of an IPv6 one (not for pools or /31, /127).
    const excluded = isPool ? 0n : BigInt(subnetReserved(subnet).length);
    return { kind: 'prefix', id, family, label: `prefix ${prefix}`, prefix, size: last - first + 1n - excluded, first, last };
  }

  async #reservedSource(family: Family, prefix: string | undefined, tenant: NetboxTenant): Promise<NetboxSource> {
    const parent = prefix ? `&parent=${encodeURIComponent(prefix)}` : '';
    const body = (await this.#client.request('GET', `/ipam/ip-addresses/?tenant_id=${tenant.id}&status=reserved&family=${FAMILY_NUMBER[family]}${parent}&limit=1`)) as { count?: unknown };
    const reserved = typeof body?.count === 'number' ? BigInt(body.count) : 0n;
    // Without a prefix, the whole address space of the family.
    let within: Subnet = { family, network: 0n, prefixLength: 0 };
    if (prefix) {
      const c = splitCidr(prefix, 'prefix', 'prefix');
      within = subnetOf({ family, value: c.value }, c.maskLength);
    }
    const label = `reserved ${family} addresses of tenant "${tenant.slug}"${prefix ? ` in ${prefix}` : ''}`;
    return { kind: 'reserved', family, label, prefix, size: reserved, first: within.network, last: lastAddress(within) };
  }

  async #postAvailable(source: NetboxSource, tenant: NetboxTenant | undefined, description: string, dnsName: string | undefined): Promise<NetboxIpAddress & { value: bigint }> {
    const path = `/ipam/${source.kind === 'prefix' ? 'prefixes' : 'ip-ranges'}/${source.id}/available-ips/`;
    const body = { status: 'active', description, ...(tenant ? { tenant: tenant.id } : {}), ...(dnsName ? { dns_name: dnsName } : {}) };
    const raw = await this.#client.request('POST', path, {
      body,
      notFound: (d) => this.#notFound(source.label, d),
      beforeRetry: async () => {
        const found = await this.#findByDescription(description, source, tenant);
        return found && { recovered: found };
      },
    });
    if (typeof raw === 'object' && raw !== null && 'recovered' in raw) return (raw as { recovered: NetboxIpAddress & { value: bigint } }).recovered;
    const one: unknown = Array.isArray(raw) ? raw[0] : raw;
    if (one === undefined || one === null) throw new NetboxError(NetboxErrorCode.BadResponse, `${source.label}: Netbox answered the POST with no address`, { prefix: source.label });
    const a = parseIpAddress(one);
    return { ...a, value: splitCidr(a.ip, 'ip-address', 'address').value };
  }

  /** The address a lost POST may have created for this description, if any. */
  async #findByDescription(description: string, source: NetboxSource, tenant: NetboxTenant | undefined): Promise<(NetboxIpAddress & { value: bigint }) | undefined> {
    let q = `/ipam/ip-addresses/?description=${encodeURIComponent(description)}&family=${FAMILY_NUMBER[source.family]}`;
    if (tenant) q += `&tenant_id=${tenant.id}`;
    try {
      for (const raw of await this.#client.list(q)) {
        const a = parseIpAddress(raw);
        const v = splitCidr(a.ip, 'ip-address', 'address').value;
        if (a.description === description && v >= source.first && v <= source.last) return { ...a, value: v };
      }
    } catch {
      // Netbox still down: the retry itself will say so.
    }
    return undefined;
  }

  #takeReserved(source: NetboxSource, tenant: NetboxTenant, description: string, dnsName: string | undefined): Promise<NetboxIpAddress & { value: bigint }> {
    return this.#reservedLock.run(async () => {
      const existing = await this.#findByDescription(description, source, tenant);
      if (existing && existing.status === 'active') return existing;
      const parent = source.prefix ? `&parent=${encodeURIComponent(source.prefix)}` : '';
      const page = (await this.#client.request('GET', `/ipam/ip-addresses/?tenant_id=${tenant.id}&status=reserved&family=${FAMILY_NUMBER[source.family]}${parent}&ordering=address&limit=1`)) as {
        results?: unknown[];
      };
      const first = page?.results?.[0];
      if (first === undefined) throw new NetboxError(NetboxErrorCode.Exhausted, `${source.label}: none left`, { prefix: source.label });
      const candidate = parseIpAddress(first);
      const patched = parseIpAddress(
        await this.#client.request('PATCH', `/ipam/ip-addresses/${candidate.id}/`, {
          body: { status: 'active', description, ...(dnsName ? { dns_name: dnsName } : {}) },
        }),
      );
      return { ...patched, value: splitCidr(patched.ip, 'ip-address', 'address').value };
    });
  }
}
