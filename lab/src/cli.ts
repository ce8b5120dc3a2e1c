// npm run lab [-- --nodes N] [-- --once] [-- --clean [--force]]
// Brings the lab up, shows what to try, and tears everything down on Ctrl-C.
import { parseArgs } from 'node:util';
import { cleanLabs, startLab } from './lab.ts';
import { LAN } from './network.ts';

const HELP = `usage: npm run lab -- [options]
  --nodes N     node namespaces to create (default 3)
  --once        bring the lab up, show it working, tear it down (default: keep it running until Ctrl-C)
  --clean       remove what a crashed lab left behind (processes, namespaces, state) and exit
  --force       with --clean: also remove labs whose owner process is still running
  --help        this text`;

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    once: { type: 'boolean', default: false },
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

const nodes = Number(values.nodes);
const t0 = Date.now();
const lab = await startLab({ nodes, onProgress: (line) => console.log(`[lab] ${line}`) });
let stopping = false;
const shutdown = async (code: number): Promise<void> => {
  if (stopping) {
    console.log('[lab] second signal: exiting now; run `npm run lab -- --clean` to remove leftovers');
    process.exit(1);
  }
  stopping = true;
  console.log('\n[lab] tearing down');
  await lab.stop();
  console.log('[lab] everything removed');
  process.exit(code);
};
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

await lab.createDemoService('demo', { families: ['IPv4', 'IPv6'], policy: 'PreferDualStack' });
const answers = await lab.probe(
  lab.network.clientNetns,
  lab.nodes.flatMap((n) => [`http://${n.v4}/`, `http://[${n.v6}]/`]),
);
const c = lab.network.clientNetns;
console.log(`
[lab] up in ${((Date.now() - t0) / 1000).toFixed(1)} s: kube-apiserver ${lab.controlPlane.url}, ${lab.nodes.length} nodes on ${LAN.v4Subnet} and ${LAN.v6Subnet}

  nodes (network namespace, LAN addresses, backend answer from the client namespace):
${lab.nodes
  .map((n) => {
    const a = answers.filter((r) => r.url.includes(n.v4) || r.url.includes(n.v6)).map((r) => (r.ok ? r.body : `FAILED ${r.error ?? ''}`));
    return `    ${n.name.padEnd(8)} ${n.netns.padEnd(14)} ${n.v4.padEnd(12)} ${n.v6.padEnd(16)} ${a.join(' / ')}`;
  })
  .join('\n')}
    client   ${c.padEnd(14)} ${LAN.clientV4.padEnd(12)} ${LAN.clientV6}

  try:
    export KUBECONFIG=${lab.kubeconfigPath}
    kubectl get nodes -o wide
    kubectl get svc demo            # the demo LoadBalancer Service (dual stack)
    kubectl get endpointslices      # written by the lab: one endpoint per node backend
    ip netns exec ${c} curl -s http://${lab.nodes[0]?.v4 ?? ''}/
    ip netns exec ${c} curl -s 'http://[${lab.nodes[0]?.v6 ?? ''}]/'
    ip netns exec ${lab.nodes[0]?.netns ?? ''} ip addr show eth0

  The allocator and the node agents are not part of the lab yet: the demo Service has
  ClusterIPs but no external address until they are.
`);

if (values.once) await shutdown(answers.every((a) => a.ok) ? 0 : 1);
else console.log('[lab] running; Ctrl-C tears everything down');
