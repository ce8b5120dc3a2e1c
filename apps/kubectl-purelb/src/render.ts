// Each report as the tables `kubectl purelb` prints by default.
import { formatLabelSelector } from '@purelb/api';
import type { ElectionReport } from './election.ts';
import { formatProblems, formatTable } from './output.ts';
import type { PoolsReport } from './pools.ts';
import { type ServicesReport, announcerText } from './services.ts';
import type { StatusReport } from './status.ts';
import type { ValidationReport } from './validate.ts';
import type { MigrationPlan } from './migrate-metallb.ts';

// The agent warns only on a change to unsafe: no Event means it has not found the node unsafe (within the Event TTL).
const ARP_TEXT = { safe: 'ok', unreported: 'no warning', unsafe: 'UNSAFE' } as const;
const secs = (s: number | undefined): string | undefined => (s === undefined ? undefined : `${Math.round(s)}s`);

export function renderStatus(r: StatusReport): string {
  const a = r.allocator;
  const replicas = a.replicas ? `${a.replicas.ready}/${a.replicas.desired} ready` : 'unknown (no allocator Deployment found)';
  const leader = a.leader ? `${a.leader} (${a.fresh ? 'renewed' : 'STALE, renewed'} ${secs(a.renewedSecondsAgo) ?? 'never'} ago, Lease ${r.namespace}/${a.lease})` : `none (Lease ${r.namespace}/${a.lease})`;
  return [
    `ALLOCATOR\nleader:   ${leader}\nreplicas: ${replicas}\n`,
    `\nNODES\n${formatTable(['node', 'agent', 'mode', 'membership', 'lease renewed', 'announces', 'arp', 'subnets'], r.nodes.map((n) => [n.node, n.agent, n.mode, n.membership, secs(n.leaseRenewedSecondsAgo) && `${secs(n.leaseRenewedSecondsAgo)} ago`, n.excluded ? `no (${n.excluded.reason})` : 'yes', ARP_TEXT[n.arp.state], n.subnets.join(',')]))}`,
    `\nSERVICEGROUPS\n${formatTable(['name', 'type', 'valid', 'services', 'ipv4 in use', 'ipv6 in use', 'node selector', 'selected nodes'], r.serviceGroups.map((g) => [g.name, g.type, g.valid ? 'yes' : 'NO', g.services, g.ipv4, g.ipv6, g.nodeSelector, g.selectedNodes === undefined ? 'all' : g.selectedNodes.length === 0 ? 'NONE' : `${g.selectedNodes.length} (${g.selectedNodes.join(',')})`]))}`,
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
  const headers = ['address', 'services', 'group', 'hash winner', 'should hold', 'announced by', ...(r.drain ? ['after drain'] : []), 'state'];
  const rows = r.addresses.map((a) => [a.address, a.services.join(','), a.group, a.hashWinner, a.shouldHold, a.announcedBy.join(','), ...(r.drain ? [a.afterDrain ?? 'NOBODY'] : []), a.state]);
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

export function renderMigration(plan: MigrationPlan, applied: { readonly written: readonly string[] } | undefined): string {
  const pools = plan.serviceGroups.flatMap((g) => {
    const nodes = g.spec.local?.nodeSelector ? formatLabelSelector(g.spec.local.nodeSelector) : 'all';
    return [...(g.spec.local?.v4pools ?? []), ...(g.spec.local?.v6pools ?? [])].map((p) => [g.metadata.name, p.pool, p.subnet, p.aggregation ?? 'default', nodes]);
  });
  const notes = plan.notes.length === 0 ? '' : `\nNO EQUIVALENT OR DIFFERENT IN PURELB (${plan.notes.length})\n${plan.notes.map((n) => `- ${n.object}${n.field ? ` ${n.field}` : ''}: ${n.message}`).join('\n')}\n`;
  const tail = applied === undefined ? '\nNothing was written: run again with --apply to create the ServiceGroups and annotate the Services.\n' : applied.written.length > 0 ? `\nWRITTEN\n${applied.written.map((w) => `- ${w}`).join('\n')}\n` : '\nNothing was written.\n';
  return (
    `SERVICEGROUPS (namespace ${plan.serviceGroups[0]?.metadata.namespace ?? '-'})\n${formatTable(['group', 'pool', 'subnet', 'aggregation', 'node selector'], pools)}` +
    `\nSERVICES (they keep their addresses)\n${formatTable(['namespace', 'name', 'addresses', 'group', 'annotations'], plan.services.map((s) => [s.namespace, s.name, s.addresses.join(','), s.group, Object.entries(s.annotations).map(([k, v]) => `${k}=${v}`).join(' ')]))}` +
    notes +
    formatProblems(plan.problems) +
    tail
  );
}
