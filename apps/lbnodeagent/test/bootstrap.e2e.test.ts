// A first install from the one-file manifest: the CRDs and the namespace exist, but no
// gossip Secret, ServiceGroup or LBNodeAgent (the manifest cannot ship custom resources
// whose CRDs it creates in the same apply). The daemons create their defaults.
import t from 'tap';
import { PURELB_NAMESPACE, installCrds, startAgent, startAllocator, withLab } from '@purelb/lab';
import { addressesOf, answeredBy } from './e2e-helpers.ts';

const lab = await withLab(t, { nodes: 2 });
const admin = lab.controlPlane.admin;
await installCrds(admin);
await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PURELB_NAMESPACE } });

t.test('the apps create the gossip Secret, the default ServiceGroup and LBNodeAgent, and serve', async (t) => {
  const group = { metadata: { name: 'default' }, spec: { local: { v4pools: [{ pool: '192.0.2.240-192.0.2.249', subnet: '192.0.2.0/24', aggregation: 'default' }] } } };
  const agentConfig = { metadata: { name: 'default' }, spec: { local: { extlbint: 'kube-lb0', localint: 'default', sendgarp: true } } };
  const allocator = await startAllocator(lab.controlPlane, { identity: 'a', args: [`--default-servicegroup=${JSON.stringify(group)}`] });
  t.teardown(() => allocator.stop());
  const agents = await Promise.all(lab.nodes.map((n) => startAgent(lab.controlPlane, n, { args: ['--create-memberlist-secret=true', `--default-lbnodeagent=${JSON.stringify(agentConfig)}`] })));
  t.teardown(async () => {
    for (const a of agents) await a.stop();
  });
  const secret = await admin.get<{ data: Record<string, string> }>(`/api/v1/namespaces/${PURELB_NAMESPACE}/secrets/purelb-memberlist`);
  t.equal(Buffer.from(Buffer.from(secret.data.key!, 'base64').toString(), 'base64').length, 32, 'one Secret with a 32-byte key, shared by both agents');
  const lbna = await admin.get<{ spec: unknown }>(`/apis/purelb.io/v1/namespaces/${PURELB_NAMESPACE}/lbnodeagents/default`);
  // As written, plus what the CRD defaults (setARPSysctls: false).
  t.same(lbna.spec, { local: { ...agentConfig.spec.local, setARPSysctls: false } });
  await lab.createDemoService('first');
  const [a] = await addressesOf(lab, 'first', 1);
  t.equal(a, '192.0.2.240', 'the default group the allocator created serves the Service');
  t.match(await answeredBy(lab, a!), /^node-[12]$/, 'and the address answers');
});
