// What the CRDs refuse at admission, as a table: the object, the field the API server
// names, and a fragment of its message. Used by test/admission.test.ts (against a real
// kube-apiserver) and by the allocator's bad-input suite (with the daemons running).
// Not a test file. docs/configuration-errors.md lists the same rows for operators.

export type AdmissionKind = 'ServiceGroup' | 'LBNodeAgent';

export interface AdmissionCase {
  readonly name: string;
  readonly kind: AdmissionKind;
  /** The object's spec, as sent. */
  readonly spec: unknown;
  /** The field the server names (`spec.local.v4pools[0].subnet`). */
  readonly field: string;
  /** What the message says about it. */
  readonly message: RegExp;
}

const local = (l: Record<string, unknown>): { local: Record<string, unknown> } => ({ local: l });
const v4 = (pool: string, subnet: string, aggregation?: string): Record<string, string> => ({ pool, subnet, ...(aggregation ? { aggregation } : {}) });
const agent = (l: Record<string, unknown>): { local: Record<string, unknown> } => ({ local: l });

export const REFUSED: readonly AdmissionCase[] = [
  // --- ServiceGroup: shape ---
  { name: 'both local and netbox', kind: 'ServiceGroup', spec: { local: { v4pools: [] }, netbox: { url: 'https://netbox.example/api' } }, field: 'spec', message: /exactly one of spec\.local and spec\.netbox must be set/ },
  { name: 'neither local nor netbox', kind: 'ServiceGroup', spec: {}, field: 'spec', message: /exactly one of spec\.local and spec\.netbox must be set/ },
  { name: 'legacy pool without subnet', kind: 'ServiceGroup', spec: local({ pool: '192.0.2.1-192.0.2.9' }), field: 'spec.local', message: /pool and spec\.local\.subnet go together/ },
  { name: 'legacy aggregation alone', kind: 'ServiceGroup', spec: local({ aggregation: '/32' }), field: 'spec.local', message: /aggregation needs spec\.local\.pool and spec\.local\.subnet/ },
  { name: 'a pool without subnet', kind: 'ServiceGroup', spec: local({ v4pools: [{ pool: '192.0.2.1-192.0.2.9' }] }), field: 'spec.local.v4pools[0].subnet', message: /Required value/ },
  { name: '65 pools', kind: 'ServiceGroup', spec: local({ v4pools: Array.from({ length: 65 }, (_, i) => v4(`192.0.2.${i}/32`, '192.0.2.0/24')) }), field: 'spec.local.v4pools', message: /must have at most 64 items/ },
  { name: 'pool text over 100 characters', kind: 'ServiceGroup', spec: local({ v4pools: [v4(`192.0.2.1-192.0.2.9${' '.repeat(100)}`, '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /Too long: may not be (more|longer) than 100/ },
  // --- ServiceGroup: pool and subnet text ---
  { name: 'range with dots for a dash', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1..9', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /pool "192\.0\.2\.1\.\.9" must be a range first-last .* or a CIDR/ },
  { name: 'range of three addresses', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.5-192.0.2.9', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /must be a range first-last/ },
  { name: 'an octet over 255', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.300', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /must be a range first-last/ },
  { name: 'empty pool', kind: 'ServiceGroup', spec: local({ v4pools: [v4('', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /pool "" must be a range first-last/ },
  { name: 'pool with a zone', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1%eth0-2001:db8::9%eth0', '2001:db8::/64')] }), field: 'spec.local.v6pools[0].pool', message: /must be a range first-last/ },
  { name: 'subnet prefix over 32', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.0/33')] }), field: 'spec.local.v4pools[0].subnet', message: /subnet "192\.0\.2\.0\/33" must be a CIDR/ },
  { name: 'subnet without a prefix', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.0')] }), field: 'spec.local.v4pools[0].subnet', message: /must be a CIDR/ },
  { name: 'legacy subnet not a CIDR', kind: 'ServiceGroup', spec: local({ pool: '192.0.2.1-192.0.2.9', subnet: 'lan' }), field: 'spec.local.subnet', message: /subnet "lan" must be a CIDR/ },
  { name: 'IPv4-mapped pool', kind: 'ServiceGroup', spec: local({ v6pools: [v4('::ffff:192.0.2.0/120', '2001:db8::/64')] }), field: 'spec.local.v6pools[0].pool', message: /pool "::ffff:192\.0\.2\.0\/120" is written as IPv4-mapped IPv6/ },
  { name: 'IPv4-mapped range', kind: 'ServiceGroup', spec: local({ v6pools: [v4('::ffff:192.0.2.1-::ffff:192.0.2.9', '2001:db8::/64')] }), field: 'spec.local.v6pools[0].pool', message: /IPv4-mapped IPv6/ },
  { name: 'IPv4-mapped subnet', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1-2001:db8::9', '::ffff:192.0.2.0/120')] }), field: 'spec.local.v6pools[0].subnet', message: /must be a CIDR/ },
  // --- ServiceGroup: families ---
  { name: 'IPv6 pool and subnet in v4pools', kind: 'ServiceGroup', spec: local({ v4pools: [v4('2001:db8::1-2001:db8::9', '2001:db8::/64')] }), field: 'spec.local.v4pools[0].pool', message: /v4pools holds IPv4 pools: pool "2001:db8::1-2001:db8::9" is IPv6/ },
  { name: 'IPv6 pool in v4pools', kind: 'ServiceGroup', spec: local({ v4pools: [v4('2001:db8::1-2001:db8::9', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /v4pools holds IPv4 pools: pool "2001:db8::1-2001:db8::9" is IPv6/ },
  { name: 'IPv6 subnet in v4pools', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '2001:db8::/64')] }), field: 'spec.local.v4pools[0].subnet', message: /v4pools holds IPv4 pools: subnet "2001:db8::\/64" is IPv6/ },
  { name: 'IPv4 subnet in v6pools', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1-2001:db8::9', '192.0.2.0/24')] }), field: 'spec.local.v6pools[0].subnet', message: /v6pools holds IPv6 pools: subnet "192\.0\.2\.0\/24" is IPv4/ },
  { name: 'IPv4 pool in v6pools', kind: 'ServiceGroup', spec: local({ v6pools: [v4('192.0.2.0/28', '2001:db8::/64')] }), field: 'spec.local.v6pools[0].pool', message: /v6pools holds IPv6 pools: pool "192\.0\.2\.0\/28" is IPv4/ },
  { name: 'second entry of v6pools IPv4', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1-2001:db8::9', '2001:db8::/64'), v4('192.0.2.1-192.0.2.9', '192.0.2.0/24')] }), field: 'spec.local.v6pools[1].pool', message: /v6pools holds IPv6 pools: pool "192\.0\.2\.1-192\.0\.2\.9" is IPv4/ },
  { name: 'v4pool (single form) IPv6', kind: 'ServiceGroup', spec: local({ v4pool: v4('2001:db8::1-2001:db8::9', '2001:db8::/64') }), field: 'spec.local.v4pool.pool', message: /v4pools holds IPv4 pools: pool .* is IPv6/ },
  { name: 'range mixing families', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-2001:db8::1', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /mixes IPv4 and IPv6/ },
  { name: 'legacy form: pool and subnet of different families', kind: 'ServiceGroup', spec: local({ pool: '192.0.2.1-192.0.2.9', subnet: '2001:db8::/64' }), field: 'spec.local.subnet', message: /pool "192\.0\.2\.1-192\.0\.2\.9" and subnet "2001:db8::\/64" are of different families/ },
  // --- ServiceGroup: pool inside subnet ---
  { name: 'pool outside its subnet', kind: 'ServiceGroup', spec: local({ v4pools: [v4('198.51.100.1-198.51.100.9', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /pool "198\.51\.100\.1-198\.51\.100\.9" does not lie inside subnet 192\.0\.2\.0\/24/ },
  { name: 'range half outside', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.250-192.0.3.5', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /does not lie inside subnet/ },
  { name: 'CIDR pool outside', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8:1::/64', '2001:db8::/64')] }), field: 'spec.local.v6pools[0].pool', message: /pool "2001:db8:1::\/64" does not lie inside subnet 2001:db8::\/64/ },
  { name: 'CIDR pool wider than its subnet', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.0/23', '192.0.2.0/24')] }), field: 'spec.local.v4pools[0].pool', message: /does not lie inside subnet/ },
  { name: 'legacy pool outside its subnet', kind: 'ServiceGroup', spec: local({ pool: '203.0.113.1-203.0.113.9', subnet: '192.0.2.0/24' }), field: 'spec.local.pool', message: /does not lie inside subnet/ },
  // --- ServiceGroup: subnet length ---
  { name: 'IPv4 subnet 0.0.0.0/0', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '0.0.0.0/0')] }), field: 'spec.local.v4pools[0].subnet', message: /subnet "0\.0\.0\.0\/0" is shorter than \/8, the shortest IPv4 subnet a pool may have/ },
  { name: 'IPv4 subnet /7', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.0/7')] }), field: 'spec.local.v4pools[0].subnet', message: /is shorter than \/8/ },
  { name: 'IPv6 subnet ::/0', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1-2001:db8::9', '::/0')] }), field: 'spec.local.v6pools[0].subnet', message: /subnet "::\/0" is shorter than \/16, the shortest IPv6 subnet a pool may have/ },
  { name: 'IPv6 subnet /15', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1-2001:db8::9', '2001:db8::/15')] }), field: 'spec.local.v6pools[0].subnet', message: /is shorter than \/16/ },
  { name: 'legacy subnet 0.0.0.0/0', kind: 'ServiceGroup', spec: local({ pool: '192.0.2.1-192.0.2.9', subnet: '0.0.0.0/0' }), field: 'spec.local.subnet', message: /is shorter than \/8/ },
  // --- ServiceGroup: aggregation ---
  { name: 'aggregation without a slash', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.0/24', '32')] }), field: 'spec.local.v4pools[0].aggregation', message: /aggregation must be "default" or "\/N"/ },
  { name: 'aggregation shorter than the subnet', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.0/24', '/16')] }), field: 'spec.local.v4pools[0].aggregation', message: /at least the subnet's prefix length/ },
  { name: 'aggregation /33 for IPv4', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.0/24', '/33')] }), field: 'spec.local.v4pools[0].aggregation', message: /at most \/32 \(IPv4\)/ },
  { name: 'aggregation /129', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1-2001:db8::9', '2001:db8::/64', '/129')] }), field: 'spec.local.v6pools[0].aggregation', message: /aggregation must be "default" or "\/N"/ },
  { name: 'legacy aggregation shorter than the subnet', kind: 'ServiceGroup', spec: local({ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24', aggregation: '/8' }), field: 'spec.local.aggregation', message: /at least the subnet's prefix length/ },
  // --- ServiceGroup: netbox ---
  { name: 'netbox without url', kind: 'ServiceGroup', spec: { netbox: { tenant: 'x' } }, field: 'spec.netbox.url', message: /Required value/ },
  { name: 'netbox url not http(s)', kind: 'ServiceGroup', spec: { netbox: { url: 'ftp://netbox.example' } }, field: 'spec.netbox.url', message: /url must be an http\(s\) URL/ },
  // --- LBNodeAgent: extlbint ---
  { name: 'extlbint lo', kind: 'LBNodeAgent', spec: agent({ extlbint: 'lo' }), field: 'spec.local.extlbint', message: /extlbint "lo" is reserved \(the loopback link\)/ },
  { name: 'extlbint all', kind: 'LBNodeAgent', spec: agent({ extlbint: 'all' }), field: 'spec.local.extlbint', message: /extlbint "all" is reserved \(a sysctl folder name\)/ },
  { name: 'extlbint default', kind: 'LBNodeAgent', spec: agent({ extlbint: 'default' }), field: 'spec.local.extlbint', message: /extlbint "default" is reserved/ },
  { name: 'extlbint .', kind: 'LBNodeAgent', spec: agent({ extlbint: '.' }), field: 'spec.local.extlbint', message: /extlbint "\." is reserved \(a path part\)/ },
  { name: 'extlbint ..', kind: 'LBNodeAgent', spec: agent({ extlbint: '..' }), field: 'spec.local.extlbint', message: /extlbint "\.\." is reserved/ },
  { name: 'extlbint with a slash', kind: 'LBNodeAgent', spec: agent({ extlbint: 'kube/lb0' }), field: 'spec.local.extlbint', message: /holds a "\/", ":" or whitespace/ },
  { name: 'extlbint with a space', kind: 'LBNodeAgent', spec: agent({ extlbint: 'kube lb0' }), field: 'spec.local.extlbint', message: /holds a "\/", ":" or whitespace/ },
  { name: 'extlbint with a tab', kind: 'LBNodeAgent', spec: agent({ extlbint: 'kube\tlb0' }), field: 'spec.local.extlbint', message: /whitespace/ },
  { name: 'extlbint an alias label', kind: 'LBNodeAgent', spec: agent({ extlbint: 'eth0:1' }), field: 'spec.local.extlbint', message: /holds a "\/", ":" or whitespace/ },
  { name: 'extlbint of 16 bytes', kind: 'LBNodeAgent', spec: agent({ extlbint: 'kube-lb-0123456x' }), field: 'spec.local.extlbint', message: /Too long: may not be (more|longer) than 15/ },
  { name: 'extlbint with non-ASCII letters', kind: 'LBNodeAgent', spec: agent({ extlbint: 'lb-été' }), field: 'spec.local.extlbint', message: /may hold only letters, digits/ },
  { name: 'extlbint empty', kind: 'LBNodeAgent', spec: agent({ extlbint: '' }), field: 'spec.local.extlbint', message: /at least 1 chars long/ },
  // --- LBNodeAgent: localint and sendgarp ---
  { name: 'localint empty', kind: 'LBNodeAgent', spec: agent({ localint: '' }), field: 'spec.local.localint', message: /at least 1 chars long/ },
  { name: 'localint unclosed group', kind: 'LBNodeAgent', spec: agent({ localint: '^eth(0' }), field: 'spec.local.localint', message: /error parsing regexp: missing closing \)/ },
  { name: 'localint bare repetition', kind: 'LBNodeAgent', spec: agent({ localint: '*eth' }), field: 'spec.local.localint', message: /error parsing regexp: missing argument to repetition operator/ },
  { name: 'localint bad class range', kind: 'LBNodeAgent', spec: agent({ localint: 'eth[9-0]' }), field: 'spec.local.localint', message: /error parsing regexp: invalid character class range/ },
  { name: 'localint lookahead (RE2 has none)', kind: 'LBNodeAgent', spec: agent({ localint: '(?=eth)eth0' }), field: 'spec.local.localint', message: /error parsing regexp: invalid or unsupported Perl syntax/ },
  { name: 'sendgarp not a boolean', kind: 'LBNodeAgent', spec: agent({ sendgarp: 'yes' }), field: 'spec.local.sendgarp', message: /must be of type boolean/ },
  { name: 'setARPSysctls not a boolean', kind: 'LBNodeAgent', spec: agent({ setARPSysctls: 'yes' }), field: 'spec.local.setARPSysctls', message: /must be of type boolean/ },
];

/** Inputs near the edges that must still be accepted. */
export const ACCEPTED: readonly { readonly name: string; readonly kind: AdmissionKind; readonly spec: unknown }[] = [
  { name: 'IPv4 /8 subnet', kind: 'ServiceGroup', spec: local({ v4pools: [v4('198.51.100.1-198.51.100.9', '198.0.0.0/8')] }) },
  { name: 'IPv6 /16 subnet', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::1-2001:db8::9', '2001::/16')] }) },
  { name: 'a /31 and a /32', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.8/31', '192.0.2.8/31'), v4('192.0.2.20/32', '192.0.2.20/32', '/32')] }) },
  { name: 'a /127 and a /128', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::8/127', '2001:db8::8/127'), v4('2001:db8::20/128', '2001:db8::20/128')] }) },
  { name: 'spaces around a range', kind: 'ServiceGroup', spec: local({ v4pools: [v4(' 192.0.2.1 - 192.0.2.9 ', '192.0.2.0/24')] }) },
  { name: 'subnet with host bits', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.7/24')] }) },
  { name: 'an IPv6 pool with ffff in it', kind: 'ServiceGroup', spec: local({ v6pools: [v4('2001:db8::ffff:1-2001:db8::ffff:9', '2001:db8::/64')] }) },
  { name: 'aggregation equal to the subnet, and /128', kind: 'ServiceGroup', spec: local({ v4pools: [v4('192.0.2.1-192.0.2.9', '192.0.2.0/24', '/24')], v6pools: [v4('2001:db8::1-2001:db8::9', '2001:db8::/64', '/128')] }) },
  { name: 'the legacy form', kind: 'ServiceGroup', spec: local({ pool: '192.0.2.1-192.0.2.9', subnet: '192.0.2.0/24', aggregation: 'default' }) },
  { name: 'extlbint of 15 bytes with . _ -', kind: 'LBNodeAgent', spec: agent({ extlbint: 'kube.lb_0-abcde', localint: '^(eth|ens)[0-9]+$', sendgarp: true }) },
  { name: 'localint default', kind: 'LBNodeAgent', spec: agent({ localint: 'default' }) },
];
