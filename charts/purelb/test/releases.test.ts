// Several releases installed side by side on the lab's real API server: two in one
// namespace and one of the same name in another. helm refuses to install over an object
// another release owns, so three clean installs already show that no object is shared;
// the test also checks every object of each release on the server (owned by that release),
// that each release's ServiceAccounts may use its own Lease and gossip Secret and not the
// others', and that uninstalling one release leaves the others whole.
import t from 'tap';
import { type Lab, installCrds, withLab } from '@purelb/lab';
import { CHART_DIR, Tools, objects, pathOf, serviceAccountToken, tempDir, tokenKubeconfig, type KObject } from './helpers.ts';

const tools = await Tools.create(t);
const lab: Lab = await withLab(t, { nodes: 1 });
const cp = lab.controlPlane;
const admin = cp.admin;
const kc = cp.kubeconfigPath;
const dir = tempDir(t);

interface Release {
  name: string;
  namespace: string;
  set: string[];
  /** Names the test expects (derived from the release). */
  lease: string;
  secret: string;
  allocatorSa: string;
  agentSa: string;
}
const RELEASES: Release[] = [
  { name: 'purelb', namespace: 'purelb', set: [], lease: 'purelb-allocator', secret: 'purelb-memberlist', allocatorSa: 'allocator', agentSa: 'lbnodeagent' },
  {
    name: 'lb2',
    namespace: 'purelb',
    // One namespace holds one LBNodeAgent and distinct groups; other node ports for a second set of agents.
    set: ['lbnodeagent.createDefault=false', 'serviceGroup.name=lb2', 'lbnodeagent.memberlistPort=7944', 'lbnodeagent.metricsPort=7483'],
    lease: 'lb2-purelb-allocator',
    secret: 'lb2-purelb-memberlist',
    allocatorSa: 'lb2-purelb-allocator',
    agentSa: 'lb2-purelb-lbnodeagent',
  },
  { name: 'purelb', namespace: 'purelb-b', set: [], lease: 'purelb-allocator', secret: 'purelb-memberlist', allocatorSa: 'allocator', agentSa: 'lbnodeagent' },
];
const who = (r: Release): string => `${r.name} in ${r.namespace}`;

async function manifest(r: Release): Promise<KObject[]> {
  return [...objects(await tools.helm(['get', 'manifest', `--namespace=${r.namespace}`, r.name], { kubeconfig: kc })).values()];
}

t.test('three releases install side by side', async (t) => {
  await installCrds(admin);
  for (const r of RELEASES) {
    const out = await tools.helm(['install', '--create-namespace', `--namespace=${r.namespace}`, ...r.set.map((s) => `--set=${s}`), r.name, CHART_DIR], { kubeconfig: kc });
    t.match(out, /STATUS: deployed/, `${who(r)}: deployed`);
  }
  const claimed = new Map<string, string>();
  for (const r of RELEASES) {
    const objs = await manifest(r);
    t.ok(objs.length >= 15, `${who(r)}: ${objs.length} objects`);
    // The CRDs are shared by every release (test/crd-upgrade.test.ts: who manages them).
    for (const o of objs.filter((x) => x.kind !== 'CustomResourceDefinition')) {
      const path = pathOf(o, r.namespace);
      t.notOk(claimed.has(path), `${path}: in ${who(r)} only${claimed.has(path) ? ` (also ${claimed.get(path)})` : ''}`);
      claimed.set(path, who(r));
      const live = await admin.get<KObject>(path);
      t.equal(live.metadata.annotations?.['meta.helm.sh/release-name'], r.name, `${path} is owned by release ${r.name}`);
      t.equal(live.metadata.annotations?.['meta.helm.sh/release-namespace'], r.namespace, `${path}: of namespace ${r.namespace}`);
    }
  }
});

t.test('each release\'s ServiceAccounts may use its own Lease and gossip Secret, not another release\'s', async (t) => {
  for (const r of RELEASES) {
    const allocatorKc = tokenKubeconfig(cp, dir, `${r.namespace}-${r.allocatorSa}`, await serviceAccountToken(admin, r.namespace, r.allocatorSa));
    const agentKc = tokenKubeconfig(cp, dir, `${r.namespace}-${r.agentSa}`, await serviceAccountToken(admin, r.namespace, r.agentSa));
    for (const other of RELEASES) {
      const same = other === r;
      const canI = async (kubeconfig: string, args: string): Promise<string> => (await tools.kubectlStatus(['auth', 'can-i', ...args.split(' ')], { kubeconfig })).stdout.trim();
      t.equal(await canI(allocatorKc, `update leases.coordination.k8s.io/${other.lease} -n ${other.namespace}`), same ? 'yes' : 'no', `${who(r)}'s allocator ${same ? 'may' : 'may not'} update the Lease of ${who(other)}`);
      t.equal(await canI(agentKc, `get secrets/${other.secret} -n ${other.namespace}`), same ? 'yes' : 'no', `${who(r)}'s agents ${same ? 'may' : 'may not'} read the gossip Secret of ${who(other)}`);
    }
  }
});

t.test('uninstalling one release leaves the others whole', async (t) => {
  const [first, second, third] = RELEASES as [Release, Release, Release];
  const before = await Promise.all([first, third].map(manifest));
  await tools.helm(['uninstall', `--namespace=${second.namespace}`, second.name], { kubeconfig: kc });
  t.equal((await admin.raw('GET', `/apis/apps/v1/namespaces/${second.namespace}/deployments/lb2-purelb-allocator`)).status, 404, `${who(second)} is gone`);
  for (const [i, r] of [first, third].entries()) {
    for (const o of before[i]!) t.equal((await admin.raw('GET', pathOf(o, r.namespace))).status, 200, `${who(r)}: ${o.kind} ${o.metadata.name} is still there`);
  }
});
