// PureLB objects checked at run time: what the CRDs refuse at admission is refused here
// too (objects admitted under an older schema), plus what only the daemons can tell.
import t from 'tap';
import { type LBNodeAgent, type Node, type ServiceGroup, parseLBNodeAgent, parseServiceGroup, serviceGroupStatus, trimNode } from '../src/index.ts';

const agent = (local: Record<string, unknown> | undefined): LBNodeAgent => ({ metadata: { name: 'default', namespace: 'purelb' }, spec: local === undefined ? {} : { local } });

t.test('LBNodeAgent: every refused input names the object, the field and what is wrong', async (t) => {
  const table: [string, Record<string, unknown>, string, RegExp][] = [
    ['loopback as the virtual link', { extlbint: 'lo' }, 'spec.local.extlbint', /"lo" is reserved \(the loopback link\)/],
    ['a sysctl folder name', { extlbint: 'all' }, 'spec.local.extlbint', /"all" is reserved \(a sysctl folder name\)/],
    ['default as a link name', { extlbint: 'default' }, 'spec.local.extlbint', /"default" is reserved/],
    ['dot', { extlbint: '.' }, 'spec.local.extlbint', /"\." is reserved \(a path part\)/],
    ['dot dot', { extlbint: '..' }, 'spec.local.extlbint', /"\.\." is reserved/],
    ['a slash', { extlbint: 'kube/lb0' }, 'spec.local.extlbint', /holds a "\/", ":" or whitespace/],
    ['whitespace', { extlbint: 'kube lb0' }, 'spec.local.extlbint', /whitespace/],
    ['a colon (an alias label)', { extlbint: 'eth0:1' }, 'spec.local.extlbint', /":"/],
    ['16 bytes', { extlbint: 'kube-lb-0123456x' }, 'spec.local.extlbint', /is 16 bytes; Linux link names are at most 15/],
    ['multi-byte characters over 15 bytes', { extlbint: 'ééééééééé' }, 'spec.local.extlbint', /is 18 bytes/],
    ['a character outside the pattern', { extlbint: 'kube@lb0' }, 'spec.local.extlbint', /only letters, digits/],
    ['empty', { extlbint: '' }, 'spec.local.extlbint', /must be a link name/],
    ['localint empty', { localint: '' }, 'spec.local.localint', /an empty one would match every link/],
    ['localint that does not compile', { localint: '^eth(0' }, 'spec.local.localint', /"\^eth\(0" is not a regular expression: .*Unterminated group/],
    ['localint with a bad class', { localint: '[z-a]' }, 'spec.local.localint', /not a regular expression/],
  ];
  for (const [what, local, field, message] of table) {
    const got = parseLBNodeAgent(agent(local));
    t.equal(got.ok, false, `${what}: refused`);
    if (got.ok) continue;
    t.equal(got.field, field, `${what}: field`);
    t.match(got.message, /^LBNodeAgent "default": spec\.local\.\w+: /, `${what}: names the object and the field`);
    t.match(got.message, message, `${what}: says what is wrong`);
  }
});

t.test('LBNodeAgent: spec.local that is not an object is refused, not read as all defaults', async (t) => {
  for (const [what, local, message] of [
    ['a string', 'eth0', 'spec.local: must be an object (extlbint, localint, sendgarp, setARPSysctls), not string "eth0"'],
    ['a number', 7, 'spec.local: must be an object (extlbint, localint, sendgarp, setARPSysctls), not number 7'],
    ['a list', ['eth0'], 'spec.local: must be an object (extlbint, localint, sendgarp, setARPSysctls), not a list'],
  ] as const) {
    const got = parseLBNodeAgent({ metadata: { name: 'default', namespace: 'purelb' }, spec: { local } } as unknown as LBNodeAgent);
    t.equal(got.ok, false, `${what}: refused`);
    if (!got.ok) t.equal(got.message, `LBNodeAgent "default": ${message}`, `${what}: names the field`);
  }
});

t.test('LBNodeAgent: accepted inputs, with the defaults', async (t) => {
  const ok = (local: Record<string, unknown> | undefined) => {
    const got = parseLBNodeAgent(agent(local));
    return got.ok ? got.settings : got.message;
  };
  t.same(ok(undefined), { extlbint: 'kube-lb0', localint: 'default', sendgarp: false, setARPSysctls: false });
  t.same(ok({ extlbint: 'purelb.v_1-x', localint: '^(eth|ens)[0-9]+$', sendgarp: true, setARPSysctls: true }), { extlbint: 'purelb.v_1-x', localint: /^(eth|ens)[0-9]+$/, sendgarp: true, setARPSysctls: true });
  t.same(ok({ extlbint: 'abcdefghijklmno' }), { extlbint: 'abcdefghijklmno', localint: 'default', sendgarp: false, setARPSysctls: false }, '15 bytes is the most');
  t.equal(ok({ setARPSysctls: 'yes' }), 'LBNodeAgent "default": spec.local.setARPSysctls: must be true or false', 'setARPSysctls not a boolean: refused, naming the field');
});

const sg = (local: Record<string, unknown>): ServiceGroup => ({ metadata: { name: 'web', namespace: 'purelb', generation: 3 }, spec: { local } });

t.test('ServiceGroup: subnets shorter than /8 (IPv4) or /16 (IPv6) are invalid', async (t) => {
  const table: [string, Record<string, unknown>, string, RegExp][] = [
    ['0.0.0.0/0', { v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '0.0.0.0/0' }] }, 'spec.local.v4pools[0].subnet', /0\.0\.0\.0\/0 is shorter than \/8, the shortest IPv4 subnet/],
    ['/7', { v4pools: [{ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/7' }] }, 'spec.local.v4pools[0].subnet', /192\.0\.0\.0\/7 is shorter than \/8/],
    ['::/0', { v6pools: [{ pool: '2001:db8::1-2001:db8::9', subnet: '::/0' }] }, 'spec.local.v6pools[0].subnet', /::\/0 is shorter than \/16, the shortest IPv6 subnet/],
    ['legacy form /4', { pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/4' }, 'spec.local.subnet', /shorter than \/8/],
    ['v6pool /15', { v6pool: { pool: '2001:db8::1-2001:db8::9', subnet: '2001:db8::/15' } }, 'spec.local.v6pool.subnet', /2001:db8::\/15|2000::\/15/],
  ];
  for (const [what, local, field, message] of table) {
    const got = parseServiceGroup(sg(local));
    t.equal(got.ok, false, `${what}: invalid`);
    if (got.ok) continue;
    t.equal(got.field, field, `${what}: field`);
    t.match(got.message, /^ServiceGroup "web": /, `${what}: names the object`);
    t.match(got.message, message, `${what}: message`);
  }
  t.ok(parseServiceGroup(sg({ v4pools: [{ pool: '198.51.100.1-198.51.100.9', subnet: '198.0.0.0/8' }], v6pools: [{ pool: '2001:db8::1-2001:db8::9', subnet: '2001::/16' }] })).ok, '/8 and /16 are accepted');
});

t.test('ServiceGroup: family mismatches say so, and IPv4-mapped pools are refused', async (t) => {
  const table: [string, Record<string, unknown>, RegExp][] = [
    ['IPv6 pool in v4pools', { v4pools: [{ pool: '2001:db8::1-2001:db8::9', subnet: '2001:db8::/64' }] }, /v4pools\[0\]\.pool: "2001:db8::1-2001:db8::9" is IPv6, but this list holds IPv4 pools/],
    ['IPv4 subnet in v6pools', { v6pools: [{ pool: '2001:db8::1-2001:db8::9', subnet: '192.0.2.0/24' }] }, /v6pools\[0\]\.subnet: "192\.0\.2\.0\/24" is IPv4, but the pool is IPv6/],
    ['IPv4-mapped pool', { v6pools: [{ pool: '::ffff:192.0.2.0/120', subnet: '::ffff:192.0.2.0/120' }] }, /IPv4-mapped/],
  ];
  for (const [what, local, message] of table) {
    const got = parseServiceGroup(sg(local));
    t.match(got.ok ? 'valid' : got.message, message, what);
  }
});

t.test('ServiceGroup status carries the excluded count per family', async (t) => {
  const status = serviceGroupStatus(sg({}), { valid: true }, { IPv4: { size: 256n, inUse: 3n, excluded: 4n }, IPv6: { size: 0n, inUse: 0n, excluded: 0n } }, '2026-01-01T00:00:00Z');
  t.same(status.ipv4, { size: '256', inUse: '3', excluded: '4', usage: '3/256' });
  t.same(status.ipv6, { size: '0', inUse: '0', excluded: '0', usage: '0/0' });
});

t.test('trimNode keeps the name and the addresses only', async (t) => {
  const raw = {
    metadata: { name: 'n1', uid: 'u', resourceVersion: '7', labels: { a: 'b' }, managedFields: [{}] },
    spec: { podCIDR: '198.51.100.0/24' },
    status: { addresses: [{ type: 'InternalIP', address: '192.0.2.11' }, { type: 'Hostname', address: 'n1' }], capacity: { cpu: '2' } },
  } as unknown as Node;
  t.same(trimNode(raw), { metadata: { name: 'n1', uid: 'u', resourceVersion: '7' }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.11' }, { type: 'Hostname', address: 'n1' }] } });
  t.same(trimNode({ metadata: { name: 'bare' } }).status, { addresses: [] });
});
