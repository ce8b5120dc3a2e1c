// `npm run lab -- --routed`: after the lab is up with PureLB running, a dual-stack
// Service from the routed pools, asked from the client behind the router, and the
// router's (ECMP) routes to it.
import { LabError, waitFor } from './exec.ts';
import type { Lab } from './lab.ts';
import { ROUTED, type RouterRoute, applyRoutedServiceGroup } from './routed.ts';

const NAME = 'routed-demo';

export async function showRouted(lab: Lab, say: (line: string) => void): Promise<void> {
  const routed = lab.routed;
  if (!routed) throw new LabError('LAB_BAD_OPTION', 'the lab was not started with routed: true');
  const admin = lab.controlPlane.admin;
  say(`routed: a ServiceGroup "${ROUTED.serviceGroup}" (${ROUTED.v4pool.pool}, ${ROUTED.v6pool.pool}, host routes) and a Service ${NAME} from it`);
  await applyRoutedServiceGroup(admin);
  await lab.createDemoService(NAME, { families: ['IPv4', 'IPv6'], policy: 'RequireDualStack', annotations: { 'purelb.io/service-group': ROUTED.serviceGroup } });
  const ips = await waitFor(`${NAME} to get its addresses`, async () => {
    const s = await admin.get<{ status?: { loadBalancer?: { ingress?: { ip: string }[] } } }>(`/api/v1/namespaces/default/services/${NAME}`);
    const got = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
    return got.length === 2 ? got : undefined;
  }, 20_000);
  const all = lab.nodes.map((n) => n.name);
  const routes: RouterRoute[] = [];
  for (const a of ips) routes.push(await routed.waitForPaths(a, (n) => n.length === all.length, 20_000, 'every node'));
  const spreads: Map<string, number>[] = [];
  for (const a of ips) spreads.push(await routed.spread(a, 30));
  const fib = await routed.vtysh(`show ip route ${ips.find((a) => !a.includes(':'))}/32`);
  const v6 = ips.find((a) => a.includes(':'))!;
  const n1 = lab.nodes[0]!;
  console.log(`
  routed: ${NAME}, virtual addresses on kube-lb0 of every node, advertised by BIRD to the
  router (${routed.routerNetns}, FRR, AS ${ROUTED.routerAs}) and asked from the client behind it
  (${routed.clientNetns}, ${ROUTED.clientV4} / ${ROUTED.clientV6}), 30 connections each:
${ips.map((a, i) => `    ${a.padEnd(16)} router's next hops: ${routes[i]!.nodes.join(', ').padEnd(24)} answered by: ${[...spreads[i]!].map(([who, c]) => `${who} ${c}`).join(', ')}`).join('\n')}

  the router's route (vtysh):
${fib.split('\n').filter((l) => /via|^[A-Z]>/.test(l)).map((l) => `    ${l}`).join('\n')}

  try:
    ip netns exec ${routed.clientNetns} curl -s http://${ips[0]}/
    ip netns exec ${routed.routerNetns} ip route show ${ips[0]}
    ip netns exec ${routed.routerNetns} vtysh --vty_socket ${routed.vtySocketDir} -c 'show ip bgp' -c 'show bfd peers brief'
    ip netns exec ${n1.netns} birdc -s ${routed.birdSocket(n1)} show route protocol purelb
    ip netns exec ${routed.routerNetns} ip -6 route show ${v6}
`);
}
