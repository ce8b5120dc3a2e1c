// The CRDs' admission rules against a real kube-apiserver (tools/kube): each refused row
// of test/admission-cases.ts is refused with HTTP 422, the message naming the object, the
// field and what is wrong; each accepted row is stored. The CRDs must also stay within
// the server's CEL cost budget, which applying them checks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { installCrds, startControlPlane } from '@purelb/lab';
import { ACCEPTED, type AdmissionKind, REFUSED } from './admission-cases.ts';

const dir = mkdtempSync(join(tmpdir(), 'plb-admission-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const cp = await startControlPlane({ dir });
t.teardown(() => cp.stop());
const admin = cp.admin;
await installCrds(admin);
const NS = 'admission';
await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });

const collection = (kind: AdmissionKind): string => `/apis/purelb.io/v1/namespaces/${NS}/${kind === 'ServiceGroup' ? 'servicegroups' : 'lbnodeagents'}`;
const body = (kind: AdmissionKind, name: string, spec: unknown) => ({ apiVersion: 'purelb.io/v1', kind, metadata: { name, namespace: NS }, spec });

t.test('refused at admission, naming the object, the field and what is wrong', async (t) => {
  t.ok(REFUSED.length >= 50, `${REFUSED.length} refused inputs`);
  for (const [i, c] of REFUSED.entries()) {
    const name = `refused-${i}`;
    const r = await admin.raw('POST', collection(c.kind), body(c.kind, name, c.spec));
    t.equal(r.status, 422, `${c.name}: HTTP 422 (${r.status === 201 ? 'stored!' : r.body.slice(0, 120)})`);
    const status = JSON.parse(r.body) as { message?: string; details?: { causes?: { field?: string; message?: string }[] } };
    const message = status.message ?? '';
    t.match(message, `${c.kind}.purelb.io "${name}" is invalid`, `${c.name}: names the object`);
    t.match(message, `${c.field}:`, `${c.name}: names the field ${c.field}`);
    const causes = (status.details?.causes ?? []).filter((x) => x.field === c.field).map((x) => x.message ?? '');
    t.ok(
      causes.some((x) => c.message.test(x)),
      `${c.name}: says ${c.message} about ${c.field} (${message})`,
    );
    t.notMatch(message, /panic|goroutine|\bat [\w.]+ \(/, `${c.name}: no stack trace`);
  }
});

t.test('edge inputs are still accepted', async (t) => {
  for (const [i, c] of ACCEPTED.entries()) {
    const r = await admin.raw('POST', collection(c.kind), body(c.kind, `accepted-${i}`, c.spec));
    t.equal(r.status, 201, `${c.name}: stored (${r.body.slice(0, 300)})`);
  }
});

t.test('an update into a refused state is refused too, and the stored object stays as it was', async (t) => {
  const path = `${collection('ServiceGroup')}/edited`;
  const ok = await admin.raw('POST', collection('ServiceGroup'), body('ServiceGroup', 'edited', { local: { v4pools: [{ pool: '192.0.2.10-192.0.2.20', subnet: '192.0.2.0/24' }] } }));
  t.equal(ok.status, 201);
  const r = await admin.raw('PATCH', path, { spec: { local: { v4pools: [{ pool: '192.0.2.10-192.0.2.20', subnet: '0.0.0.0/0' }] } } }, 'application/merge-patch+json');
  t.equal(r.status, 422);
  t.match(r.body, /spec\.local\.v4pools\[0\]\.subnet: Invalid value: .*is shorter than \/8/);
  const stored = await admin.get<{ spec: { local: { v4pools: { subnet: string }[] } } }>(path);
  t.equal(stored.spec.local.v4pools[0]?.subnet, '192.0.2.0/24', 'the stored subnet is unchanged');
});
