// loadKubeConfig over temporary files.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfigError, loadKubeConfig, tokenFromFile } from '../src/index.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-glue-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const yaml = (server: string, user: string, extraCluster = ''): string => `apiVersion: v1
kind: Config
current-context: one
contexts:
- name: one
  context: {cluster: c1, user: u1, namespace: purelb}
- name: two
  context: {cluster: c2, user: u2}
clusters:
- name: c1
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(PEM)}
${extraCluster}
- name: c2
  cluster:
    server: https://[2001:db8::1]:6443
    certificate-authority: ca.pem
    insecure-skip-tls-verify: true
users:
${user}
`;

const users = `- name: u1
  user: {token: abc}
- name: u2
  user:
    client-certificate: client.pem
    client-key-data: ${b64(KEY)}
`;

t.test('a kubeconfig file: data fields, relative files, contexts', async (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'ca.pem'), PEM);
  writeFileSync(join(dir, 'client.pem'), PEM);
  const file = join(dir, 'config');
  writeFileSync(file, yaml('https://192.0.2.1:6443', users));
  t.same(loadKubeConfig({ kubeconfig: file }), { server: 'https://192.0.2.1:6443', caPem: PEM, token: 'abc', namespace: 'purelb' });
  t.same(loadKubeConfig({ kubeconfig: file, context: 'two' }), { server: 'https://[2001:db8::1]:6443', caPem: PEM, certPem: PEM, keyPem: KEY, insecureSkipTlsVerify: true });
  t.same(loadKubeConfig({ env: { KUBECONFIG: `/nonexistent:${file}` } }).server, 'https://192.0.2.1:6443', 'the first existing file of KUBECONFIG');
});

t.test('a token file is read again after the refresh period', async (t) => {
  const dir = tmp(t);
  const tokenPath = join(dir, 'token');
  writeFileSync(tokenPath, 'first\n');
  const file = join(dir, 'config');
  writeFileSync(file, yaml('https://192.0.2.1:6443', `- name: u1\n  user: {tokenFile: token}\n`));
  const cfg = loadKubeConfig({ kubeconfig: file, tokenRefreshMs: 30 });
  const token = cfg.token as () => string;
  t.equal(typeof token, 'function');
  t.equal(token(), 'first');
  writeFileSync(tokenPath, 'second\n');
  t.equal(token(), 'first', 'cached within the period');
  await new Promise((r) => setTimeout(r, 40));
  t.equal(token(), 'second', 'rotated');
  rmSync(tokenPath);
  await new Promise((r) => setTimeout(r, 40));
  t.equal(token(), 'second', 'a failed re-read keeps the last token');
  t.throws(() => tokenFromFile(join(dir, 'missing'))(), KubeConfigError);
});

t.test('in cluster: service account files and the service environment', async (t) => {
  const sa = tmp(t);
  writeFileSync(join(sa, 'token'), 'sa-token');
  writeFileSync(join(sa, 'ca.crt'), PEM);
  writeFileSync(join(sa, 'namespace'), 'purelb\n');
  const cfg = loadKubeConfig({ serviceAccountDir: sa, env: { KUBERNETES_SERVICE_HOST: '2001:db8::10', KUBERNETES_SERVICE_PORT: '443' } });
  t.equal(cfg.server, 'https://[2001:db8::10]:443');
  t.equal(cfg.caPem, PEM);
  t.equal(cfg.namespace, 'purelb');
  t.equal((cfg.token as () => string)(), 'sa-token');
  t.throws(() => loadKubeConfig({ serviceAccountDir: sa, env: { KUBERNETES_SERVICE_HOST: '192.0.2.1' } }), new KubeConfigError('', 'KUBERNETES_SERVICE_PORT', 'is not set although KUBERNETES_SERVICE_HOST is'));
});

t.test('errors name the file and the field', async (t) => {
  const dir = tmp(t);
  const write = (name: string, text: string): string => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const cases: [string, string, string | undefined, string][] = [
    ['no-server', yaml('', users).replace('server: \n', ''), undefined, 'clusters[c1].cluster.server'],
    ['bad-url', yaml('not a url', users), undefined, 'clusters[c1].cluster.server'],
    ['no-context', yaml('https://192.0.2.1', users), 'three', 'contexts[three]'],
    ['missing-ca-file', yaml('https://192.0.2.1', users), 'two', 'clusters[c2].cluster.certificate-authority'],
    ['exec-without-apiVersion', yaml('https://192.0.2.1', `- name: u1\n  user:\n    exec: {command: aws}\n`), undefined, 'users[u1].user.exec.apiVersion'],
    ['exec-v1alpha1', yaml('https://192.0.2.1', `- name: u1\n  user:\n    exec: {command: aws, apiVersion: client.authentication.k8s.io/v1alpha1}\n`), undefined, 'users[u1].user.exec.apiVersion'],
    ['exec-interactive', yaml('https://192.0.2.1', `- name: u1\n  user:\n    exec: {command: kubelogin, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Always}\n`), undefined, 'users[u1].user.exec.interactiveMode'],
    ['auth-provider', yaml('https://192.0.2.1', `- name: u1\n  user:\n    auth-provider: {name: oidc}\n`), undefined, 'users[u1].user.auth-provider'],
    ['cert-without-key', yaml('https://192.0.2.1', `- name: u1\n  user:\n    client-certificate-data: ${b64(PEM)}\n`), undefined, 'users[u1].user.client-key'],
    ['bad-ca-data', yaml('https://192.0.2.1', users).replace(b64(PEM), b64('nope')), undefined, 'clusters[c1].cluster.certificate-authority-data'],
    ['not-yaml', ': : :\n  - [', undefined, ''],
  ];
  for (const [name, text, context, field] of cases) {
    const file = write(name, text);
    try {
      loadKubeConfig({ kubeconfig: file, context });
      t.fail(`${name}: no error`);
    } catch (e) {
      t.ok(e instanceof KubeConfigError, `${name}: a KubeConfigError`);
      const err = e as KubeConfigError;
      t.equal(err.file, file, `${name}: names the file`);
      t.equal(err.field, field, `${name}: names the field (${err.message})`);
      t.equal(err.code, 'K8S_CONFIG');
    }
  }
  t.throws(() => loadKubeConfig({ env: { KUBECONFIG: '/nonexistent/a:/nonexistent/b' } }), /^environment \(KUBECONFIG\): none of/);
});
