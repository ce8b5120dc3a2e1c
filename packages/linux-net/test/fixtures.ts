// The two worlds the behaviour table runs against: the kernel, in a namespace of its
// own, and the in-memory handle. Not a test file (tap includes *.test.ts only).
import type { Test } from 'tap';
import { openNetlinkHandle, type Family, type NetlinkHandle } from '../src/index.ts';
import { MemoryNetlinkHandle, TestNetns, assertNetnsPrerequisites } from '../src/testing/index.ts';

/** A handle plus the means to change its world the way other programs would. */
export interface World {
  readonly kind: 'kernel' | 'memory';
  readonly handle: NetlinkHandle;
  /** Opens another handle on the same world with another virtual link kind. */
  handleWithKind(kind: string): NetlinkHandle;
  addLink(name: string, kind: string): Promise<void>;
  addDefaultRoute(family: Family, link: string, metric: number): Promise<void>;
  addAddressExternally(link: string, address: string): Promise<void>;
  removeAddressExternally(link: string, address: string): Promise<void>;
}

/** A kind the kernel here has, standing in for `dummy`, which it lacks. */
export const VIRTUAL_KIND = 'bridge';

export function kernelWorld(t: Test): World {
  assertNetnsPrerequisites();
  const ns = new TestNetns('lnet');
  t.teardown(() => ns.delete());
  const open = (kind: string): NetlinkHandle => {
    const h = ns.run(() => openNetlinkHandle({ virtualLinkKind: kind }));
    t.teardown(() => h.close());
    return h;
  };
  return {
    kind: 'kernel',
    handle: open(VIRTUAL_KIND),
    handleWithKind: open,
    addLink: async (name, kind) => {
      ns.ip('link', 'add', name, 'type', kind);
      ns.ip('link', 'set', name, 'up');
    },
    addDefaultRoute: async (family, link, metric) => {
      ns.ip(family === 'IPv4' ? '-4' : '-6', 'route', 'add', 'default', 'dev', link, 'metric', String(metric));
    },
    addAddressExternally: async (link, address) => {
      ns.ip('addr', 'add', address, 'dev', link, ...(address.includes(':') ? ['nodad'] : []));
    },
    removeAddressExternally: async (link, address) => {
      ns.ip('addr', 'del', address, 'dev', link);
    },
  };
}

export function memoryWorld(t: Test): World {
  // The same kinds as this kernel: no dummy driver.
  const kinds = ['bridge', 'ifb', 'veth'];
  const handle = new MemoryNetlinkHandle({ virtualLinkKind: VIRTUAL_KIND, availableKinds: kinds });
  t.teardown(() => handle.close());
  return {
    kind: 'memory',
    handle,
    handleWithKind: () => {
      throw new Error('the memory world has one handle; see handleKindFor');
    },
    addLink: async (name, kind) => {
      handle.addLink({ name, kind });
    },
    addDefaultRoute: async (family, link, metric) => handle.setDefaultRoute(family, link, { metric }),
    addAddressExternally: async (link, address) => handle.addAddressExternally(link, address, address.includes(':') ? { nodad: true } : {}),
    removeAddressExternally: async (link, address) => {
      handle.removeAddressExternally(link, address);
    },
  };
}

/** A memory world whose handle uses another virtual link kind (its state is separate). */
export function memoryWorldWithKind(t: Test, kind: string): MemoryNetlinkHandle {
  const h = new MemoryNetlinkHandle({ virtualLinkKind: kind, availableKinds: ['bridge', 'ifb', 'veth'] });
  t.teardown(() => h.close());
  return h;
}

export const WORLDS = [
  ['kernel', kernelWorld],
  ['memory', memoryWorld],
] as const;

/** Resolves with the first value of `iter` that `match` accepts, or rejects after `ms`. */
export async function nextMatching<T>(iter: AsyncIterator<T>, match: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([iter.next(), new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), left)))]);
    clearTimeout(timer);
    if (r === 'timeout' || r.done) break;
    if (match(r.value)) return r.value;
  }
  throw new Error(`no matching value within ${ms} ms`);
}
