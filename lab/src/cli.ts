// npm run lab [-- --nodes N] [-- --once] [-- --failover] [-- --shipped] [-- --routed] [-- --cluster] [-- --clean [--force]]
// Brings the lab up with PureLB running in it, shows a LoadBalancer Service answering,
// and tears everything down on Ctrl-C.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type DaemonProcess, installPureLB, startAgent, startAllocator } from './purelb.ts';
import { runClusterCli } from './cluster-cli.ts';
import { onShutdown } from './cli-shutdown.ts';
import { cleanLabs, startLab } from './lab.ts';
import { showRouted } from './routed-cli.ts';
import { LAN } from './network.ts';
import { run, waitFor } from './exec.ts';

const HELP = `usage: npm run lab -- [options]
  --nodes N     node namespaces to create (default 3)
  --once        bring the lab up, show it working, tear it down (default: keep it running until Ctrl-C)
  --failover    also kill the announcing node's agent (and cut its link, as a dead node would)
                and print how long until the address answered again from another node
  --shipped     run the daemons as their images do: bundle them (tools/bundle.ts) and start
                node with the images' flags (default: from the TypeScript sources)
  --routed      also an upstream router namespace (FRR, ECMP) and a client behind it on
                198.51.100.0/24, BIRD 2 in every node advertising kube-lb0 over BGP with BFD
                (docs/routing.md); shows a virtual address answering from that client and
                the router's route to it (installs bird2 and frr with apt-get if missing)
  --cluster     real nodes: containerd, runc, kubelet and kube-proxy in every node namespace,
                kube-controller-manager and kube-scheduler in the control plane, PureLB
                installed with helm from charts/purelb and our images (the first run builds
                the binaries, about 6 min on 2 cores); see docs/lab-cluster-mode.md
  --clean       remove what a crashed lab left behind (processes, namespaces, state) and exit
  --force       with --clean: also remove labs whose owner process is still running
  --help        this text`;

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    once: { type: 'boolean', default: false },
    failover: { type: 'boolean', default: false },
    shipped: { type: 'boolean', default: false },
    routed: { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    clean: { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(HELP);
  process.exit(0);
}

if (values.clean) {
  const removed = await cleanLabs(values.force);
  console.log(removed.length ? `removed:\n  ${removed.join('\n  ')}` : 'nothing to clean');
  process.exit(0);
}

const say = (line: string): void => console.log(`[lab] ${line}`);
if (values.cluster) {
  if (values.failover || values.shipped || values.routed) {
    console.error('--cluster runs the daemons from their images already; --failover, --shipped and --routed are process-lab options');
    process.exit(2);
  }
  await runClusterCli({ nodes: Number(values.nodes), once: values.once, say });
}
const t0 = Date.now();
const shipped = values.shipped;
if (shipped) {
  say('bundling the allocator and the agent as their images do');
  await run(process.execPath, [join(import.meta.dirname, '..', '..', 'tools', 'bundle.ts'), 'allocator', 'lbnodeagent'], { timeoutMs: 300_000 });
}
const lab = await startLab({ nodes: Number(values.nodes), routed: values.routed, onProgress: say });
const daemons: DaemonProcess[] = [];
const shutdown = onShutdown(say, async () => {
  for (const d of daemons.reverse()) await d.stop(3000);
  await lab.stop();
});

try {
  say('installing PureLB: CRDs, the purelb namespace, the gossip Secret, a default ServiceGroup and LBNodeAgent');
  await installPureLB(lab.controlPlane.admin, { sendgarp: true });
  say(`starting the allocator and one node agent per node${shipped ? ' (bundles, with the images\' Node flags)' : ''}`);
  daemons.push(await startAllocator(lab.controlPlane, { identity: 'allocator-0', shipped }));
  for (const n of lab.nodes) daemons.push(await startAgent(lab.controlPlane, n, { shipped }));
  await lab.createDemoService('demo', { families: ['IPv4', 'IPv6'], policy: 'PreferDualStack' });
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  await shutdown(1);
}

interface Svc {
  metadata: { annotations?: Record<string, string> };
  status?: { loadBalancer?: { ingress?: { ip: string }[] } };
}
const svcPath = '/api/v1/namespaces/default/services/demo';
const ips = await waitFor('the demo Service to get its addresses', async () => {
  const s = await lab.controlPlane.admin.get<Svc>(svcPath);
  const got = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
  return got.length === 2 ? got : undefined;
}, 20_000);
const url = (ip: string): string => (ip.includes(':') ? `http://[${ip}]/` : `http://${ip}/`);
const answers = await waitFor('the demo Service to answer', async () => {
  const r = await lab.probe(lab.network.clientNetns, ips.map(url), 500);
  return r.every((x) => x.ok) ? r : undefined;
}, 20_000, 100);
const ann = (await lab.controlPlane.admin.get<Svc>(svcPath)).metadata.annotations ?? {};
const c = lab.network.clientNetns;
const n1 = lab.nodes[0]!;
console.log(`
[lab] up in ${((Date.now() - t0) / 1000).toFixed(1)} s: kube-apiserver ${lab.controlPlane.url}, ${lab.nodes.length} nodes on ${LAN.v4Subnet} and ${LAN.v6Subnet}

  the demo LoadBalancer Service (dual stack), asked from the client namespace:
${ips.map((ip, i) => `    ${url(ip).padEnd(24)} answered by ${answers[i]?.body ?? '?'}   (announcing-${ip.includes(':') ? 'IPv6' : 'IPv4'}: ${ann[ip.includes(':') ? 'purelb.io/announcing-IPv6' : 'purelb.io/announcing-IPv4'] ?? '-'})`).join('\n')}

  nodes (network namespace, LAN addresses):
${lab.nodes.map((n) => `    ${n.name.padEnd(8)} ${n.netns.padEnd(14)} ${n.v4.padEnd(12)} ${n.v6}`).join('\n')}
    client   ${c.padEnd(14)} ${LAN.clientV4.padEnd(12)} ${LAN.clientV6}

  try:
    export KUBECONFIG=${lab.kubeconfigPath}
    kubectl get svc demo -o wide              # its external addresses
    kubectl get servicegroups -n purelb        # pools, in use / size
    kubectl describe svc demo                  # AddressAssigned, AnnouncingLocal events
    ip netns exec ${c} curl -s ${url(ips[0]!)}
    ip netns exec ${n1.netns} ip addr show eth0
    kubectl create service loadbalancer web --tcp=80   # another Service: watch it get an address
`);

if (values.routed) {
  try {
    await showRouted(lab, say);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    await shutdown(1);
  }
}

if (values.failover) {
  const v4 = ips.find((ip) => !ip.includes(':'))!;
  const holder = (await lab.probe(c, [url(v4)], 500))[0]!.body;
  const node = lab.nodes.find((n) => n.name === holder)!;
  const agent = daemons.find((d) => d.name === `agent ${holder}`)!;
  say(`failover: killing ${holder}'s agent with SIGKILL and cutting its link, as a dead node`);
  const killedAt = Date.now();
  agent.child.kill('SIGKILL');
  await lab.setLinkUp(node, false);
  const next = await waitFor(`${v4} to answer from another node`, async () => {
    const [r] = await lab.probe(c, [url(v4)], 200);
    return r?.ok && r.body !== holder ? r.body : undefined;
  }, 30_000, 10);
  say(`failover: ${v4} answered again from ${next} ${Date.now() - killedAt} ms after ${holder} died`);
}

if (values.once) await shutdown(answers.every((a) => a.ok) ? 0 : 1);
else say('running; Ctrl-C tears everything down');
