// The CRDs: every field, status included, described, in the files and as the lab's real
// API server publishes them (OpenAPI v3, what `kubectl explain` reads); and how they are
// upgraded with helm: from chart 0.1.0 as released (CRDs in crds/ only) to this one,
// handed to the release as NOTES.txt says, then upgraded by every helm upgrade; a second
// release leaves them to the first; uninstall keeps them; a release that created them
// itself (--skip-crds) upgrades them from the start.
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CRD_DIR, type Lab, installCrds, parseYamlObjects, waitFor, withLab } from '@purelb/lab';
import { CHART_DIR, Tools, objects, pathOf, tempDir, type KObject } from './helpers.ts';

/** The part of an OpenAPI v3 schema the walk reads. */
interface Schema {
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  allOf?: Schema[];
  $ref?: string;
}
interface Crd {
  metadata: { name: string };
  spec: { names: { kind: string }; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
}

/** The paths (Kind.field.sub[]...) of every schema node without a non-empty description. */
function undescribed(s: Schema, path: string): string[] {
  const out = s.description?.trim() ? [] : [path];
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...undescribed(v, `${path}.${k}`));
  if (s.items) out.push(...undescribed(s.items, `${path}[]`));
  if (typeof s.additionalProperties === 'object') out.push(...undescribed(s.additionalProperties, `${path}{}`));
  return out;
}

/** How many fields the walk visits (so an empty schema cannot pass). */
function fieldCount(s: Schema): number {
  return Object.values(s.properties ?? {}).reduce((n, v) => n + 1 + fieldCount(v), 0) + (s.items ? fieldCount(s.items) : 0);
}

const crds = readdirSync(CRD_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseYamlObjects(readFileSync(join(CRD_DIR, f), 'utf8')) as unknown as Crd[]);

t.test('every field of both CRDs, status included, has a description (the files)', async (t) => {
  t.same(crds.map((c) => c.spec.names.kind).sort(), ['LBNodeAgent', 'ServiceGroup']);
  for (const crd of crds) {
    for (const v of crd.spec.versions) {
      const root = v.schema.openAPIV3Schema;
      t.ok(root.description?.trim(), `${crd.spec.names.kind} ${v.name}: the kind has a description`);
      t.ok(root.properties?.status?.description?.trim(), `${crd.spec.names.kind} ${v.name}: status has a description`);
      t.ok(fieldCount(root) > (crd.spec.names.kind === 'ServiceGroup' ? 40 : 7), `${crd.spec.names.kind}: ${fieldCount(root)} fields walked`);
      t.same(undescribed(root, crd.spec.names.kind), [], `${crd.spec.names.kind} ${v.name}: no field without a description`);
    }
  }
});

t.test('as the API server publishes them: OpenAPI v3 of purelb.io/v1 has no empty description', async (t) => {
  const lab: Lab = await withLab(t, { nodes: 1 });
  const admin = lab.controlPlane.admin;
  await installCrds(admin);
  // The server publishes a CRD's schema a moment after it is established.
  const schemas = await waitFor(
    'purelb.io/v1 in /openapi/v3',
    async () => {
      const index = await admin.get<{ paths: Record<string, { serverRelativeURL: string }> }>('/openapi/v3');
      const url = index.paths['apis/purelb.io/v1']?.serverRelativeURL;
      if (!url) return undefined;
      const doc = await admin.get<{ components: { schemas: Record<string, Schema> } }>(url);
      const s = doc.components.schemas;
      return s['io.purelb.v1.ServiceGroup'] && s['io.purelb.v1.LBNodeAgent'] ? s : undefined;
    },
    30_000,
    200,
  );
  for (const kind of ['ServiceGroup', 'LBNodeAgent']) {
    const root = schemas[`io.purelb.v1.${kind}`]!;
    t.ok(root.description?.trim(), `${kind}: the kind has a description: "${root.description}"`);
    t.ok(fieldCount(root) > (kind === 'ServiceGroup' ? 40 : 7), `${kind}: ${fieldCount(root)} fields published`);
    t.same(undescribed(root, kind), [], `${kind}: every published field has a description`);
  }
});

interface LiveCrd extends KObject {
  spec: Crd['spec'] & { versions: (Crd['spec']['versions'][number] & { additionalPrinterColumns?: { name: string }[] })[] };
}

/** A copy of this chart in `dir` as chart `version`, with `edit`'s files (path relative to the chart -> new text). */
function chartVariant(dir: string, version: string, edit: (read: (file: string) => string) => Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['Chart.yaml', 'values.yaml', 'values.schema.json', 'README.md', '.helmignore', 'crds', 'templates']) cpSync(join(CHART_DIR, f), join(dir, f), { recursive: true });
  const read = (file: string): string => readFileSync(join(dir, file), 'utf8');
  writeFileSync(join(dir, 'Chart.yaml'), replaced(read('Chart.yaml'), /^version: .*$/m, `version: ${version}`));
  for (const [file, text] of Object.entries(edit(read))) writeFileSync(join(dir, file), text);
  return dir;
}

/** `text` with `from` replaced by `to`; throws if `from` is not there (the test would prove nothing). */
function replaced(text: string, from: string | RegExp, to: string): string {
  if (typeof from === 'string' ? !text.includes(from) : !from.test(text)) throw new Error(`not found: ${String(from)}`);
  return text.replace(from, to);
}

const PREVIOUS = join(import.meta.dirname, 'fixtures', 'chart-0.1.0');
const CRDS = ['lbnodeagents.purelb.io', 'servicegroups.purelb.io'];
const NEW_COLUMN = "        - { name: Overlapping, type: string, priority: 1, jsonPath: '.status.conditions[?(@.type==\"Overlapping\")].status' }\n";

t.test('helm and the CRDs: from chart 0.1.0 to this one and on', async (t) => {
  const tools = await Tools.create(t);
  const lab: Lab = await withLab(t, { nodes: 1 });
  const admin = lab.controlPlane.admin;
  const kc = lab.controlPlane.kubeconfigPath;
  const work = tempDir(t, 'plb-crd-charts-');
  const helm = (args: string[]): Promise<string> => tools.helm(args, { kubeconfig: kc });
  const crd = (name: string): Promise<LiveCrd> => admin.get<LiveCrd>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
  const columns = async (): Promise<string[]> => ((await crd('servicegroups.purelb.io')).spec.versions[0]!.additionalPrinterColumns ?? []).map((c) => c.name);
  const owner = async (name: string): Promise<string | undefined> => {
    const a = (await crd(name)).metadata.annotations ?? {};
    return a['meta.helm.sh/release-name'] ? `${a['meta.helm.sh/release-namespace']}/${a['meta.helm.sh/release-name']}` : undefined;
  };
  /** The fields of the live CRDs without a description. */
  const liveUndescribed = async (): Promise<string[]> =>
    (await Promise.all(CRDS.map(async (n) => { const c = await crd(n); return undescribed(c.spec.versions[0]!.schema.openAPIV3Schema, c.spec.names.kind); }))).flat();
  const uids = async (release: string, namespace: string): Promise<Map<string, string>> => {
    const out = new Map<string, string>();
    for (const o of objects(await helm(['get', 'manifest', `--namespace=${namespace}`, release])).values()) {
      const path = pathOf(o, namespace);
      out.set(path, (await admin.get<KObject & { metadata: { uid: string } }>(path)).metadata.uid);
    }
    return out;
  };

  // Chart 0.1.0 as released (test/fixtures/chart-0.1.0): its CRDs, from crds/, lack most descriptions.
  await helm(['install', '--create-namespace', '--namespace=purelb', 'purelb', PREVIOUS]);
  const before = await liveUndescribed();
  t.ok(before.includes('LBNodeAgent') && before.includes('ServiceGroup.status.conditions'), `0.1.0's CRDs are installed: ${before.length} fields without a description`);
  t.equal(await owner('servicegroups.purelb.io'), undefined, 'from crds/: no release manages them');
  const uidsBefore = await uids('purelb', 'purelb');

  // --reuse-values renders with 0.1.0's defaults, which lack this version's keys: refused, saying what to do.
  const reused = await helm(['upgrade', '--namespace=purelb', '--reuse-values', 'purelb', CHART_DIR]).then(
    () => 'upgraded',
    (e: Error) => e.message,
  );
  t.match(reused, /the values lack .*allocator\.securityContext.*--reset-then-reuse-values/, 'helm upgrade --reuse-values from 0.1.0 is refused, naming the way');
  t.match(await helm(['history', '--namespace=purelb', 'purelb']), /^1\s.*deployed/m, 'and leaves the release as it was');

  const plain = await helm(['upgrade', '--namespace=purelb', '--reset-then-reuse-values', 'purelb', CHART_DIR]);
  t.match(plain, /STATUS: deployed/, 'helm upgrade --reset-then-reuse-values to this version succeeds (no ownership conflict)');
  const uidsAfter = await uids('purelb', 'purelb');
  t.same([...uidsBefore].filter(([path, uid]) => uidsAfter.get(path) !== uid).map(([path]) => path), [], `all ${uidsBefore.size} objects of 0.1.0 keep their names and are not recreated`);
  t.same(await liveUndescribed(), before, 'it leaves CRDs that no release manages as they are');
  t.match(plain, /servicegroups\.purelb\.io: not managed by any release/, 'NOTES say so');
  const handover = plain.split('\n').map((l) => l.trim()).filter((l) => /^kubectl (label|annotate) crd /.test(l));
  t.equal(handover.length, 2, `NOTES give the two commands that hand them to the release:\n${handover.join('\n')}`);
  for (const line of handover) await tools.kubectl(line.split(/\s+/).slice(1), { kubeconfig: kc });
  for (const name of CRDS) t.equal(await owner(name), 'purelb/purelb', `${name} handed to release purelb`);

  const adopted = await helm(['upgrade', '--namespace=purelb', '--reuse-values', 'purelb', CHART_DIR]);
  t.match(adopted, /servicegroups\.purelb\.io: managed by this release/);
  t.same(await liveUndescribed(), [], 'the next helm upgrade applies this version\'s CRDs: every field described');
  const live = await crd('servicegroups.purelb.io');
  t.equal(live.metadata.annotations?.['helm.sh/resource-policy'], 'keep', 'kept on uninstall');
  t.same([...objects(await helm(['get', 'manifest', '--namespace=purelb', 'purelb'])).keys()].filter((k) => k.startsWith('CustomResourceDefinition/')).sort(), CRDS.map((n) => `CustomResourceDefinition/${n}`), 'both are in the release');

  // A later version whose ServiceGroup CRD has one printer column more.
  const next = chartVariant(join(work, 'next'), '0.2.1', (read) => ({
    'crds/servicegroup.yaml': replaced(read('crds/servicegroup.yaml'), "        - { name: Age, type: date, jsonPath: '.metadata.creationTimestamp' }\n", NEW_COLUMN + "        - { name: Age, type: date, jsonPath: '.metadata.creationTimestamp' }\n"),
  }));

  await helm(['upgrade', '--namespace=purelb', '--reuse-values', 'purelb', next]);
  t.ok((await columns()).includes('Overlapping'), 'a later version\'s CRD change arrives with a plain helm upgrade');

  const second = await helm(['install', '--create-namespace', '--namespace=purelb-b', 'other', CHART_DIR]);
  t.match(second, /STATUS: deployed/, 'a second release in another namespace installs (crds.enabled, the default)');
  t.match(second, /servicegroups\.purelb\.io: managed by release purelb\/purelb/, 'and leaves the CRDs to the first');
  t.notOk([...objects(await helm(['get', 'manifest', '--namespace=purelb-b', 'other'])).keys()].some((k) => k.startsWith('CustomResourceDefinition/')), 'they are not in its manifest');
  for (const name of CRDS) t.equal(await owner(name), 'purelb/purelb', `${name} still managed by purelb/purelb`);

  await helm(['uninstall', '--namespace=purelb', 'purelb']);
  for (const name of CRDS) t.equal((await admin.raw('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`)).status, 200, `${name} kept by helm uninstall`);
  t.equal((await admin.raw('GET', '/apis/purelb.io/v1/namespaces/purelb-b/servicegroups/default')).status, 200, 'the other release\'s ServiceGroup is untouched');
  await helm(['uninstall', '--namespace=purelb-b', 'other']);

  // A cluster without the CRDs, and helm install --skip-crds: with custom resources in the
  // chart (bootstrap=chart), helm cannot map them before the CRDs exist, which is why crds/
  // stays; with bootstrap=apps the release creates the CRDs and upgrades them from the start.
  await tools.kubectl(['delete', 'crd', ...CRDS, '--wait=true', '--timeout=60s'], { kubeconfig: kc });
  const refused = await helm(['install', '--namespace=purelb', '--skip-crds', 'purelb', CHART_DIR]).then(
    () => 'installed',
    (e: Error) => e.message,
  );
  t.match(refused, /no matches for kind "(LBNodeAgent|ServiceGroup)"[\s\S]*ensure CRDs are installed first/, '--skip-crds with the chart\'s custom resources fails before anything is created');
  const own = await helm(['install', '--namespace=purelb', '--skip-crds', '--set=bootstrap=apps', 'purelb', CHART_DIR]);
  t.match(own, /servicegroups\.purelb\.io: created by this release/);
  for (const name of CRDS) t.equal(await owner(name), 'purelb/purelb', `${name} created by, and managed by, the release`);
  await helm(['upgrade', '--namespace=purelb', '--reuse-values', 'purelb', next]);
  t.ok((await columns()).includes('Overlapping'), 'and its next helm upgrade changes them');
});
