// The in-memory handle as a whole-daemon simulator: several handles on one segment, probes
// and address lifetimes on a clock the test drives.
import t from 'tap';
import type { NetChange } from '../src/index.ts';
import { MemoryNetlinkHandle, MemorySegment, type MemoryNetlinkHandleOptions } from '../src/testing/index.ts';

/** A virtual clock: `sleep` resolves when `advance` moves time past it. */
class VirtualClock {
  now = 0;
  readonly #timers: { at: number; resolve: () => void }[] = [];

  readonly sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      this.#timers.push({ at: this.now + ms, resolve });
      this.#timers.sort((a, b) => a.at - b.at);
    });

  /** Moves time forward, waking each sleeper at its own time and letting its continuation run. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    // Let callers that just started reach their first sleep before time moves.
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 10_000; i++) {
      const next = this.#timers[0];
      if (!next || next.at > target) break;
      this.#timers.shift();
      this.now = next.at;
      next.resolve();
      await new Promise((r) => setImmediate(r));
    }
    this.now = target;
    await new Promise((r) => setImmediate(r));
  }

  get pending(): number {
    return this.#timers.length;
  }
}

function node(clock: VirtualClock, lan: MemorySegment, mac: string, extra: MemoryNetlinkHandleOptions = {}): MemoryNetlinkHandle {
  const h = new MemoryNetlinkHandle({ now: () => clock.now, sleep: clock.sleep, ...extra });
  h.addLink({ name: 'eth0', mac, segment: lan });
  return h;
}

/** Resolves to the settled state of `p` without waiting for it. */
async function peek<T>(p: Promise<T>): Promise<'pending' | { value: T } | { error: unknown }> {
  let state: 'pending' | { value: T } | { error: unknown } = 'pending';
  p.then(
    (value) => (state = { value }),
    (error: unknown) => (state = { error }),
  );
  await new Promise((r) => setImmediate(r));
  return state;
}

const MAC_A = '02:00:5e:00:53:0a';
const MAC_B = '02:00:5e:00:53:0b';
const MAC_C = '02:00:5e:00:53:0c';

t.test('a probe hears another handle on the same segment that holds the address', async (t) => {
  const clock = new VirtualClock();
  const lan = new MemorySegment('lan');
  const a = node(clock, lan, MAC_A);
  const b = node(clock, lan, MAC_B);
  t.teardown(() => (a.close(), b.close()));
  t.same(
    lan.attached().map((x) => x.link.mac),
    [MAC_A, MAC_B],
  );

  await b.addAddress('eth0', '192.0.2.10/24');
  await b.addAddress('eth0', '2001:db8::10/64', { nodad: true });
  t.same(lan.holders('192.0.2.10'), [MAC_B]);
  t.same(await a.probeAddress('eth0', '192.0.2.10'), { conflict: true, mac: MAC_B }, 'IPv4: the holder answers the first probe');
  t.same(await a.probeAddress('eth0', '2001:db8::10'), { conflict: true, mac: MAC_B }, 'IPv6');
  t.match(a.recordedProbes, [
    { family: 'IPv4', address: '192.0.2.10', startedAt: 0, endedAt: 0, result: { conflict: true } },
    { family: 'IPv6', address: '2001:db8::10', result: { conflict: true, mac: MAC_B } },
  ]);
  t.equal(clock.pending, 0, 'an answered probe leaves no wait behind');
  t.equal(clock.now, 0, 'no virtual time passed');
  const own = b.probeAddress('eth0', '192.0.2.10');
  await clock.advance(110);
  t.same(await own, { conflict: false }, "the holder's own probe does not count its own address");
});

t.test('a silent probe takes exactly (probes - 1) * interval + wait on the given clock', async (t) => {
  const clock = new VirtualClock();
  const lan = new MemorySegment();
  const a = node(clock, lan, MAC_A);
  t.teardown(() => a.close());
  for (const [options, total] of [
    [{}, 110],
    [{ probes: 3, intervalMs: 100, waitMs: 50 }, 250],
    [{ probes: 1, waitMs: 0 }, 0],
  ] as const) {
    const start = clock.now;
    const p = a.probeAddress('eth0', '192.0.2.20', options);
    if (total > 0) {
      await clock.advance(total - 1);
      t.equal(await peek(p), 'pending', `${JSON.stringify(options)}: still listening at ${total - 1} ms`);
      await clock.advance(1);
    } else await clock.advance(0);
    t.same(await peek(p), { value: { conflict: false } }, `${JSON.stringify(options)}: done at ${total} ms`);
    t.equal(a.recordedProbes.at(-1)!.endedAt - start, total);
  }
});

t.test('who answers: only an up link attached to the same segment that holds the address', async (t) => {
  const clock = new VirtualClock();
  const lan = new MemorySegment('lan');
  const other = new MemorySegment('other');
  const a = node(clock, lan, MAC_A);
  const b = node(clock, lan, MAC_B);
  const c = node(clock, other, MAC_C);
  t.teardown(() => (a.close(), b.close(), c.close()));
  await c.addAddress('eth0', '192.0.2.30/24');
  const probe = async (): Promise<unknown> => {
    const p = a.probeAddress('eth0', '192.0.2.30');
    await clock.advance(110);
    return p;
  };
  t.same(await probe(), { conflict: false }, 'a holder on another segment is not heard');

  await b.addAddress('eth0', '192.0.2.30/24');
  t.same(await probe(), { conflict: true, mac: MAC_B });
  b.setLinkUp('eth0', false);
  t.same(await probe(), { conflict: false }, 'a holder whose link is down does not answer');
  t.same(lan.holders('192.0.2.30'), []);
  b.setLinkUp('eth0', true);
  t.equal(b.detachFromSegment('eth0'), true, 'cable cut');
  t.equal(b.detachFromSegment('eth0'), false);
  t.same(await probe(), { conflict: false }, 'a detached holder is not heard');
  const bp = b.probeAddress('eth0', '192.0.2.77');
  await clock.advance(110);
  t.same(await bp, { conflict: false }, 'and a detached link hears nobody, but still probes (its carrier is up)');
  b.attachToSegment('eth0', lan);
  t.same(await probe(), { conflict: true, mac: MAC_B }, 'reattached');

  // A killed agent: its handle is closed, but its kernel keeps the address and answers.
  b.close();
  t.same(await probe(), { conflict: true, mac: MAC_B }, 'a closed handle still answers for its addresses');
  c.attachToSegment('eth0', lan);
  const both = a.probeAddress('eth0', '192.0.2.30');
  t.match(await both, { conflict: true }, 'two holders: one of them is reported');
  t.same(lan.holders('192.0.2.30').sort(), [MAC_B, MAC_C], 'holders() lists both, for an invariant check');
});

t.test('two handles probing at once: the one that hears the other yields, never both clear', async (t) => {
  const clock = new VirtualClock();
  const lan = new MemorySegment();
  const a = node(clock, lan, MAC_A);
  const b = node(clock, lan, MAC_B);
  t.teardown(() => (a.close(), b.close()));
  const pa = a.probeAddress('eth0', '198.51.100.5');
  await clock.advance(10);
  const pb = b.probeAddress('eth0', '198.51.100.5');
  await clock.advance(200);
  const [ra, rb] = [await pa, await pb];
  t.same(ra, { conflict: true, mac: MAC_B }, 'A heard B probe at 10 ms');
  t.same(rb, { conflict: false }, "B started after A's only probe; A stopped before its second");
  t.equal(a.recordedProbes[0]!.endedAt, 30, 'A noticed at its next step');
  await clock.advance(0);
});

t.test('an announcement heard while listening is a conflict', async (t) => {
  const clock = new VirtualClock();
  const lan = new MemorySegment();
  const a = node(clock, lan, MAC_A);
  const b = node(clock, lan, MAC_B);
  t.teardown(() => (a.close(), b.close()));
  const p = a.probeAddress('eth0', '2001:db8::40', { probes: 1, waitMs: 100 });
  await clock.advance(50);
  await b.announce('eth0', '2001:db8::40');
  await clock.advance(50);
  t.same(await p, { conflict: true, mac: MAC_B });
});

t.test('could not probe: typed errors; abort on the virtual clock', async (t) => {
  const clock = new VirtualClock();
  const lan = new MemorySegment();
  const a = node(clock, lan, MAC_A);
  t.teardown(() => a.close());
  await t.rejects(a.probeAddress('nosuch0', '192.0.2.1'), { code: 'NETLINK_LINK_NOT_FOUND' });
  await t.rejects(a.probeAddress('lo', '192.0.2.1'), { code: 'NETLINK_PROBE_FAILED', message: /no Ethernet address/ });
  await t.rejects(a.probeAddress('eth0', '192.0.2.1', { intervalMs: 10_001 }), { code: 'NETLINK_INVALID_ARGUMENT', context: { field: 'intervalMs' } });
  a.setLinkUp('eth0', false);
  await t.rejects(a.probeAddress('eth0', '192.0.2.1'), { code: 'NETLINK_PROBE_FAILED', context: { link: 'eth0', operation: 'arping -D -I eth0 192.0.2.1' } });
  a.setLinkUp('eth0', true);

  const going = t.rejects(a.probeAddress('eth0', '192.0.2.1', { waitMs: 500 }), { code: 'NETLINK_PROBE_FAILED', message: /during the probe/ }, 'a link that went down while listening');
  await clock.advance(40);
  a.setLinkUp('eth0', false);
  await clock.advance(500);
  await going;
  a.setLinkUp('eth0', true);

  const ac = new AbortController();
  const before = clock.now;
  const aborted = t.rejects(a.probeAddress('eth0', '192.0.2.1', { waitMs: 5000, signal: ac.signal }), { code: 'NETLINK_ABORTED', cause: 'stop' }, 'abort ends the wait at once, without the clock moving');
  await clock.advance(100);
  ac.abort('stop');
  await aborted;
  t.equal(clock.now - before, 100, 'after 100 of the 5000 ms');

  a.denyChanges = true;
  await t.rejects(a.probeAddress('eth0', '192.0.2.1'), { code: 'NETLINK_PERMISSION', message: /CAP_NET_RAW/ });
  a.denyChanges = false;
  a.close();
  await t.rejects(a.probeAddress('eth0', '192.0.2.1'), { code: 'NETLINK_CLOSED' });
  await clock.advance(10_000);
});

t.test('valid lifetimes run on the clock: the address goes N s after its last add or replace, with a removal change', async (t) => {
  const clock = new VirtualClock();
  const lan = new MemorySegment();
  const a = node(clock, lan, MAC_A);
  const b = node(clock, lan, MAC_B);
  t.teardown(() => (a.close(), b.close()));
  const sub = b.subscribe();
  t.teardown(() => sub.close());
  const changes: NetChange[] = [];
  void (async () => {
    for await (const c of sub) changes.push(c);
  })();

  t.equal(await b.addAddress('eth0', '192.0.2.50/24', { validLifetime: 10, preferredLifetime: 4 }), true);
  await clock.advance(3500);
  t.match(await b.listAddresses({ link: 'eth0' }), [{ address: '192.0.2.50', validLifetime: 7, preferredLifetime: 1, flags: { deprecated: false, permanent: false } }], 'counting down');
  await clock.advance(500);
  t.match(await b.listAddresses({ link: 'eth0' }), [{ validLifetime: 6, preferredLifetime: 0, flags: { deprecated: true } }], 'deprecated when preferred runs out');
  t.equal(await b.addAddress('eth0', '192.0.2.50/24', { validLifetime: 10 }), false, 'an add of a present address changes nothing, its clock neither');
  await clock.advance(1000); // t = 5 s
  await b.replaceAddress('eth0', '192.0.2.50/24', { validLifetime: 10 }); // now lives until 15 s
  await clock.advance(9999);
  t.equal((await b.listAddresses({ link: 'eth0' })).length, 1, 'still there 1 ms before 15 s');
  const p = a.probeAddress('eth0', '192.0.2.50');
  t.same(await p, { conflict: true, mac: MAC_B });
  await clock.advance(1);
  t.same(await b.listAddresses({ link: 'eth0' }), [], 'gone at 15 s');
  t.match(changes.filter((c) => c.kind === 'address-removed'), [{ kind: 'address-removed', address: { address: '192.0.2.50', prefixLength: 24 } }], 'one removal, as the kernel reports it');
  const after = a.probeAddress('eth0', '192.0.2.50');
  await clock.advance(110);
  t.same(await after, { conflict: false }, 'nobody answers for an expired address');

  // A closed handle (a killed agent): its kernel still expires the address on time.
  await b.addAddress('eth0', '192.0.2.51/24', { validLifetime: 3 });
  b.close();
  t.same(lan.holders('192.0.2.51'), [MAC_B]);
  await clock.advance(3000);
  t.same(lan.holders('192.0.2.51'), [], 'expired after the handle closed');
});

t.test('expireAddresses: a clock without timers (only now) drives expiry explicitly', async (t) => {
  let now = 0;
  const h = new MemoryNetlinkHandle({ now: () => now, sleep: () => new Promise<void>(() => undefined) });
  t.teardown(() => h.close());
  h.addLink({ name: 'eth0' });
  h.addAddressExternally('eth0', '2001:db8::60/64', { nodad: true, validLifetime: 2 });
  now = 1999;
  t.same(h.expireAddresses(), []);
  now = 2000;
  t.match(h.expireAddresses(), [{ address: '2001:db8::60' }]);
  t.same(await h.listAddresses({ link: 'eth0' }), []);
});

t.test('default clock: real time, and expiry needs no call', async (t) => {
  const h = new MemoryNetlinkHandle();
  t.teardown(() => h.close());
  h.addLink({ name: 'eth0' });
  const sub = h.subscribe();
  t.teardown(() => sub.close());
  const it = sub[Symbol.asyncIterator]();
  await h.addAddress('eth0', '203.0.113.70/24', { validLifetime: 1 });
  t.match((await it.next()).value, { kind: 'address-added' });
  const started = performance.now();
  const removed = await Promise.race([it.next(), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000))]);
  t.not(removed, 'timeout', 'removed without any call');
  t.match(removed, { value: { kind: 'address-removed', address: { address: '203.0.113.70' } } });
  const took = performance.now() - started;
  t.ok(took >= 900 && took < 1500, `after about 1 s (${took.toFixed(0)} ms)`);
});
