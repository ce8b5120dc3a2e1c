import t from 'tap';
import { ConfigError, loadConfig, parseDuration } from '../src/config.ts';

t.test('durations', async (t) => {
  t.same(['250ms', '2s', '1.5s', '1m', '40'].map((x) => parseDuration('--x', x)), [250, 2000, 1500, 60_000, 40]);
  t.throws(() => parseDuration('--lease-duration', '2 hours'), { name: 'SettingsError', message: /--lease-duration: "2 hours"/ });
});

t.test('flags win over the environment, which wins over defaults', async (t) => {
  const c = loadConfig(['--namespace=flag-ns', '--lease-duration=3s', '--renew-deadline=2s'], { PURELB_NAMESPACE: 'env-ns', POD_NAME: 'pod-1', PURELB_RETRY_PERIOD: '500ms', PURELB_REQUIRE_LOADBALANCER_CLASS: 'true' });
  t.equal(c.namespace, 'flag-ns');
  t.equal(c.identity, 'pod-1');
  t.equal(c.leaseDurationMs, 3000);
  t.equal(c.retryPeriodMs, 500);
  t.equal(c.requireLoadBalancerClass, true);
  const d = loadConfig([], { POD_NAMESPACE: 'pod-ns' });
  t.equal(d.namespace, 'pod-ns', 'POD_NAMESPACE is the fallback');
  t.same(d.endpoints, { host: '0.0.0.0', metricsPort: 7472, healthPort: 7474, secure: true, tls: undefined }, 'metrics on HTTPS with token checks by default');
  t.equal(loadConfig(['--metrics-secure=false'], {}).endpoints.secure, false);
  t.equal(d.kubeconfig, undefined);
});

t.test('bad settings are refused with the setting named', async (t) => {
  t.throws(() => loadConfig(['--metrics-port=70000'], {}), ConfigError);
  t.throws(() => loadConfig(['--write-concurrency=0'], {}), { message: /--write-concurrency/ });
  t.throws(() => loadConfig(['--require-loadbalancer-class=maybe'], {}), { message: /--require-loadbalancer-class/ });
  t.throws(() => loadConfig(['--lease-duration=1s', '--renew-deadline=2s'], {}), { message: /--retry-period < --renew-deadline < --lease-duration/ });
  t.throws(() => loadConfig(['--no-such-flag=1'], {}));
  t.throws(() => loadConfig(['--health-port=7472'], {}), { message: /--health-port: 7472 is the --metrics-port too/ });
  t.throws(() => loadConfig(['--metrics-secure=yes please'], {}), { message: /--metrics-secure/ });
  t.throws(() => loadConfig(['--metrics-cert-file=/x.pem'], {}), { message: /--metrics-cert-file and --metrics-key-file go together/ });
  t.throws(() => loadConfig(['--metrics-cert-file=/nonexistent/tls.crt', '--metrics-key-file=/nonexistent/tls.key'], {}), { name: 'SettingsError', message: /--metrics-cert-file: cannot read \/nonexistent\/tls.crt/ });
  t.throws(() => loadConfig(['--metrics-secure=false', '--metrics-cert-file=/a', '--metrics-key-file=/b'], {}), { message: /only used with --metrics-secure=true/ });
});

t.test('a certificate and key from files', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { selfSignedCertificate } = await import('@purelb/k8s-glue');
  const dir = t.testdir({});
  const pair = selfSignedCertificate({ commonName: 'given' });
  writeFileSync(`${dir}/tls.crt`, pair.cert);
  writeFileSync(`${dir}/tls.key`, pair.key);
  const c = loadConfig([`--metrics-cert-file=${dir}/tls.crt`, `--metrics-key-file=${dir}/tls.key`], {});
  t.same(c.endpoints.tls, pair);
  t.throws(() => loadConfig([`--metrics-cert-file=${dir}/tls.key`, `--metrics-key-file=${dir}/tls.key`], {}), { message: /--metrics-cert-file: .*tls.key holds no PEM block of the right kind/ });
});

t.test('the README documents every setting with its default', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { SETTINGS } = await import('../src/config.ts');
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const [flag, env, dflt] of SETTINGS) t.ok(readme.includes(`| \`${flag}\` | \`${env}\` | \`${dflt}\` |`), `${flag} is in the README`);
});
