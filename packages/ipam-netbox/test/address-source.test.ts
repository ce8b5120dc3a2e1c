// NetboxAddressSource step by step against the in-memory FakeNetbox and its manual clock:
// pending -> answered, release and leader changes while Netbox is answering, failures and
// their backoff, what a new term adopts, hand-over and sharing. Nothing here waits on
// real time.
import t, { type Test } from 'tap';
import { type AllocateRequest, type AllocateResult, type Allocation, Ipam, IpamError, isPending } from '@purelb/ipam-core';
import { NetboxAddressSource, NetboxError, type NetboxSourceEvent } from '../src/index.ts';
import { DEFAULT_V1_TOKEN, FakeNetbox } from '../src/testing/index.ts';
import { startEmulator, within } from './helpers.ts';

const settle = (): Promise<void> => FakeNetbox.settle();
const SPEC = { url: 'https://netbox.invalid', tenant: 'k8s' };

interface Setup {
  readonly fake: FakeNetbox;
  readonly ledger: Ipam;
  readonly source: NetboxAddressSource;
  /** Services that exist and want an address. */
  readonly live: Set<string>;
  /** Service -> sharing key. */
  readonly keys: Map<string, string>;
  readonly woken: string[];
  readonly events: NetboxSourceEvent[];
  /** Allocates `service` from group nb (IPv4 unless told). */
  ask(service: string, more?: Partial<AllocateRequest>): AllocateResult;
  /** Calls of one kind the fake received. */
  count(op: string): number;
}

function setup(t: Test, o: { prefixes?: string[]; token?: () => Promise<string>; reasonOf?: (e: unknown) => string | undefined } = {}): Setup {
  const fake = new FakeNetbox({ prefixes: o.prefixes ?? ['192.0.2.0/29', '2001:db8::/125'] });
  const ledger = new Ipam();
  const live = new Set<string>();
  const keys = new Map<string, string>();
  const woken: string[] = [];
  const events: NetboxSourceEvent[] = [];
  const source = new NetboxAddressSource({
    ledger: () => ledger,
    token: o.token ?? (() => Promise.resolve('fake-token')),
    reasonOf: o.reasonOf,
    holders: {
      serviceWants: (s) => live.has(s),
      sharingKeyInUse: (k) => [...keys].some(([s, key]) => key === k && live.has(s)),
      sharingKeyOf: (s) => keys.get(s),
    },
    wake: (s) => woken.push(s),
    onEvent: (e) => events.push(e),
    connect: fake.connect,
    clock: fake.clock,
    // No jitter: a backoff is half its ceiling, 500 ms, 1 s, 2 s, ...
    random: () => 0,
    retryBaseMs: 1000,
    retryMaxMs: 8000,
  });
  source.setGroups([{ name: 'nb', spec: SPEC }]);
  t.teardown(() => source.stop());
  const ask = (service: string, more: Partial<AllocateRequest> = {}): AllocateResult => {
    live.add(service);
    const sharingKey = keys.get(service);
    return source.allocate({ service, group: 'nb', families: ['IPv4'], ...(sharingKey ? { sharingKey } : {}), ...more });
  };
  return { fake, ledger, source, live, keys, woken, events, ask, count: (op) => fake.calls.filter((c) => c.op === op).length };
}

/** A source whose group nb is ready (lead() and Netbox answered). */
async function ready(t: Test, o?: Parameters<typeof setup>[1]): Promise<Setup> {
  const s = setup(t, o);
  s.source.lead();
  await settle();
  return s;
}

/** A ready source with shop/web pending: Netbox has its request and holds the answer. */
async function pendingWeb(t: Test): Promise<Setup> {
  const s = await ready(t);
  s.fake.holding = true;
  t.ok(isPending(s.ask('shop/web')), 'pending');
  await settle();
  return s;
}

/** Asserts the result is an allocation and returns it. */
function allocated(t: Test, r: AllocateResult): Allocation | undefined {
  if (isPending(r)) {
    t.fail(`pending: ${r.waitingFor}`);
    return undefined;
  }
  return r;
}

function throwsCode(t: Test, fn: () => unknown, code: string): Error | undefined {
  try {
    fn();
  } catch (e) {
    t.ok(e instanceof NetboxError || e instanceof IpamError, String(e));
    t.equal((e as NetboxError | IpamError).code, code, (e as Error).message);
    return e as Error;
  }
  t.fail(`expected ${code}, nothing was thrown`);
  return undefined;
}

t.test('pending until Netbox answers; the woken Service then gets the address Netbox recorded for it', async (t) => {
  const s = setup(t);
  t.same(s.source.validity('nb'), { valid: false, reason: 'NetboxResolving', message: 'resolving the Netbox source at https://netbox.invalid' });
  t.equal(s.count('resolve'), 0, 'nothing is asked before lead()');
  s.source.lead();
  const first = s.ask('shop/web');
  t.ok(isPending(first), 'pending while the group resolves');
  t.match(first, { pending: true, group: 'nb', waitingFor: /Netbox source of ServiceGroup "nb"/ });
  await settle();
  t.same(s.source.validity('nb'), { valid: true });
  t.same(s.woken, ['shop/web'], 'woken when the group is ready');
  s.woken.length = 0;

  s.fake.holding = true;
  t.match(s.ask('shop/web'), { pending: true, waitingFor: 'an IPv4 address from Netbox for shop/web' });
  t.ok(isPending(s.ask('shop/web')), 'still pending when asked again');
  await settle();
  t.equal(s.count('allocate'), 1, 'one request per holder at a time');
  t.same(s.woken, []);
  t.equal(s.ledger.get('shop/web'), undefined, 'nothing in the ledger while pending');

  t.equal(s.fake.answer(), 1);
  await settle();
  t.same(s.woken, ['shop/web'], 'woken when Netbox answers');
  t.same(allocated(t, s.ask('shop/web')), { group: 'nb', addresses: ['192.0.2.1'] });
  t.same(s.ledger.get('shop/web'), { group: 'nb', addresses: ['192.0.2.1'] }, 'adopted into the ledger');
  t.equal(s.fake.holderOf('192.0.2.1'), 'shop/web', 'Netbox records the Service');
  t.same(s.source.stats('nb')?.IPv4, { size: 6n, inUse: 1n, excluded: 0n });
  t.same(s.source.stats('nb')?.IPv6, { size: 7n, inUse: 0n, excluded: 0n });
  t.same(allocated(t, s.ask('shop/web')), { group: 'nb', addresses: ['192.0.2.1'] }, 'asking again changes nothing');
  t.equal(s.count('allocate'), 1, 'and asks Netbox nothing');
  t.match(s.events, [{ type: 'ready', group: 'nb' }, { type: 'allocated', holder: 'shop/web', address: '192.0.2.1' }]);
});

t.test('released while Netbox answers: the address goes straight back', async (t) => {
  const s = await pendingWeb(t);
  s.live.delete('shop/web');
  t.equal(s.source.release('shop/web'), false, 'it held nothing yet');
  s.fake.answer();
  await settle();
  s.fake.answer();
  await settle();
  t.same(s.fake.records(), [], 'given back to Netbox');
  t.match(s.events.at(-1), { type: 'released', holder: 'shop/web', address: '192.0.2.1', outcome: 'released', why: /went away while Netbox answered/ });
  t.same(s.source.stats('nb')?.IPv4.inUse, 0n);
});

t.test('leader change while pending: the late answer is dropped, and the next term adopts it from Netbox', async (t) => {
  const s = await pendingWeb(t);
  s.source.standby();
  s.woken.length = 0;
  s.fake.answer();
  await settle();
  t.same(s.woken, [], 'nobody is woken by an answer of the old term');
  t.equal(s.source.stats('nb'), undefined, 'a standby knows nothing of the group');
  t.equal(s.fake.holderOf('192.0.2.1'), 'shop/web', 'Netbox did record it');
  t.ok(isPending(s.ask('shop/web')), 'a standby asks nothing: pending');
  t.equal(s.count('allocate'), 1);

  s.fake.holding = false;
  s.source.lead();
  await settle();
  t.same(allocated(t, s.ask('shop/web')), { group: 'nb', addresses: ['192.0.2.1'] }, 'the new term finds it by its description');
  t.equal(s.count('allocate'), 1, 'without asking Netbox for another');
  t.equal(s.count('resolve'), 2, 'each term reads the group again');
});

t.test('Netbox failing: the error, nothing asked until the backoff has passed, then a retry; the backoff doubles', async (t) => {
  const s = await ready(t);
  s.fake.failNext('allocate');
  s.fake.failNext('allocate');
  t.ok(isPending(s.ask('shop/web')));
  await settle();
  t.same(s.woken, ['shop/web'], 'woken to report the failure');
  throwsCode(t, () => s.ask('shop/web'), 'NETBOX_UNAVAILABLE');
  t.match(s.events.at(-1), { type: 'allocation-failed', holder: 'shop/web', retryInMs: 500 });
  s.woken.length = 0;
  s.fake.clock.advance(499);
  throwsCode(t, () => s.ask('shop/web'), 'NETBOX_UNAVAILABLE');
  t.equal(s.count('allocate'), 1, 'not asked again within the backoff');
  t.same(s.woken, []);
  s.fake.clock.advance(1);
  t.same(s.woken, ['shop/web'], 'woken when the backoff has passed');

  t.ok(isPending(s.ask('shop/web')), 'asked again');
  await settle();
  t.equal(s.count('allocate'), 2);
  throwsCode(t, () => s.ask('shop/web'), 'NETBOX_UNAVAILABLE');
  t.match(s.events.at(-1), { type: 'allocation-failed', retryInMs: 1000 }, 'the second failure waits twice as long');
  s.fake.clock.advance(999);
  throwsCode(t, () => s.ask('shop/web'), 'NETBOX_UNAVAILABLE');
  s.fake.clock.advance(1);
  t.ok(isPending(s.ask('shop/web')));
  await settle();
  t.same(allocated(t, s.ask('shop/web'))?.addresses, ['192.0.2.1'], 'Netbox is back: the address');
  t.equal(s.count('allocate'), 3);
});

t.test('a group Netbox cannot resolve is invalid with a reason, and retried with backoff', async (t) => {
  const s = setup(t);
  s.fake.acceptToken('another-token');
  s.source.lead();
  t.ok(isPending(s.ask('shop/web')));
  await settle();
  t.match(s.source.validity('nb'), { valid: false, reason: 'NetboxUnauthorized', message: /Invalid token/ });
  t.same(s.woken, ['shop/web'], 'woken to report it');
  const e = throwsCode(t, () => s.ask('shop/web'), 'NETBOX_UNAVAILABLE');
  t.match(e?.message, /^Service shop\/web: ServiceGroup "nb": .*Invalid token/);
  t.equal(s.source.stats('nb'), undefined, 'no use or size while invalid');
  t.equal(s.fake.openConnections, 1);

  s.fake.acceptToken('fake-token');
  s.fake.clock.advance(499);
  await settle();
  t.equal(s.source.validity('nb')?.valid, false, 'not read again within the backoff');
  s.fake.clock.advance(1);
  await settle();
  t.same(s.source.validity('nb'), { valid: true }, 'read again after it');
  t.equal(s.fake.openConnections, 1, 'the failed connection was closed');
  t.same(s.woken, ['shop/web', 'shop/web']);
  t.ok(isPending(s.ask('shop/web')));
});

t.test('the token provider failing: the reason its owner names', async (t) => {
  class SecretMissing extends Error {}
  const s = setup(t, {
    token: () => Promise.reject(new SecretMissing('Secret purelb/netbox-client does not exist')),
    reasonOf: (e) => (e instanceof SecretMissing ? 'NetboxSecretMissing' : undefined),
  });
  s.source.lead();
  await settle();
  t.same(s.source.validity('nb'), { valid: false, reason: 'NetboxSecretMissing', message: 'Secret purelb/netbox-client does not exist' });
  t.equal(s.count('resolve'), 0, 'Netbox is not asked without a token');
});

t.test('on lead: what Netbox says is held is adopted; a duplicate and the addresses of Services that are gone go back', async (t) => {
  const s = setup(t);
  s.fake.addRecord('192.0.2.3', 'shop/web');
  s.fake.addRecord('192.0.2.4', 'shop/web');
  s.fake.addRecord('192.0.2.5', 'shop/ghost');
  s.fake.addRecord('192.0.2.6', undefined);
  s.live.add('shop/web');
  // The Service's status carries .4 (adopted by its owner): that one is kept.
  s.ledger.adopt({ service: 'shop/web', addresses: ['192.0.2.4'], group: 'nb' });
  s.source.lead();
  await settle();
  t.same(s.fake.records().map((r) => r.address), ['192.0.2.4', '192.0.2.6'], 'the duplicate and the ghost went back; a record not ours stays');
  t.same(allocated(t, s.ask('shop/web'))?.addresses, ['192.0.2.4']);
  t.equal(s.count('allocate'), 0);
  t.same(s.source.stats('nb')?.IPv4.inUse, 1n);
});

t.test('Netbox hands out an address a Service already uses: its record names that Service again, and another address is asked for', async (t) => {
  const s = setup(t);
  // shop/old carries .1, but a person deleted its record in Netbox.
  s.live.add('shop/old');
  s.ledger.adopt({ service: 'shop/old', addresses: ['192.0.2.1'], group: 'nb' });
  s.source.lead();
  await settle();
  t.ok(isPending(s.ask('shop/new')));
  await settle();
  t.ok(isPending(s.ask('shop/new')), 'Netbox gave it .1, which shop/old uses: pending again');
  await settle();
  t.equal(s.fake.holderOf('192.0.2.1'), 'shop/old', 'the record names the Service that uses it');
  t.match(s.events, [{ type: 'ready' }, { type: 'allocated', address: '192.0.2.1' }, { type: 'handed-over', address: '192.0.2.1', holder: 'shop/new', owner: 'shop/old' }]);
  t.same(allocated(t, s.ask('shop/new'))?.addresses, ['192.0.2.2'], 'another address');
  t.same(s.ledger.get('shop/old')?.addresses, ['192.0.2.1'], 'shop/old keeps its own');
});

t.test('sharing: one Netbox address for a key; it goes back when the last Service of the key is released', async (t) => {
  const s = setup(t);
  s.keys.set('shop/http', 'web');
  s.keys.set('shop/https', 'web');
  s.source.lead();
  await settle();
  t.ok(isPending(s.ask('shop/http', { ports: [{ protocol: 'TCP', port: 80 }] })));
  await settle();
  t.same(allocated(t, s.ask('shop/http', { ports: [{ protocol: 'TCP', port: 80 }] }))?.addresses, ['192.0.2.1']);
  t.equal(s.fake.holderOf('192.0.2.1'), 'sharing-key:web');
  t.same(allocated(t, s.ask('shop/https', { ports: [{ protocol: 'TCP', port: 443 }] }))?.addresses, ['192.0.2.1'], 'at once, without asking Netbox');
  t.equal(s.count('allocate'), 1);
  throwsCode(t, () => s.ask('shop/clash', { sharingKey: 'web', ports: [{ protocol: 'TCP', port: 80 }] }), 'IPAM_SHARING_CONFLICT');
  t.equal(s.source.release('shop/http'), true);
  await settle();
  t.equal(s.fake.holderOf('192.0.2.1'), 'sharing-key:web', 'kept while shop/https holds it');
  t.equal(s.source.release('shop/https'), true);
  await settle();
  t.same(s.fake.records(), [], 'then given back');
});

t.test('dual stack to single: the family no longer asked for goes back to Netbox', async (t) => {
  const s = await ready(t);
  const dual = { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' } as const;
  t.ok(isPending(s.ask('shop/web', dual)));
  await settle();
  t.ok(isPending(s.ask('shop/web', dual)), 'one family at a time');
  await settle();
  t.same(allocated(t, s.ask('shop/web', dual))?.addresses, ['192.0.2.1', '2001:db8::1']);
  t.same(allocated(t, s.ask('shop/web'))?.addresses, ['192.0.2.1']);
  await settle();
  t.same(s.fake.records().map((r) => r.address), ['192.0.2.1']);
});

t.test('a Service that moves to another group: reclaim gives its Netbox address back', async (t) => {
  const s = await ready(t);
  s.ask('shop/web');
  await settle();
  const before = allocated(t, s.ask('shop/web'))!;
  s.ledger.setGroups([{ name: 'local', v4pools: [{ pool: '198.51.100.0/30', subnet: '198.51.100.0/24' }] }]);
  s.ledger.allocate({ service: 'shop/web', group: 'local', families: ['IPv4'] });
  s.source.reclaim(before);
  await settle();
  t.same(s.fake.records(), []);
});

t.test('refused requests', async (t) => {
  const s = await ready(t, { prefixes: ['192.0.2.0/29'] });
  throwsCode(t, () => s.ask('shop/web', { addresses: ['192.0.2.3'] }), 'NETBOX_INVALID_CONFIG');
  throwsCode(t, () => s.ask('shop/web', { families: ['IPv6'] }), 'IPAM_FAMILY_UNAVAILABLE');
  throwsCode(t, () => s.ask('shop/web', { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }), 'IPAM_FAMILY_UNAVAILABLE');
  t.ok(isPending(s.ask('shop/web', { families: ['IPv6', 'IPv4'], policy: 'PreferDualStack' })), 'PreferDualStack takes the family there is');
  throwsCode(t, () => s.source.allocate({ service: 'shop/web', group: 'local', families: ['IPv4'] }), 'IPAM_UNKNOWN_GROUP');
});

t.test('groups: an unchanged spec keeps its state, a changed one starts over, a removed one is dropped; stop closes everything', async (t) => {
  const s = await ready(t);
  s.ask('shop/web');
  await settle();
  t.ok(s.source.serves('nb'));
  s.source.setGroups([{ name: 'nb', spec: { ...SPEC } }]);
  t.same(allocated(t, s.ask('shop/web'))?.addresses, ['192.0.2.1'], 'same spec: same state');
  s.source.setGroups([{ name: 'nb', spec: { ...SPEC, prefix: '192.0.2.0/29' } }]);
  t.equal(s.source.validity('nb')?.valid, false, 'a new spec is resolved again');
  await settle();
  t.same(s.source.validity('nb'), { valid: true });
  t.equal(s.fake.openConnections, 1, 'the old connection was closed');
  t.same(allocated(t, s.ask('shop/web'))?.addresses, ['192.0.2.1'], 'what Netbox holds is found again');
  s.source.setGroups([]);
  t.notOk(s.source.serves('nb'));
  t.equal(s.source.validity('nb'), undefined);
  await settle();
  t.equal(s.fake.openConnections, 0);
  s.source.setGroups([{ name: 'nb', spec: SPEC }]);
  await settle();
  t.equal(s.fake.openConnections, 1);
  await s.source.stop();
  t.equal(s.fake.openConnections, 0, 'stop closes it');
  t.equal(s.fake.clock.timers, 0, 'and leaves no timer');
});

t.test('the default connection: a NetboxClient and a NetboxPool against the HTTP emulator', async (t) => {
  const e = await startEmulator(t);
  e.addTenant('Kubernetes', 'k8s');
  e.addPrefix({ prefix: '192.0.2.0/29', tenant: 'k8s' });
  const ledger = new Ipam();
  let wake: () => void = () => undefined;
  const source = new NetboxAddressSource({
    ledger: () => ledger,
    token: () => Promise.resolve(DEFAULT_V1_TOKEN),
    holders: { serviceWants: () => true, sharingKeyInUse: () => true, sharingKeyOf: () => undefined },
    wake: () => wake(),
    client: { timeoutMs: 2000, retries: 1, backoffBaseMs: 5, backoffMaxMs: 20 },
  });
  t.teardown(() => source.stop());
  source.setGroups([{ name: 'nb', spec: { url: e.url, tenant: 'k8s' } }]);
  source.lead();
  const woken = (): Promise<void> => within(5000, new Promise<void>((r) => (wake = r)), 'a wake-up');
  let ready = woken();
  t.ok(isPending(source.allocate({ service: 'shop/web', group: 'nb', families: ['IPv4'] })));
  await ready;
  ready = woken();
  t.ok(isPending(source.allocate({ service: 'shop/web', group: 'nb', families: ['IPv4'] })));
  await ready;
  t.same(source.allocate({ service: 'shop/web', group: 'nb', families: ['IPv4'] }), { group: 'nb', addresses: ['192.0.2.1'] });
  t.match(e.addressSummary(), [{ address: '192.0.2.1/29', status: 'active', description: 'purelb:shop/web', tenant: 'k8s' }]);
});
