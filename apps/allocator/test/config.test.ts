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
  t.equal(d.metricsPort, 7472);
  t.equal(d.kubeconfig, undefined);
});

t.test('bad settings are refused with the setting named', async (t) => {
  t.throws(() => loadConfig(['--metrics-port=70000'], {}), ConfigError);
  t.throws(() => loadConfig(['--write-concurrency=0'], {}), { message: /--write-concurrency/ });
  t.throws(() => loadConfig(['--require-loadbalancer-class=maybe'], {}), { message: /--require-loadbalancer-class/ });
  t.throws(() => loadConfig(['--lease-duration=1s', '--renew-deadline=2s'], {}), { message: /--retry-period < --renew-deadline < --lease-duration/ });
  t.throws(() => loadConfig(['--no-such-flag=1'], {}));
});

t.test('the README documents every setting with its default', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { SETTINGS } = await import('../src/config.ts');
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const [flag, env, dflt] of SETTINGS) t.ok(readme.includes(`| \`${flag}\` | \`${env}\` | \`${dflt}\` |`), `${flag} is in the README`);
});
