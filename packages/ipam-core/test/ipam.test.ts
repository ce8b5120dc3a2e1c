import t from 'tap';
import type { GroupSpec } from '../src/index.ts';
import { runSteps } from './helpers.ts';

const v4 = (pool: string, subnet = '192.0.2.0/24') => ({ pool, subnet, aggregation: 'default' });
const v6 = (pool: string, subnet = '2001:db8::/64') => ({ pool, subnet, aggregation: 'default' });

const dual: GroupSpec = { name: 'default', v4pools: [v4('192.0.2.10-192.0.2.12')], v6pools: [v6('2001:db8::10-2001:db8::11')] };
const only4: GroupSpec = { name: 'only4', v4pools: [v4('198.51.100.1-198.51.100.2', '198.51.100.0/24')] };
const only6: GroupSpec = { name: 'only6', v6pools: [v6('2001:db8:6::1-2001:db8:6::2', '2001:db8:6::/64')] };
const TCP = (port: number) => ({ protocol: 'TCP' as const, port });

t.test('first fit: lowest free address, pools in declaration order', async (t) => {
  const g: GroupSpec = { name: 'default', v4pools: [v4('192.0.2.200-192.0.2.201'), v4('192.0.2.5-192.0.2.5')] };
  runSteps(t, [
    { do: 'setGroups', groups: [g] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.200'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.201'] } },
    { do: 'allocate', req: { service: 'c', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.5'] } },
    { do: 'allocate', req: { service: 'd', families: ['IPv4'] }, error: 'IPAM_POOL_EXHAUSTED', message: /every IPv4 pool of ServiceGroup "default" is full/ },
    { do: 'release', service: 'a', want: true },
    { do: 'release', service: 'a', want: false },
    { do: 'allocate', req: { service: 'd', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.200'] } },
    { do: 'stats', group: 'default', v4: [3n, 3n], v6: [0n, 0n] },
  ]);
});

t.test('the same request on the same state gets the same answer and changes nothing', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'stats', group: 'default', v4: [3n, 1n], v6: [2n, 0n] },
  ]);
});

t.test('group choice: named group, group of the requested address, then default', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [only4, dual] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'b', group: 'only4', families: ['IPv4'] }, want: { group: 'only4', addresses: ['198.51.100.1'] } },
    { do: 'allocate', req: { service: 'c', families: ['IPv4'], addresses: ['198.51.100.2'] }, want: { group: 'only4', addresses: ['198.51.100.2'] } },
    { do: 'allocate', req: { service: 'd', group: 'nope', families: ['IPv4'] }, error: 'IPAM_UNKNOWN_GROUP', message: /ServiceGroup "nope" does not exist/ },
    { do: 'allocate', req: { service: 'e', group: 'only4', families: ['IPv4'], addresses: ['192.0.2.11'] }, error: 'IPAM_ADDRESS_NOT_IN_POOL', message: /192\.0\.2\.11 is in no IPv4 pool of ServiceGroup "only4"/ },
    { do: 'allocate', req: { service: 'e', families: ['IPv4'], addresses: ['203.0.113.9'] }, error: 'IPAM_ADDRESS_NOT_IN_POOL', message: /203\.0\.113\.9 is in no pool of any ServiceGroup/ },
  ]);
  runSteps(t, [
    { do: 'setGroups', groups: [only4] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, error: 'IPAM_UNKNOWN_GROUP', message: /no ServiceGroup "default"/ },
  ]);
});

t.test('specific addresses', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], addresses: ['192.0.2.12'] }, want: { group: 'default', addresses: ['192.0.2.12'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'], addresses: ['192.0.2.12'] }, error: 'IPAM_ADDRESS_IN_USE', message: /192\.0\.2\.12 in ServiceGroup "default" is held by Service a/ },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    // A Service may move to another specific address; its old one is freed.
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], addresses: ['192.0.2.11'] }, want: { group: 'default', addresses: ['192.0.2.11'] } },
    { do: 'allocate', req: { service: 'c', families: ['IPv4'], addresses: ['192.0.2.12'] }, want: { group: 'default', addresses: ['192.0.2.12'] } },
    { do: 'allocate', req: { service: 'd', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack', addresses: ['2001:db8::11', '192.0.2.10'] }, error: 'IPAM_ADDRESS_IN_USE' },
    { do: 'release', service: 'b', want: true },
    { do: 'allocate', req: { service: 'd', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack', addresses: ['2001:db8::11', '192.0.2.10'] }, want: { group: 'default', addresses: ['192.0.2.10', '2001:db8::11'] } },
  ]);
});

t.test('dual stack policies', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual, only4, only6] },
    { do: 'allocate', req: { service: 'req', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.10', '2001:db8::10'] } },
    { do: 'allocate', req: { service: 'v6first', families: ['IPv6', 'IPv4'], policy: 'PreferDualStack' }, want: { group: 'default', addresses: ['2001:db8::11', '192.0.2.11'] } },
    { do: 'allocate', req: { service: 'single6', group: 'only6', families: ['IPv6', 'IPv4'], policy: 'SingleStack' }, want: { group: 'only6', addresses: ['2001:db8:6::1'] } },
    { do: 'allocate', req: { service: 'r4', group: 'only4', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, error: 'IPAM_FAMILY_UNAVAILABLE', message: /ServiceGroup "only4" has no IPv6 pool/ },
    { do: 'allocate', req: { service: 'p4', group: 'only4', families: ['IPv4', 'IPv6'], policy: 'PreferDualStack' }, want: { group: 'only4', addresses: ['198.51.100.1'] } },
    { do: 'allocate', req: { service: 's6', group: 'only4', families: ['IPv6'] }, error: 'IPAM_FAMILY_UNAVAILABLE' },
    // v6 of default is now exhausted: Require fails, Prefer takes what there is.
    { do: 'allocate', req: { service: 'r2', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, error: 'IPAM_POOL_EXHAUSTED', message: /IPv6 pool/ },
    { do: 'allocate', req: { service: 'p2', families: ['IPv6', 'IPv4'], policy: 'PreferDualStack' }, want: { group: 'default', addresses: ['192.0.2.12'] } },
    { do: 'allocate', req: { service: 'p3', families: ['IPv6', 'IPv4'], policy: 'PreferDualStack' }, error: 'IPAM_POOL_EXHAUSTED' },
    { do: 'stats', group: 'default', v4: [3n, 3n], v6: [2n, 2n] },
  ]);
});

t.test('single to dual adds the missing family; dual to single releases the extra one', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.11'] } },
    { do: 'allocate', req: { service: 'a', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.10', '2001:db8::10'] } },
    { do: 'allocate', req: { service: 'a', families: ['IPv6'], policy: 'SingleStack' }, want: { group: 'default', addresses: ['2001:db8::10'] } },
    { do: 'stats', group: 'default', v4: [3n, 1n], v6: [2n, 1n] },
    // A failed change keeps what the Service had.
    { do: 'allocate', req: { service: 'a', families: ['IPv6'], addresses: ['2001:db8::99'] }, error: 'IPAM_ADDRESS_NOT_IN_POOL' },
    { do: 'allocate', req: { service: 'b', group: 'none', families: ['IPv4'] }, error: 'IPAM_UNKNOWN_GROUP' },
  ]);
});

t.test('a changed group moves the Service', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual, only4] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'a', group: 'only4', families: ['IPv4'] }, want: { group: 'only4', addresses: ['198.51.100.1'] } },
    { do: 'stats', group: 'default', v4: [3n, 0n], v6: [2n, 0n] },
    { do: 'stats', group: 'only4', v4: [2n, 1n], v6: [0n, 0n] },
  ]);
});

t.test('sharing: one key, one address per family, disjoint ports', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual, only4] },
    { do: 'allocate', req: { service: 'web', families: ['IPv4'], sharingKey: 'k', ports: [TCP(80)] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'tls', families: ['IPv4'], sharingKey: 'k', ports: [TCP(443)] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'dns', families: ['IPv4'], sharingKey: 'k', ports: [{ protocol: 'UDP', port: 80 }] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'clash', families: ['IPv4'], sharingKey: 'k', ports: [TCP(8080), TCP(443)] }, error: 'IPAM_SHARING_CONFLICT', message: /port TCP\/443 on shared address 192\.0\.2\.10 is already used by Service tls/ },
    { do: 'allocate', req: { service: 'plain', families: ['IPv4'], ports: [TCP(22)] }, want: { group: 'default', addresses: ['192.0.2.11'] } },
    { do: 'allocate', req: { service: 'other', families: ['IPv4'], sharingKey: 'k2', ports: [TCP(22)] }, want: { group: 'default', addresses: ['192.0.2.12'] } },
    // Asking for a shared address without the key, or with another key, is refused.
    { do: 'allocate', req: { service: 'x', families: ['IPv4'], addresses: ['192.0.2.10'], ports: [TCP(1)] }, error: 'IPAM_ADDRESS_IN_USE', message: /held by Services sharing key "k"/ },
    { do: 'allocate', req: { service: 'x', families: ['IPv4'], addresses: ['192.0.2.10'], sharingKey: 'k3' }, error: 'IPAM_ADDRESS_IN_USE' },
    // The key is bound to its address and its group.
    { do: 'allocate', req: { service: 'x', families: ['IPv4'], addresses: ['192.0.2.12'], sharingKey: 'k' }, error: 'IPAM_SHARING_CONFLICT', message: /sharing key "k" is bound to 192\.0\.2\.10/ },
    { do: 'allocate', req: { service: 'x', group: 'only4', families: ['IPv4'], sharingKey: 'k' }, error: 'IPAM_SHARING_CONFLICT', message: /bound to ServiceGroup "default", not "only4"/ },
    // Dual stack under the same key: the v4 is shared, a v6 is bound to the key.
    { do: 'allocate', req: { service: 'ssh', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack', sharingKey: 'k', ports: [TCP(22)] }, want: { group: 'default', addresses: ['192.0.2.10', '2001:db8::10'] } },
    { do: 'allocate', req: { service: 'ssh6', families: ['IPv6'], sharingKey: 'k', ports: [TCP(2222)] }, want: { group: 'default', addresses: ['2001:db8::10'] } },
    { do: 'stats', group: 'default', v4: [3n, 3n], v6: [2n, 1n] },
    // The address stays while any holder is left.
    { do: 'release', service: 'web', want: true },
    { do: 'release', service: 'tls', want: true },
    { do: 'release', service: 'dns', want: true },
    { do: 'stats', group: 'default', v4: [3n, 3n], v6: [2n, 1n] },
    { do: 'release', service: 'ssh', want: true },
    { do: 'stats', group: 'default', v4: [3n, 2n], v6: [2n, 1n] },
    { do: 'release', service: 'ssh6', want: true },
    // Key k is gone: it may bind anew, anywhere.
    { do: 'allocate', req: { service: 'x', group: 'only4', families: ['IPv4'], sharingKey: 'k' }, want: { group: 'only4', addresses: ['198.51.100.1'] } },
    { do: 'stats', group: 'default', v4: [3n, 2n], v6: [2n, 0n] },
  ]);
});

t.test('sharing: changing ports or leaving the key', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], sharingKey: 'k', ports: [TCP(80)] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'], sharingKey: 'k', ports: [TCP(81)] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'], sharingKey: 'k', ports: [TCP(80)] }, error: 'IPAM_SHARING_CONFLICT' },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'], sharingKey: 'k', ports: [TCP(82)] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'], ports: [TCP(82)] }, want: { group: 'default', addresses: ['192.0.2.11'] } },
  ]);
});

t.test('adoption keeps what exists, even outside every pool', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual] },
    { do: 'adopt', req: { service: 'old', addresses: ['192.0.2.10'], group: 'default' }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'adopt', req: { service: 'gone', addresses: ['203.0.113.7'], group: 'deleted' }, want: { group: 'deleted', addresses: ['203.0.113.7'] } },
    { do: 'adopt', req: { service: 'nogroup', addresses: ['2001:db8::11', '192.0.2.12'] }, want: { group: 'default', addresses: ['2001:db8::11', '192.0.2.12'] } },
    { do: 'adopt', req: { service: 'dup', addresses: ['192.0.2.10'] }, error: 'IPAM_ADDRESS_IN_USE' },
    { do: 'allocate', req: { service: 'new', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.11', '2001:db8::10'] } },
    { do: 'adopt', req: { service: 's1', addresses: ['203.0.113.8'], sharingKey: 'k', ports: [TCP(80)] }, want: { group: 'default', addresses: ['203.0.113.8'] } },
    { do: 'adopt', req: { service: 's2', addresses: ['203.0.113.8'], sharingKey: 'k', ports: [TCP(443)] }, want: { group: 'default', addresses: ['203.0.113.8'] } },
    { do: 'adopt', req: { service: 's3', addresses: ['203.0.113.8'], sharingKey: 'k', ports: [TCP(443)] }, error: 'IPAM_SHARING_CONFLICT' },
    { do: 'adopt', req: { service: 's3', addresses: ['203.0.113.9'], sharingKey: 'k' }, error: 'IPAM_SHARING_CONFLICT' },
    { do: 'adopt', req: { service: 'bad', addresses: [] }, error: 'IPAM_INVALID_REQUEST' },
    { do: 'setGroups', groups: [dual], orphans: ['gone=203.0.113.7', 's1=203.0.113.8', 's2=203.0.113.8'] },
    { do: 'stats', group: 'default', v4: [3n, 3n], v6: [2n, 2n] },
  ]);
});

t.test('re-configuration never takes an address away', async (t) => {
  const shrunk: GroupSpec = { name: 'default', v4pools: [v4('192.0.2.10-192.0.2.10')], v6pools: [] };
  runSteps(t, [
    { do: 'setGroups', groups: [dual, only4] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.11', '2001:db8::10'] } },
    { do: 'allocate', req: { service: 'c', group: 'only4', families: ['IPv4'] }, want: { group: 'only4', addresses: ['198.51.100.1'] } },
    { do: 'setGroups', groups: [shrunk], orphans: ['b=192.0.2.11', 'b=2001:db8::10', 'c=198.51.100.1'] },
    { do: 'stats', group: 'default', v4: [1n, 1n], v6: [0n, 0n] },
    // The same request again keeps the orphaned addresses.
    { do: 'allocate', req: { service: 'b', families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }, want: { group: 'default', addresses: ['192.0.2.11', '2001:db8::10'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv4'], addresses: ['192.0.2.11'] }, want: { group: 'default', addresses: ['192.0.2.11'] } },
    // An invalid configuration is refused whole.
    { do: 'setGroups', groups: [dual, { name: 'bad', v4pools: [v4('198.51.100.1-198.51.100.9', '192.0.2.0/24')] }], error: 'IPAM_INVALID_POOL' },
    { do: 'setGroups', groups: [dual, dual], error: 'IPAM_INVALID_POOL' },
    // Growing the pool back adopts the orphan into the counts; its address is not handed out twice.
    { do: 'setGroups', groups: [dual, only4], orphans: [] },
    { do: 'allocate', req: { service: 'd', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.12'] } },
    { do: 'allocate', req: { service: 'e', families: ['IPv4'] }, error: 'IPAM_POOL_EXHAUSTED' },
    { do: 'stats', group: 'default', v4: [3n, 3n], v6: [2n, 0n] },
  ]);
});

t.test('groups whose pools overlap count a held address in both', async (t) => {
  const wide: GroupSpec = { name: 'wide', v4pools: [v4('192.0.2.0/28')] };
  runSteps(t, [
    { do: 'setGroups', groups: [dual, wide] },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'] }, want: { group: 'default', addresses: ['192.0.2.10'] } },
    { do: 'allocate', req: { service: 'b', group: 'wide', families: ['IPv4'], addresses: ['192.0.2.10'] }, error: 'IPAM_ADDRESS_IN_USE' },
    { do: 'stats', group: 'wide', v4: [16n, 1n], v6: [0n, 0n] },
  ]);
});

t.test('a /64 pool works and reports its size', async (t) => {
  const big: GroupSpec = { name: 'default', v6pools: [v6('2001:db8::/64')] };
  runSteps(t, [
    { do: 'setGroups', groups: [big] },
    { do: 'allocate', req: { service: 'a', families: ['IPv6'] }, want: { group: 'default', addresses: ['2001:db8::'] } },
    { do: 'allocate', req: { service: 'b', families: ['IPv6'], addresses: ['2001:db8::ffff:ffff:ffff:ffff'] }, want: { group: 'default', addresses: ['2001:db8::ffff:ffff:ffff:ffff'] } },
    { do: 'allocate', req: { service: 'c', families: ['IPv6'] }, want: { group: 'default', addresses: ['2001:db8::1'] } },
    { do: 'stats', group: 'default', v4: [0n, 0n], v6: [1n << 64n, 3n] },
  ]);
});

t.test('bad requests name the Service and the field', async (t) => {
  runSteps(t, [
    { do: 'setGroups', groups: [dual] },
    { do: 'allocate', req: { service: 'a', families: [] }, error: 'IPAM_INVALID_REQUEST', message: /Service a: families/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4', 'IPv4'] }, error: 'IPAM_INVALID_REQUEST', message: /listed twice/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv5' as 'IPv4'] }, error: 'IPAM_INVALID_REQUEST', message: /"IPv5" is not/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], policy: 'RequireDualStack' }, error: 'IPAM_INVALID_REQUEST', message: /needs both/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], policy: 'Sometimes' as 'SingleStack' }, error: 'IPAM_INVALID_REQUEST', message: /policy/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], addresses: ['192.0.2.x'] }, error: 'IPAM_INVALID_REQUEST', message: /addresses\[0\]: "192\.0\.2\.x"/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], addresses: ['192.0.2.10', '192.0.2.11'] }, error: 'IPAM_INVALID_REQUEST', message: /addresses\[1\]: a second IPv4/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], addresses: ['2001:db8::10'] }, error: 'IPAM_INVALID_REQUEST', message: /"2001:db8::10" is an IPv6 address, but the Service asks for IPv4 only/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], ports: [{ protocol: 'ICMP' as 'TCP', port: 1 }] }, error: 'IPAM_INVALID_REQUEST', message: /ports\[0\]\.protocol/ },
    { do: 'allocate', req: { service: 'a', families: ['IPv4'], ports: [TCP(70000)] }, error: 'IPAM_INVALID_REQUEST', message: /ports\[0\]\.port/ },
    { do: 'allocate', req: { service: '', families: ['IPv4'] }, error: 'IPAM_INVALID_REQUEST' },
    { do: 'stats', group: 'default', v4: [3n, 0n], v6: [2n, 0n] },
  ]);
});

t.test('a failed change keeps even the order of the state (found by the property test)', async (t) => {
  runSteps(t, [
    { do: 'adopt', req: { service: 's4', addresses: ['2001:db8::2'] }, want: { group: 'default', addresses: ['2001:db8::2'] } },
    { do: 'adopt', req: { service: 's0', addresses: ['2001:db8::1'] }, want: { group: 'default', addresses: ['2001:db8::1'] } },
    { do: 'allocate', req: { service: 's4', families: ['IPv4'] }, error: 'IPAM_UNKNOWN_GROUP' },
  ]);
});
