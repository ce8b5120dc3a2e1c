// Bad input against the real API server with the allocator running. The table below is
// the record of what PureLB refuses and how: each row is an input, where it is caught
// (admission, an Event, a status condition, an address not handed out) and what the user
// reads. After every row: the allocator still runs, every healthy Service keeps its
// address, and no Service was given an address a Node reports. Totals go to
// bench-results/badinput.json, as the allocator's part (the node agent's half,
// apps/lbnodeagent/test/badinput.e2e.test.ts, writes its own; metrics is their sum).
//
// Adding rows: a row is data (`BadInput`); `restart: true` restarts the daemon under the
// input before checking `then`. The node agent's rows are in its own suite.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { type DaemonProcess, PURELB_NAMESPACE, installPureLB, startAllocator, waitFor, withLab } from '@purelb/lab';
import { recordBadInputPart } from '../../../bench/lib.ts';
import { REFUSED } from '../../../charts/purelb/test/admission-cases.ts';
import { type SvcOptions, applyGroup, createService, ensureNamespace, events, fromAllocator, getService, ips, settle } from './e2e-helpers.ts';

const NS = 'badinput';
const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');

// --- the table's types --------------------------------------------------------------

type Category = 'admission' | 'servicegroup' | 'annotation' | 'another-class' | 'node-address' | 'subnet-reserved';

/** One thing put into the cluster. */
type Input =
  | { readonly kind: 'ServiceGroup' | 'LBNodeAgent'; readonly name: string; readonly spec: unknown }
  | { readonly kind: 'Service'; readonly name: string; readonly svc?: SvcOptions; readonly forgedStatus?: { readonly ingress: readonly string[]; readonly annotations?: Record<string, string> }; readonly waitForAddresses?: number }
  | { readonly kind: 'Node'; readonly name: string; readonly addresses: readonly (readonly [type: string, address: string])[] }
  | { readonly kind: 'delete'; readonly path: string };

/** What the user sees. */
type Expect =
  | { readonly at: 'admission'; readonly field: string; readonly message: RegExp }
  | { readonly at: 'event'; readonly on: 'Service' | 'ServiceGroup'; readonly name: string; readonly reason: string; readonly message: RegExp }
  | { readonly at: 'condition'; readonly group: string; readonly type: string; readonly status: 'True' | 'False'; readonly reason?: string; readonly message?: RegExp }
  | { readonly at: 'excluded'; readonly group: string; readonly family: 'ipv4' | 'ipv6'; readonly count: string }
  | { readonly at: 'addresses'; readonly service: string; readonly addresses: readonly string[] | number }
  | { readonly at: 'no-address'; readonly service: string }
  /** A Service of another class: status and annotations exactly as forged, no Event from the allocator. */
  | { readonly at: 'untouched'; readonly service: string; readonly ingress: readonly string[]; readonly annotations: Record<string, string> };

interface BadInput {
  readonly name: string;
  readonly category: Category;
  /** The daemon under test (rows for the agent come with their own runner). */
  readonly daemon?: 'allocator';
  /** Put in order; a refused one (admission rows) stops the list. */
  readonly inputs: readonly Input[];
  readonly expect: readonly Expect[];
  /** Restart the daemon with the input in place before `then`. */
  readonly restart?: boolean;
  /** A second phase: more inputs and what they show (after the restart, if `restart`). */
  readonly then?: { readonly inputs: readonly Input[]; readonly expect: readonly Expect[] };
  /** Services that may hold a Node's address: they held it before the Node claimed it. */
  readonly mayHoldNodeAddress?: readonly string[];
}

// --- the table ---------------------------------------------------------------------

const sg = (name: string, spec: unknown): Input => ({ kind: 'ServiceGroup', name, spec });
const pools4 = (...p: [pool: string, subnet: string][]): { local: { v4pools: { pool: string; subnet: string }[] } } => ({ local: { v4pools: p.map(([pool, subnet]) => ({ pool, subnet })) } });
const pools6 = (...p: [pool: string, subnet: string][]): { local: { v6pools: { pool: string; subnet: string }[] } } => ({ local: { v6pools: p.map(([pool, subnet]) => ({ pool, subnet })) } });
const svc = (name: string, o: SvcOptions = {}, waitForAddresses?: number): Input => ({ kind: 'Service', name, svc: o, ...(waitForAddresses === undefined ? {} : { waitForAddresses }) });
const inGroup = (group: string, extra: Record<string, string> = {}): SvcOptions => ({ annotations: { 'purelb.io/service-group': group, ...extra } });
const failed = (name: string, message: RegExp): Expect => ({ at: 'event', on: 'Service', name, reason: 'AllocationFailed', message });
const warned = (name: string, reason: string, message: RegExp): Expect => ({ at: 'event', on: 'Service', name, reason, message });
const groupWarned = (name: string, reason: string, message: RegExp): Expect => ({ at: 'event', on: 'ServiceGroup', name, reason, message });
const none = (service: string): Expect => ({ at: 'no-address', service });
const got = (service: string, addresses: readonly string[] | number): Expect => ({ at: 'addresses', service, addresses });
const node = (name: string, ...addresses: [string, string][]): Input => ({ kind: 'Node', name, addresses });

/** The baseline groups; rows that edit them are restored after. */
const BASE_GROUPS: Record<string, Record<string, unknown>> = {
  default: { local: { v4pools: [{ pool: '192.0.2.200-192.0.2.239', subnet: '192.0.2.0/24' }], v6pools: [{ pool: '2001:db8::200-2001:db8::23f', subnet: '2001:db8::/64' }] } },
  other: pools4(['198.51.100.10-198.51.100.19', '198.51.100.0/24']),
};

const ADMISSION: BadInput[] = REFUSED.map((c, i) => ({
  name: `admission: ${c.kind} ${c.name}`,
  category: 'admission',
  inputs: [{ kind: c.kind, name: `adm-${i}`, spec: c.spec }],
  expect: [{ at: 'admission', field: c.field, message: c.message }],
}));

const RUNTIME: BadInput[] = [
  // --- ServiceGroups only the allocator can judge ---
  {
    name: 'a range whose first address is above its last',
    category: 'servicegroup',
    inputs: [sg('bi-first-last', pools4(['203.0.113.20-203.0.113.10', '203.0.113.0/24']))],
    expect: [
      { at: 'condition', group: 'bi-first-last', type: 'Valid', status: 'False', reason: 'InvalidPool', message: /spec\.local\.v4pools\[0\]\.pool: .*first <= last/ },
      groupWarned('bi-first-last', 'InvalidServiceGroup', /spec\.local\.v4pools\[0\]\.pool: .*first <= last.*it has no valid pools since this allocator started/),
    ],
  },
  {
    name: 'two pools of one group overlap',
    category: 'servicegroup',
    inputs: [sg('bi-self-overlap', pools4(['203.0.113.0/28', '203.0.113.0/24'], ['203.0.113.8-203.0.113.20', '203.0.113.0/24']))],
    expect: [{ at: 'condition', group: 'bi-self-overlap', type: 'Valid', status: 'False', reason: 'OverlappingPools', message: /v4pools\[1\]\.pool "203\.0\.113\.8-203\.0\.113\.20" overlaps v4pools\[0\]\.pool/ }],
  },
  {
    name: 'a pool overlaps another group\'s: a Warning on both, and a condition',
    category: 'servicegroup',
    inputs: [sg('bi-overlap', pools4(['192.0.2.205-192.0.2.210', '192.0.2.0/24']))],
    expect: [
      groupWarned('bi-overlap', 'OverlappingPools', /spec\.local\.v4pools\[0\] "192\.0\.2\.205-192\.0\.2\.210" overlaps ServiceGroup default v4pools\[0\] "192\.0\.2\.200-192\.0\.2\.239" at 192\.0\.2\.205-192\.0\.2\.210/),
      groupWarned('default', 'OverlappingPools', /overlaps ServiceGroup bi-overlap v4pools\[0\]/),
      { at: 'condition', group: 'bi-overlap', type: 'Overlapping', status: 'True', reason: 'PoolsOverlap', message: /counts as in use in both/ },
      { at: 'condition', group: 'bi-overlap', type: 'Valid', status: 'True' },
    ],
  },
  {
    name: 'a Service names a group that is invalid (never valid)',
    category: 'servicegroup',
    inputs: [sg('bi-never-valid', pools4(['203.0.113.30-203.0.113.25', '203.0.113.0/24'])), svc('bi-never-valid-svc', inGroup('bi-never-valid'))],
    expect: [failed('bi-never-valid-svc', /ServiceGroup "bi-never-valid" is invalid \(spec\.local\.v4pools\[0\]\.pool: .*first <= last.*\); the Service gets an address once it is fixed/), none('bi-never-valid-svc')],
  },
  {
    name: 'a Service names a group that does not exist',
    category: 'servicegroup',
    inputs: [svc('bi-no-group', inGroup('nope'))],
    expect: [failed('bi-no-group', /ServiceGroup "nope" does not exist/), none('bi-no-group')],
  },
  {
    name: 'a group name in the wrong case',
    category: 'servicegroup',
    inputs: [svc('bi-case', inGroup('Default'))],
    expect: [failed('bi-case', /ServiceGroup "Default" does not exist/), none('bi-case')],
  },
  {
    name: 'an edit makes a group invalid: its last valid pools stay in force',
    category: 'servicegroup',
    inputs: [
      sg('bi-edit', pools4(['203.0.113.32-203.0.113.35', '203.0.113.0/24'])),
      svc('bi-edit-a', inGroup('bi-edit'), 1),
      sg('bi-edit', pools4(['203.0.113.35-203.0.113.32', '203.0.113.0/24'])),
      svc('bi-edit-b', inGroup('bi-edit')),
    ],
    expect: [
      { at: 'condition', group: 'bi-edit', type: 'Valid', status: 'False', reason: 'InvalidPool' },
      groupWarned('bi-edit', 'InvalidServiceGroup', /spec\.local\.v4pools\[0\]\.pool: .*first <= last.*; its last valid pools stay in force/),
      got('bi-edit-a', ['203.0.113.32']),
      got('bi-edit-b', ['203.0.113.33']),
    ],
  },
  {
    name: 'a group with no pools',
    category: 'servicegroup',
    inputs: [sg('bi-empty', { local: {} }), svc('bi-empty-svc', inGroup('bi-empty'))],
    expect: [failed('bi-empty-svc', /ServiceGroup "bi-empty" has no IPv4 pool/), none('bi-empty-svc')],
  },
  {
    name: 'RequireDualStack from a group without IPv6',
    category: 'servicegroup',
    inputs: [svc('bi-dual-v4only', { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack', annotations: { 'purelb.io/service-group': 'other' } })],
    expect: [failed('bi-dual-v4only', /ServiceGroup "other" has no IPv6 pool/), none('bi-dual-v4only')],
  },
  {
    name: 'the group of a running Service is deleted: it keeps its address',
    category: 'servicegroup',
    inputs: [sg('bi-deleted', pools4(['203.0.113.36-203.0.113.37', '203.0.113.0/24'])), svc('bi-deleted-svc', inGroup('bi-deleted'), 1), { kind: 'delete', path: `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/bi-deleted` }],
    expect: [warned('bi-deleted-svc', 'AddressOutsidePool', /203\.0\.113\.36 is no longer in a pool of ServiceGroup bi-deleted; the Service keeps it/), got('bi-deleted-svc', ['203.0.113.36'])],
  },
  {
    name: 'a pool shrinks under a running Service: it keeps its address',
    category: 'servicegroup',
    inputs: [sg('bi-shrink', pools4(['203.0.113.38-203.0.113.39', '203.0.113.0/24'])), svc('bi-shrink-a', inGroup('bi-shrink'), 1), svc('bi-shrink-b', inGroup('bi-shrink'), 1), sg('bi-shrink', pools4(['203.0.113.38-203.0.113.38', '203.0.113.0/24']))],
    expect: [warned('bi-shrink-b', 'AddressOutsidePool', /203\.0\.113\.39 is no longer in a pool of ServiceGroup bi-shrink/), got('bi-shrink-b', ['203.0.113.39'])],
  },
  {
    name: 'the default group becomes invalid; after a restart a new Service is told it is invalid, not missing',
    category: 'servicegroup',
    inputs: [sg('default', { local: { v4pools: [{ pool: '192.0.2.239-192.0.2.200', subnet: '192.0.2.0/24' }] } })],
    expect: [{ at: 'condition', group: 'default', type: 'Valid', status: 'False', reason: 'InvalidPool' }],
    restart: true,
    then: {
      inputs: [svc('bi-default-invalid')],
      expect: [failed('bi-default-invalid', /names no ServiceGroup, and ServiceGroup "default" \(the default\) is invalid \(spec\.local\.v4pools\[0\]\.pool: .*first <= last/), none('bi-default-invalid')],
    },
  },
  // --- Service annotations ---
  {
    name: 'purelb.io/addresses empty: treated as not set, with a Warning',
    category: 'annotation',
    inputs: [svc('bi-addr-empty', { annotations: { 'purelb.io/addresses': '' } })],
    expect: [warned('bi-addr-empty', 'InvalidAnnotation', /annotation purelb\.io\/addresses is empty; treated as not set: the Service gets the first free address/), got('bi-addr-empty', 1)],
  },
  {
    name: 'purelb.io/addresses blank',
    category: 'annotation',
    inputs: [svc('bi-addr-blank', { annotations: { 'purelb.io/addresses': '   ' } })],
    expect: [warned('bi-addr-blank', 'InvalidAnnotation', /purelb\.io\/addresses is empty; treated as not set/), got('bi-addr-blank', 1)],
  },
  {
    name: 'purelb.io/service-group empty: refused',
    category: 'annotation',
    inputs: [svc('bi-group-empty', inGroup(''))],
    expect: [warned('bi-group-empty', 'InvalidAnnotation', /annotation purelb\.io\/service-group is empty; name a ServiceGroup, or remove the annotation/), none('bi-group-empty')],
  },
  {
    name: 'purelb.io/service-group " default": refused',
    category: 'annotation',
    inputs: [svc('bi-group-lead', inGroup(' default'))],
    expect: [warned('bi-group-lead', 'InvalidAnnotation', /purelb\.io\/service-group: " default" has leading or trailing whitespace; write "default"/), none('bi-group-lead')],
  },
  {
    name: 'purelb.io/service-group "default ": refused',
    category: 'annotation',
    inputs: [svc('bi-group-trail', inGroup('default '))],
    expect: [warned('bi-group-trail', 'InvalidAnnotation', /"default " has leading or trailing whitespace/), none('bi-group-trail')],
  },
  {
    name: 'purelb.io/service-group with a tab: refused',
    category: 'annotation',
    inputs: [svc('bi-group-tab', inGroup('\tother'))],
    expect: [warned('bi-group-tab', 'InvalidAnnotation', /has leading or trailing whitespace; write "other"/), none('bi-group-tab')],
  },
  {
    name: 'an edit to a blank service-group does not take the address away',
    category: 'annotation',
    inputs: [svc('bi-group-edit', inGroup('other', { 'purelb.io/addresses': '198.51.100.15' }), 1), { kind: 'Service', name: 'bi-group-edit', svc: inGroup(' ') }],
    expect: [warned('bi-group-edit', 'InvalidAnnotation', /service-group is empty/), got('bi-group-edit', ['198.51.100.15'])],
  },
  {
    name: 'spec.loadBalancerIP disagrees with purelb.io/addresses',
    category: 'annotation',
    inputs: [svc('bi-lbip', { annotations: { 'purelb.io/addresses': '192.0.2.231' }, loadBalancerIP: '192.0.2.232' })],
    expect: [warned('bi-lbip', 'LoadBalancerIPIgnored', /spec\.loadBalancerIP "192\.0\.2\.232" disagrees with annotation purelb\.io\/addresses "192\.0\.2\.231"; the annotation wins/), got('bi-lbip', ['192.0.2.231'])],
  },
  {
    name: 'an IPv4-mapped IPv6 address, dotted',
    category: 'annotation',
    inputs: [svc('bi-mapped', { annotations: { 'purelb.io/addresses': '::ffff:192.0.2.231' } })],
    expect: [failed('bi-mapped', /annotation purelb\.io\/addresses entry 1: "::ffff:192\.0\.2\.231" is an IPv4-mapped IPv6 address; write the IPv4 address 192\.0\.2\.231/), none('bi-mapped')],
  },
  {
    name: 'an IPv4-mapped IPv6 address, in hex',
    category: 'annotation',
    inputs: [svc('bi-mapped-hex', { annotations: { 'purelb.io/addresses': '::ffff:c000:2e7' } })],
    expect: [failed('bi-mapped-hex', /"::ffff:c000:2e7" is an IPv4-mapped IPv6 address; write the IPv4 address 192\.0\.2\.231/), none('bi-mapped-hex')],
  },
  {
    name: 'an address that does not parse',
    category: 'annotation',
    inputs: [svc('bi-addr-text', { annotations: { 'purelb.io/addresses': '192.0.2.x' } })],
    expect: [failed('bi-addr-text', /annotation purelb\.io\/addresses entry 1: "192\.0\.2\.x" is not an IPv4 or IPv6 address/), none('bi-addr-text')],
  },
  {
    name: 'an octet with a leading zero',
    category: 'annotation',
    inputs: [svc('bi-addr-octal', { annotations: { 'purelb.io/addresses': '192.0.2.010' } })],
    expect: [failed('bi-addr-octal', /"192\.0\.2\.010" is not an IPv4 or IPv6 address/), none('bi-addr-octal')],
  },
  {
    name: 'an IPv6 address with a zone',
    category: 'annotation',
    inputs: [svc('bi-addr-zone', { families: ['IPv6'], annotations: { 'purelb.io/addresses': '2001:db8::233%eth0' } })],
    expect: [failed('bi-addr-zone', /"2001:db8::233%eth0" is not an IPv4 or IPv6 address/), none('bi-addr-zone')],
  },
  {
    name: 'two IPv4 addresses',
    category: 'annotation',
    inputs: [svc('bi-addr-two', { annotations: { 'purelb.io/addresses': '192.0.2.231,192.0.2.232' } })],
    expect: [failed('bi-addr-two', /annotation purelb\.io\/addresses entry 2: a second IPv4 address/), none('bi-addr-two')],
  },
  {
    name: 'an IPv6 address for an IPv4-only Service',
    category: 'annotation',
    inputs: [svc('bi-addr-family', { annotations: { 'purelb.io/addresses': '2001:db8::231' } })],
    expect: [failed('bi-addr-family', /annotation purelb\.io\/addresses: "2001:db8::231" is an IPv6 address, but the Service asks for IPv4 only/), none('bi-addr-family')],
  },
  {
    name: 'an address outside every pool',
    category: 'annotation',
    inputs: [svc('bi-addr-outside', { annotations: { 'purelb.io/addresses': '203.0.113.250' } })],
    expect: [failed('bi-addr-outside', /address 203\.0\.113\.250 is in no pool of any ServiceGroup/), none('bi-addr-outside')],
  },
  {
    name: 'the address of a healthy Service',
    category: 'annotation',
    inputs: [svc('bi-addr-taken', { annotations: { 'purelb.io/addresses': '192.0.2.238' } })],
    expect: [failed('bi-addr-taken', /address 192\.0\.2\.238 in ServiceGroup "default" is held by Service badinput\/healthy-specific/), none('bi-addr-taken')],
  },
  {
    name: 'an empty entry in purelb.io/addresses',
    category: 'annotation',
    inputs: [svc('bi-addr-comma', { annotations: { 'purelb.io/addresses': '192.0.2.233,' } })],
    expect: [warned('bi-addr-comma', 'InvalidAnnotation', /"192\.0\.2\.233," has an empty entry; it is ignored/), got('bi-addr-comma', ['192.0.2.233'])],
  },
  {
    name: 'a sharing key whose port is taken',
    category: 'annotation',
    inputs: [svc('bi-share-clash', { annotations: { 'purelb.io/allow-shared-ip': 'healthy', 'purelb.io/service-group': 'other' }, ports: [{ port: 80 }] })],
    expect: [failed('bi-share-clash', /port TCP\/80 on shared address .* is already used by Service badinput\/healthy-shared-a/), none('bi-share-clash')],
  },
  {
    name: 'a sharing key bound to another group',
    category: 'annotation',
    inputs: [svc('bi-share-group', { annotations: { 'purelb.io/allow-shared-ip': 'healthy' }, ports: [{ port: 8080 }] })],
    expect: [failed('bi-share-group', /sharing key "healthy" is bound to ServiceGroup "other", not "default"/), none('bi-share-group')],
  },
  // --- another load balancer's Services ---
  {
    name: 'another class with a forged status and our marks: left alone, and not adopted after a restart',
    category: 'another-class',
    inputs: [{ kind: 'Service', name: 'bi-forged', svc: { loadBalancerClass: 'example.com/other' }, forgedStatus: { ingress: ['192.0.2.236'], annotations: { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'default' } } }],
    expect: [{ at: 'untouched', service: 'bi-forged', ingress: ['192.0.2.236'], annotations: { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'default' } }],
    restart: true,
    then: {
      inputs: [svc('bi-forged-after', { annotations: { 'purelb.io/addresses': '192.0.2.236' } })],
      expect: [got('bi-forged-after', ['192.0.2.236']), { at: 'untouched', service: 'bi-forged', ingress: ['192.0.2.236'], annotations: { 'purelb.io/allocated-by': 'PureLB', 'purelb.io/allocated-from': 'default' } }],
    },
  },
  {
    name: 'another class with a forged status naming a healthy Service\'s address',
    category: 'another-class',
    inputs: [{ kind: 'Service', name: 'bi-forged-healthy', svc: { loadBalancerClass: 'example.com/other' }, forgedStatus: { ingress: ['192.0.2.238'] } }],
    expect: [{ at: 'untouched', service: 'bi-forged-healthy', ingress: ['192.0.2.238'], annotations: {} }],
  },
  {
    name: 'another class asking for an address with our annotation',
    category: 'another-class',
    inputs: [{ kind: 'Service', name: 'bi-other-annotated', svc: { loadBalancerClass: 'example.com/other', annotations: { 'purelb.io/addresses': '192.0.2.237' } } }],
    expect: [{ at: 'untouched', service: 'bi-other-annotated', ingress: [], annotations: { 'purelb.io/addresses': '192.0.2.237' } }],
  },
  // --- addresses Nodes report ---
  {
    name: 'a pool holds a Node\'s address: the group is told, the address counted as excluded',
    category: 'node-address',
    inputs: [sg('bi-lan', pools4(['192.0.2.8-192.0.2.15', '192.0.2.0/24']))],
    expect: [
      groupWarned('bi-lan', 'ExcludedAddressInPool', /spec\.local\.v4pools\[0\] "192\.0\.2\.8-192\.0\.2\.15" holds 192\.0\.2\.11, which is never handed out: Node node-1 reports it as its own \(InternalIP\)/),
      { at: 'excluded', group: 'bi-lan', family: 'ipv4', count: '1' },
    ],
  },
  {
    name: 'a Service asks for a Node\'s IPv4 address',
    category: 'node-address',
    inputs: [sg('bi-lan4', pools4(['192.0.2.8-192.0.2.15', '192.0.2.0/24'])), svc('bi-node-v4', inGroup('bi-lan4', { 'purelb.io/addresses': '192.0.2.11' }))],
    expect: [failed('bi-node-v4', /address 192\.0\.2\.11 in ServiceGroup "bi-lan4" is never handed out: Node node-1 reports it as its own \(InternalIP\)/), none('bi-node-v4')],
  },
  {
    name: 'a Service asks for a Node\'s IPv6 address',
    category: 'node-address',
    inputs: [sg('bi-lan6', pools6(['2001:db8::10-2001:db8::1f', '2001:db8::/64'])), svc('bi-node-v6', { families: ['IPv6'], annotations: { 'purelb.io/service-group': 'bi-lan6', 'purelb.io/addresses': '2001:db8::11' } })],
    expect: [failed('bi-node-v6', /address 2001:db8::11 in ServiceGroup "bi-lan6" is never handed out: Node node-1 reports it as its own \(InternalIP\)/), none('bi-node-v6')],
  },
  {
    name: 'a Node\'s address through spec.loadBalancerIP',
    category: 'node-address',
    inputs: [sg('bi-lan-lbip', pools4(['192.0.2.8-192.0.2.15', '192.0.2.0/24'])), svc('bi-node-lbip', { ...inGroup('bi-lan-lbip'), loadBalancerIP: '192.0.2.11' })],
    expect: [failed('bi-node-lbip', /192\.0\.2\.11 .* is never handed out: Node node-1/), warned('bi-node-lbip', 'LoadBalancerIPDeprecated', /spec\.loadBalancerIP is deprecated/), none('bi-node-lbip')],
  },
  {
    name: 'first fit skips a Node\'s address',
    category: 'node-address',
    inputs: [sg('bi-skip', pools4(['192.0.2.11-192.0.2.12', '192.0.2.0/24'])), svc('bi-skip-svc', inGroup('bi-skip'))],
    expect: [got('bi-skip-svc', ['192.0.2.12'])],
  },
  {
    name: 'a new Node\'s ExternalIP in a pool',
    category: 'node-address',
    inputs: [sg('bi-ext', pools4(['203.0.113.40-203.0.113.41', '203.0.113.0/24'])), node('bi-node-ext', ['ExternalIP', '203.0.113.40']), svc('bi-ext-svc', inGroup('bi-ext'))],
    expect: [groupWarned('bi-ext', 'ExcludedAddressInPool', /holds 203\.0\.113\.40, which is never handed out: Node bi-node-ext reports it as its own \(ExternalIP\)/), got('bi-ext-svc', ['203.0.113.41'])],
  },
  {
    name: 'a Node\'s Hostname that is an IP',
    category: 'node-address',
    inputs: [sg('bi-hostname', pools4(['203.0.113.42-203.0.113.43', '203.0.113.0/24'])), node('bi-node-hostname', ['Hostname', '203.0.113.42']), svc('bi-hostname-svc', inGroup('bi-hostname'))],
    expect: [got('bi-hostname-svc', ['203.0.113.43'])],
  },
  {
    name: 'a Node claims the address a Service holds: it keeps it, with a Warning',
    category: 'node-address',
    inputs: [sg('bi-held', pools4(['203.0.113.45-203.0.113.46', '203.0.113.0/24'])), svc('bi-held-svc', inGroup('bi-held'), 1), node('bi-node-held', ['InternalIP', '203.0.113.45'])],
    expect: [warned('bi-held-svc', 'ExcludedAddressHeld', /203\.0\.113\.45 is never handed out: Node bi-node-held reports it as its own \(InternalIP\); the Service keeps it/), got('bi-held-svc', ['203.0.113.45'])],
    mayHoldNodeAddress: ['bi-held-svc'],
    restart: true,
    then: { inputs: [], expect: [got('bi-held-svc', ['203.0.113.45']), warned('bi-held-svc', 'ExcludedAddressHeld', /Node bi-node-held/)] },
  },
  {
    name: 'a pool whose only address a Node reports; the Node leaves and the Service gets it',
    category: 'node-address',
    inputs: [sg('bi-only', pools4(['203.0.113.48-203.0.113.48', '203.0.113.0/24'])), node('bi-node-only', ['InternalIP', '203.0.113.48']), svc('bi-only-svc', inGroup('bi-only'))],
    expect: [failed('bi-only-svc', /every IPv4 pool of ServiceGroup "bi-only" is full \(203\.0\.113\.48-203\.0\.113\.48\); 1 of their free addresses is never handed out/), none('bi-only-svc')],
    then: { inputs: [{ kind: 'delete', path: '/api/v1/nodes/bi-node-only' }], expect: [got('bi-only-svc', ['203.0.113.48'])] },
  },
  // --- a subnet's reserved addresses ---
  {
    name: 'a pool that is its whole /29: first fit starts after the network address',
    category: 'subnet-reserved',
    inputs: [sg('bi-whole', pools4(['203.0.113.56/29', '203.0.113.56/29'])), svc('bi-whole-svc', inGroup('bi-whole'))],
    expect: [got('bi-whole-svc', ['203.0.113.57']), { at: 'excluded', group: 'bi-whole', family: 'ipv4', count: '2' }],
  },
  {
    name: 'a Service asks for the network address',
    category: 'subnet-reserved',
    inputs: [sg('bi-net', pools4(['203.0.113.56/29', '203.0.113.56/29'])), svc('bi-net-svc', inGroup('bi-net', { 'purelb.io/addresses': '203.0.113.56' }))],
    expect: [failed('bi-net-svc', /address 203\.0\.113\.56 in ServiceGroup "bi-net" is never handed out: it is the network address of subnet 203\.0\.113\.56\/29/), none('bi-net-svc')],
  },
  {
    name: 'a Service asks for the broadcast address',
    category: 'subnet-reserved',
    inputs: [sg('bi-bcast', pools4(['203.0.113.56/29', '203.0.113.56/29'])), svc('bi-bcast-svc', inGroup('bi-bcast', { 'purelb.io/addresses': '203.0.113.63' }))],
    expect: [failed('bi-bcast-svc', /203\.0\.113\.63 .* is never handed out: it is the broadcast address of subnet 203\.0\.113\.56\/29/), none('bi-bcast-svc')],
  },
  {
    name: 'a Service asks for the IPv6 subnet-router anycast address',
    category: 'subnet-reserved',
    inputs: [sg('bi-anycast', pools6(['2001:db8:1::/126', '2001:db8:1::/126'])), svc('bi-anycast-svc', { families: ['IPv6'], annotations: { 'purelb.io/service-group': 'bi-anycast', 'purelb.io/addresses': '2001:db8:1::' } })],
    expect: [failed('bi-anycast-svc', /2001:db8:1:: .* is never handed out: it is the subnet-router anycast address of subnet 2001:db8:1::\/126/), none('bi-anycast-svc'), { at: 'excluded', group: 'bi-anycast', family: 'ipv6', count: '1' }],
  },
  {
    name: 'IPv6 first fit starts after the anycast address',
    category: 'subnet-reserved',
    inputs: [sg('bi-v6whole', pools6(['2001:db8:2::/120', '2001:db8:2::/120'])), svc('bi-v6whole-svc', { families: ['IPv6'], annotations: { 'purelb.io/service-group': 'bi-v6whole' } })],
    expect: [got('bi-v6whole-svc', ['2001:db8:2::1'])],
  },
  {
    name: 'a /31 hands out both addresses (RFC 3021)',
    category: 'subnet-reserved',
    inputs: [sg('bi-p2p', pools4(['203.0.113.64/31', '203.0.113.64/31'])), svc('bi-p2p-a', inGroup('bi-p2p'), 1), svc('bi-p2p-b', inGroup('bi-p2p'))],
    expect: [got('bi-p2p-a', ['203.0.113.64']), got('bi-p2p-b', ['203.0.113.65']), { at: 'excluded', group: 'bi-p2p', family: 'ipv4', count: '0' }],
  },
  {
    name: 'a /30 is full after two: its network and broadcast addresses are not handed out',
    category: 'subnet-reserved',
    inputs: [sg('bi-slash30', pools4(['203.0.113.68/30', '203.0.113.68/30'])), svc('bi-slash30-a', inGroup('bi-slash30'), 1), svc('bi-slash30-b', inGroup('bi-slash30'), 1), svc('bi-slash30-c', inGroup('bi-slash30'))],
    expect: [got('bi-slash30-a', ['203.0.113.69']), got('bi-slash30-b', ['203.0.113.70']), failed('bi-slash30-c', /is full \(203\.0\.113\.68\/30\); 2 of their free addresses are never handed out/), none('bi-slash30-c')],
  },
];

const CASES: readonly BadInput[] = [...ADMISSION, ...RUNTIME];

// --- the lab ------------------------------------------------------------------------

const lab = await withLab(t, { nodes: 1 });
const cp = lab.controlPlane;
const admin = cp.admin;
await installPureLB(admin, { defaults: false });
await ensureNamespace(admin, NS);
for (const [name, spec] of Object.entries(BASE_GROUPS)) await applyGroup(admin, name, spec);

const HEALTHY: [string, SvcOptions][] = [
  ['healthy-v4', {}],
  ['healthy-v6', { families: ['IPv6'] }],
  ['healthy-dual', { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack' }],
  ['healthy-specific', { annotations: { 'purelb.io/addresses': '192.0.2.238' } }],
  ['healthy-other', { annotations: { 'purelb.io/service-group': 'other' } }],
  ['healthy-shared-a', { annotations: { 'purelb.io/service-group': 'other', 'purelb.io/allow-shared-ip': 'healthy' }, ports: [{ port: 80 }] }],
  ['healthy-shared-b', { annotations: { 'purelb.io/service-group': 'other', 'purelb.io/allow-shared-ip': 'healthy' }, ports: [{ port: 443 }] }],
];

let allocator: DaemonProcess = await startAllocator(cp, { identity: 'badinput-0', args: ['--lease-duration=3s', '--renew-deadline=2s', '--retry-period=500ms'] });
let generation = 0;
t.teardown(() => allocator.stop());

const healthy = new Map<string, string[]>();
for (const [name, o] of HEALTHY) await createService(admin, name, o, NS);
for (const [name, o] of HEALTHY) healthy.set(name, await waitForCount(name, o.families?.length ?? 1));

async function waitForCount(name: string, count: number): Promise<string[]> {
  return waitFor(`${NS}/${name} to get ${count} address(es)`, async () => {
    const got = ips(await getService(admin, name, NS));
    return got.length === count ? got : undefined;
  }, 20_000, 50);
}

async function restartAllocator(): Promise<void> {
  await allocator.stop();
  generation++;
  allocator = await startAllocator(cp, { identity: `badinput-${generation}`, args: ['--lease-duration=3s', '--renew-deadline=2s', '--retry-period=500ms'] });
}

// --- putting inputs in, checking outcomes, cleaning up --------------------------------

const resourcePath = (kind: 'ServiceGroup' | 'LBNodeAgent', name: string): string =>
  `/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/${kind === 'ServiceGroup' ? 'servicegroups' : 'lbnodeagents'}/${name}`;

interface Applied {
  /** Set when the API server refused the input. */
  readonly refused?: { readonly status: number; readonly message: string; readonly causes: readonly { field?: string; message?: string }[] };
}

/** Puts one input in; records what to remove afterwards. */
async function put(input: Input, cleanup: string[]): Promise<Applied> {
  switch (input.kind) {
    case 'ServiceGroup':
    case 'LBNodeAgent': {
      const path = resourcePath(input.kind, input.name);
      // Create, or replace the whole spec of what exists (as kubectl replace does).
      const existing = await admin.raw('GET', path);
      const obj = { apiVersion: 'purelb.io/v1', kind: input.kind, metadata: { name: input.name, namespace: PURELB_NAMESPACE }, spec: input.spec };
      const r =
        existing.status === 200
          ? await admin.raw('PUT', path, { ...obj, metadata: { ...obj.metadata, resourceVersion: (JSON.parse(existing.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion } })
          : await admin.raw('POST', path.slice(0, path.lastIndexOf('/')), obj);
      if (r.status >= 300) {
        const s = JSON.parse(r.body) as { message?: string; details?: { causes?: { field?: string; message?: string }[] } };
        return { refused: { status: r.status, message: s.message ?? r.body, causes: s.details?.causes ?? [] } };
      }
      if (!(input.kind === 'ServiceGroup' && input.name in BASE_GROUPS)) cleanup.push(path);
      return {};
    }
    case 'Service': {
      const path = `/api/v1/namespaces/${NS}/services/${input.name}`;
      if ((await admin.raw('GET', path)).status === 200) {
        // An edit: only the annotations change here.
        await admin.mergePatch(path, { metadata: { annotations: input.svc?.annotations ?? {} } });
      } else {
        await createService(admin, input.name, input.svc ?? {}, NS);
        cleanup.push(path);
      }
      if (input.forgedStatus) {
        await admin.mergePatch(`${path}/status`, { metadata: { annotations: input.forgedStatus.annotations ?? {} }, status: { loadBalancer: { ingress: input.forgedStatus.ingress.map((ip) => ({ ip })) } } });
      }
      if (input.waitForAddresses !== undefined) await waitForCount(input.name, input.waitForAddresses);
      return {};
    }
    case 'Node': {
      await admin.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: input.name, labels: { 'purelb.io/lab': 'badinput' } } });
      cleanup.push(`/api/v1/nodes/${input.name}`);
      await admin.mergePatch(`/api/v1/nodes/${input.name}/status`, { status: { addresses: input.addresses.map(([type, address]) => ({ type, address })) } });
      return {};
    }
    case 'delete':
      await admin.delete(input.path);
      return {};
  }
}

/** Checks one expectation; returns a description of what is wrong, or undefined. */
async function check(e: Expect, applied: Applied | undefined): Promise<string | undefined> {
  const within = 20_000;
  switch (e.at) {
    case 'admission': {
      if (!applied?.refused) return 'not refused at admission';
      if (applied.refused.status !== 422) return `HTTP ${applied.refused.status}`;
      if (!applied.refused.message.includes(`${e.field}:`)) return `the message does not name ${e.field}: ${applied.refused.message}`;
      const causes = applied.refused.causes.filter((c) => c.field === e.field);
      return causes.some((c) => e.message.test(c.message ?? '')) ? undefined : `no cause on ${e.field} says ${e.message}: ${applied.refused.message}`;
    }
    case 'event': {
      const ns = e.on === 'Service' ? NS : PURELB_NAMESPACE;
      const found = await waitFor(`a ${e.reason} Event on ${e.name}`, async () => (await events(admin, e.name, ns)).find((x) => x.reason === e.reason && fromAllocator(x) && e.message.test(x.message)), within, 100).catch(() => undefined);
      if (found) return found.type === 'Warning' ? undefined : `${e.reason} is ${found.type}, not Warning`;
      const seen = (await events(admin, e.name, ns)).filter(fromAllocator).map((x) => `${x.reason}: ${x.message}`);
      return `no ${e.reason} Event on ${e.name} saying ${e.message}; seen: ${seen.join(' | ') || 'none'}`;
    }
    case 'condition': {
      const ok = await waitFor(`condition ${e.type} of ${e.group}`, async () => {
        const g = await admin.get<{ status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }>(resourcePath('ServiceGroup', e.group));
        const c = g.status?.conditions?.find((x) => x.type === e.type);
        return c && c.status === e.status && (e.reason === undefined || c.reason === e.reason) && (e.message === undefined || e.message.test(c.message ?? '')) ? c : undefined;
      }, within, 100).catch(() => undefined);
      if (ok) return undefined;
      const g = await admin.get<{ status?: unknown }>(resourcePath('ServiceGroup', e.group));
      return `condition ${e.type}=${e.status} ${e.reason ?? ''} not reached: ${JSON.stringify(g.status)}`;
    }
    case 'excluded': {
      const ok = await waitFor(`${e.group} ${e.family}.excluded`, async () => {
        const g = await admin.get<{ status?: Record<string, { excluded?: string } | undefined> }>(resourcePath('ServiceGroup', e.group));
        return g.status?.[e.family]?.excluded === e.count ? true : undefined;
      }, within, 100).catch(() => undefined);
      return ok ? undefined : `status.${e.family}.excluded of ${e.group} is not ${e.count}`;
    }
    case 'addresses': {
      const want = e.addresses;
      const ok = await waitFor(`${e.service} addresses`, async () => {
        const have = ips(await getService(admin, e.service, NS));
        return (typeof want === 'number' ? have.length === want : have.join() === want.join()) ? have : undefined;
      }, within, 50).catch(() => undefined);
      return ok ? undefined : `${e.service} has ${JSON.stringify(ips(await getService(admin, e.service, NS)))}, not ${JSON.stringify(want)}`;
    }
    case 'no-address': {
      await settle(1500);
      const have = ips(await getService(admin, e.service, NS));
      return have.length === 0 ? undefined : `${e.service} got ${have.join(', ')}`;
    }
    case 'untouched': {
      await settle(1500);
      const s = await getService(admin, e.service, NS);
      const annotations = Object.fromEntries(Object.entries(s.metadata.annotations ?? {}).filter(([k]) => k.startsWith('purelb.io/')));
      if (ips(s).join() !== e.ingress.join()) return `${e.service}'s ingress changed to ${JSON.stringify(ips(s))}`;
      if (JSON.stringify(annotations) !== JSON.stringify(e.annotations)) return `${e.service}'s annotations changed to ${JSON.stringify(annotations)}`;
      const ev = (await events(admin, e.service, NS)).filter(fromAllocator);
      return ev.length === 0 ? undefined : `the allocator wrote Events on ${e.service}: ${ev.map((x) => x.reason).join(', ')}`;
    }
  }
}

/** Addresses every Node reports now. */
async function nodeAddresses(): Promise<Set<string>> {
  const list = await admin.get<{ items: { status?: { addresses?: { address: string }[] } }[] }>('/api/v1/nodes');
  return new Set(list.items.flatMap((n) => (n.status?.addresses ?? []).map((a) => a.address)));
}

const totals = { inputs_tried: 0, daemon_crashes: 0, healthy_addresses_changed: 0, node_addresses_touched: 0, silent_inputs: 0 };
const perCategory: Record<string, number> = {};

/** The checks after every row, whatever the row was. */
async function invariants(t: Test, row: BadInput): Promise<void> {
  if (!allocator.running) {
    totals.daemon_crashes++;
    t.fail(`the allocator exited:\n${allocator.tail(30)}`);
    await restartAllocator();
  } else t.pass('the allocator is running');
  let changed = 0;
  for (const [name, want] of healthy) {
    const have = ips(await getService(admin, name, NS));
    if (have.join() !== want.join()) {
      changed++;
      t.fail(`healthy Service ${name} changed from ${want.join(', ')} to ${have.join(', ')}`);
    }
  }
  totals.healthy_addresses_changed += changed;
  if (changed === 0) t.pass('every healthy Service kept its address');
  const nodeIps = await nodeAddresses();
  const list = await admin.get<{ items: { metadata: { name: string }; spec: { loadBalancerClass?: string }; status?: { loadBalancer?: { ingress?: { ip: string }[] } } }[] }>(`/api/v1/namespaces/${NS}/services`);
  const touched = list.items.filter(
    (s) => s.spec.loadBalancerClass === undefined && !(row.mayHoldNodeAddress ?? []).includes(s.metadata.name) && (s.status?.loadBalancer?.ingress ?? []).some((i) => nodeIps.has(i.ip)),
  );
  totals.node_addresses_touched += touched.length;
  t.same(touched.map((s) => s.metadata.name), [], 'no Service was given an address a Node reports');
}

async function runRow(t: Test, row: BadInput): Promise<void> {
  const cleanup: string[] = [];
  const restore = new Set<string>();
  let seen = 0;
  try {
    const phases = [{ inputs: row.inputs, expect: row.expect }, ...(row.then ? [row.then] : [])];
    for (const [p, phase] of phases.entries()) {
      if (p === 1 && row.restart) {
        await restartAllocator();
        t.pass('restarted the allocator under this input');
      }
      let applied: Applied | undefined;
      for (const input of phase.inputs) {
        if (input.kind === 'ServiceGroup' && input.name in BASE_GROUPS) restore.add(input.name);
        applied = await put(input, cleanup);
        if (applied.refused) break;
      }
      for (const e of phase.expect) {
        const problem = await check(e, applied);
        if (problem === undefined) seen++;
        const what = `${e.at}${'reason' in e ? ` ${e.reason}` : ''}${'field' in e ? ` ${e.field}` : ''}`;
        t.ok(problem === undefined, problem === undefined ? what : `${what}: ${problem}`);
      }
    }
  } finally {
    for (const path of cleanup.reverse()) await admin.delete(path);
    for (const name of restore) await applyGroup(admin, name, BASE_GROUPS[name]!);
  }
  totals.inputs_tried++;
  perCategory[row.category] = (perCategory[row.category] ?? 0) + 1;
  if (seen === 0) totals.silent_inputs++;
  await invariants(t, row);
}

t.test(`${CASES.length} bad inputs`, async (t) => {
  t.ok(CASES.length >= 100, `${CASES.length} rows`);
  for (const row of CASES) await t.test(`${row.category}: ${row.name}`, (tt) => runRow(tt, row));
  t.same(totals, { inputs_tried: CASES.length, daemon_crashes: 0, healthy_addresses_changed: 0, node_addresses_touched: 0, silent_inputs: 0 }, 'totals');
});

t.teardown(() => {
  recordBadInputPart(join(REPO_ROOT, 'bench-results', 'badinput.json'), 'allocator', totals, { ...Object.fromEntries(Object.entries(perCategory).map(([k, v]) => [`rows_${k}`, v])), restarts: generation });
});
