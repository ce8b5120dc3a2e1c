// The CRDs: every field, status included, described, in the files and as the lab's real
// API server publishes them (OpenAPI v3, what `kubectl explain` reads).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CRD_DIR, type Lab, installCrds, parseYamlObjects, waitFor, withLab } from '@purelb/lab';

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
