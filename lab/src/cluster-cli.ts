// `npm run lab -- --cluster`: a cluster-mode lab with PureLB installed by helm, the demo
// Deployment behind a local and a virtual LoadBalancer Service, asked from the client.
import { type ClusterLab, CLUSTER_ADDRESSES, createDemoLoadBalancer, deployDemo, installPureLBChart, loadBalancerAddresses, parseDemoAnswer, pods, urlOf } from './cluster.ts';
import { onShutdown } from './cli-shutdown.ts';
import { waitFor } from './exec.ts';
import { startLab } from './lab.ts';
import { LAN } from './network.ts';

export async function runClusterCli(o: { readonly nodes: number; readonly once: boolean; readonly say: (line: string) => void }): Promise<never> {
  const { say } = o;
  const t0 = Date.now();
  const lab: ClusterLab = await startLab({ cluster: true, nodes: o.nodes, onProgress: say });
  const shutdown = onShutdown(say, () => lab.stop());
  try {
    say('helm install purelb charts/purelb (images imported into every node, imagePullPolicy Never)');
    await installPureLBChart(lab);
    await deployDemo(lab);
    await createDemoLoadBalancer(lab, 'demo');
    await createDemoLoadBalancer(lab, 'demo-virtual', { serviceGroup: 'virtual' });
    say('waiting for the PureLB Pods and the demo Pods to be Ready');
    await waitFor('PureLB and demo Pods Ready', async () => {
      const all = [...(await pods(lab.admin, 'purelb', 'app.kubernetes.io/instance=purelb')), ...(await pods(lab.admin, 'default', 'app=demo'))];
      return all.length >= lab.nodes.length * 2 + 2 && all.every((p) => p.ready) ? true : undefined;
    }, 180_000, 500);
    const local = await loadBalancerAddresses(lab.admin, 'demo');
    const virtual = await loadBalancerAddresses(lab.admin, 'demo-virtual');
    const urls = [local.v4, local.v6, virtual.v4, virtual.v6].map((a) => urlOf(a));
    const answers = await waitFor('the demo Services to answer', async () => {
      const r = await lab.probe(urls, 1000);
      return r.every((x) => x.ok) ? r : undefined;
    }, 60_000, 250);
    const c = lab.network.clientNetns;
    console.log(`
[lab] cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s (nodes Ready after ${(lab.bootMs / 1000).toFixed(1)} s): ${lab.nodes.length} nodes on ${LAN.v4Subnet} and ${LAN.v6Subnet}

  the demo Deployment behind two LoadBalancer Services (dual stack), asked from the client namespace through kube-proxy:
${answers.map((a) => `    ${a.url.padEnd(32)} ${parseDemoAnswer(a.body) ? a.body.trim() : a.error ?? a.body}`).join('\n')}

  nodes (network namespace, LAN addresses, pod CIDRs):
${lab.nodes.map((n) => `    ${n.name.padEnd(8)} ${n.netns.padEnd(14)} ${n.v4.padEnd(12)} ${n.v6.padEnd(16)} ${n.podCidrV4} ${n.podCidrV6}`).join('\n')}
    client   ${c.padEnd(14)} ${LAN.clientV4.padEnd(12)} ${LAN.clientV6}
  Services' cluster IPs: ${CLUSTER_ADDRESSES.serviceCidrs}; state, logs and kubeconfig: ${lab.dir}

  try:
    export KUBECONFIG=${lab.kubeconfigPath}
    ${lab.binDir}/kubectl get nodes,pods -A -o wide
    ip netns exec ${c} curl -s ${urlOf(local.v4)}
    ip netns exec ${lab.nodes[0]!.netns} nft list table ip kube-proxy
`);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    return shutdown(1);
  }
  if (o.once) return shutdown(0);
  say('running; Ctrl-C tears everything down');
  return new Promise<never>(() => undefined);
}
