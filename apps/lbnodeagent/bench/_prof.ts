import { KubeClient as GlueClient, loadKubeConfig } from '@purelb/k8s-glue';
import { PURELB_NAMESPACE, installPureLB, ip, startAgent, startAllocator, startLab, waitFor } from '@purelb/lab';
const N = 1000;
const lab = await startLab({ nodes: 2 });
const client = new GlueClient(loadKubeConfig({ kubeconfig: lab.kubeconfigPath }), { maxSockets: 12 });
try {
  const admin = lab.controlPlane.admin;
  await installPureLB(admin, { sendgarp: true });
  await admin.apply(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/servicegroups/bulk`, { apiVersion: 'purelb.io/v1', kind: 'ServiceGroup', metadata: { name: 'bulk', namespace: PURELB_NAMESPACE }, spec: { local: { v6pools: [{ pool: '2001:db8:6::1-2001:db8:6::fff', subnet: '2001:db8:6::/64', aggregation: '/128' }] } } });
  const alloc = await startAllocator(lab.controlPlane, { identity: 'allocator', shipped: true });
  const a1 = await startAgent(lab.controlPlane, lab.nodes[0]!, { shipped: true, nodeArgs: ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] });
  const a2 = await startAgent(lab.controlPlane, lab.nodes[1]!, { shipped: true });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const name = `bulk-${next++}`;
      await client.create('/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', annotations: { 'purelb.io/service-group': 'bulk' } }, spec: { type: 'LoadBalancer', ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack', allocateLoadBalancerNodePorts: false, ports: [{ name: 'http', protocol: 'TCP', port: 80 }] } });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await waitFor('1000 on node-1', async () => {
    const links = JSON.parse(await ip('-n', lab.nodes[0]!.netns, '-j', 'addr', 'show', 'dev', 'kube-lb0')) as { addr_info: { local: string }[] }[];
    return links.flatMap((l) => l.addr_info).length >= N ? true : undefined;
  }, 300_000, 500);
  console.log('settled; steady state 20 s');
  await new Promise((r) => setTimeout(r, 20_000));
  console.log(a1.tail(80).split('\n').filter((l) => l.includes('REQS') || l.includes('guard mode') || l.includes('stall')).slice(-14).join('\n'));
  await a1.stop(10_000);
  await a2.stop(5000);
  await alloc.stop(5000);
} finally {
  await lab.stop();
}
