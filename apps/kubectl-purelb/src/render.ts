// Each report as the tables `kubectl purelb` prints by default.
import type { ElectionReport } from './election.ts';
import { formatProblems, formatTable } from './output.ts';
import type { PoolsReport } from './pools.ts';
import { type ServicesReport, announcerText } from './services.ts';
import type { StatusReport } from './status.ts';
import type { ValidationReport } from './validate.ts';

const secs = (s: number | undefined): string | undefined => (s === undefined ? undefined : `${Math.round(s)}s`);

export function renderStatus(r: StatusReport): string {
  const a = r.allocator;
  const replicas = a.replicas ? `${a.replicas.ready}/${a.replicas.desired} ready` : 'unknown (no allocator Deployment found)';
  const leader = a.leader ? `${a.leader} (${a.fresh ? 'renewed' : 'STALE, renewed'} ${secs(a.renewedSecondsAgo) ?? 'never'} ago, Lease ${r.namespace}/${a.lease})` : `none (Lease ${r.namespace}/${a.lease})`;
  return [
    `ALLOCATOR\nleader:   ${leader}\nreplicas: ${replicas}\n`,
    `\nNODES\n${formatTable(['node', 'agent', 'mode', 'membership', 'lease renewed', 'subnets'], r.nodes.map((n) => [n.node, n.agent, n.mode, n.membership, secs(n.leaseRenewedSecondsAgo) && `${secs(n.leaseRenewedSecondsAgo)} ago`, n.subnets.join(',')]))}`,
    `\nSERVICEGROUPS\n${formatTable(['name', 'type', 'valid', 'services', 'ipv4 in use', 'ipv6 in use'], r.serviceGroups.map((g) => [g.name, g.type, g.valid ? 'yes' : 'NO', g.services, g.ipv4, g.ipv6]))}`,
    formatProblems(r.problems),
  ].join('');
}

export function renderPools(r: PoolsReport): string {
  return (
    formatTable(
      ['group', 'family', 'pool', 'size', 'in use', 'excluded', 'free', 'next'],
      r.pools.map((p) => [p.group, p.family, `${p.pool} (${p.field})`, p.size, p.inUse, p.excluded, p.free, p.next === undefined ? 'full' : `${p.next}${p.nextForGroup ? ' *' : ''}`]),
    ) +
    (r.pools.some((p) => p.nextForGroup) ? '* the address the allocator hands out next for this group and family\n' : '') +
    formatProblems(r.problems)
  );
}

export function renderServices(r: ServicesReport): string {
  return (
    formatTable(
      ['namespace', 'name', 'addresses', 'group', 'ipv4 announced by', 'ipv6 announced by', 'traffic policy', 'sharing key'],
      r.services.map((s) => [s.namespace, s.name, s.addresses.join(','), s.group, announcerText(s.announcingIPv4), announcerText(s.announcingIPv6), s.externalTrafficPolicy, s.sharingKey]),
    ) + formatProblems(r.problems)
  );
}

export function renderElection(r: ElectionReport): string {
  const headers = ['address', 'services', 'hash winner', 'should hold', 'announced by', ...(r.drain ? ['after drain'] : []), 'state'];
  const rows = r.addresses.map((a) => [a.address, a.services.join(','), a.hashWinner, a.shouldHold, a.announcedBy.join(','), ...(r.drain ? [a.afterDrain ?? 'NOBODY'] : []), a.state]);
  const candidates = Object.keys(r.candidates);
  return (
    `candidates: ${candidates.length > 0 ? candidates.join(', ') : 'none'}; ${r.virtualAddresses} virtual address(es) not elected (every node adds them)\n` +
    (r.drain ? `simulating a drain of ${r.drain}: AFTER DRAIN is who would hold each address without it\n` : '') +
    '\n' +
    formatTable(headers, rows) +
    formatProblems(r.problems)
  );
}

export function renderValidation(r: ValidationReport): string {
  return formatTable(['file', 'doc', 'kind', 'name', 'result', 'message'], r.objects.map((o) => [o.file, o.document, o.kind, o.name, o.result, o.message ?? (o.result === 'valid' ? '-' : undefined)])) + formatProblems(r.problems);
}
