import t from 'tap';
import { readFileSync } from 'node:fs';
import { SettingsError, settingsMarkdown } from '@purelb/k8s-glue';
import { SETTINGS, loadConfig } from '../src/config.ts';

t.test('defaults, flags and the environment', async (t) => {
  const c = loadConfig(['--memberlist-port=7000'], { NODE_NAME: 'node-1', PURELB_VIRTUAL_LINK_KIND: 'bridge' });
  t.same(
    [c.nodeName, c.memberlistPort, c.virtualLinkKind, c.namespace, c.endpoints.metricsPort, c.endpoints.healthPort, c.endpoints.secure, c.leaseDurationMs, c.renewPeriodMs, c.addressLifetimeS, c.stallThresholdMs, c.memberlistBind, c.kubeconfig],
    ['node-1', 7000, 'bridge', 'purelb', 7473, 7475, true, 10_000, 2000, 1, 250, undefined, undefined],
  );
});

t.test('bad settings are refused, naming the setting', async (t) => {
  t.throws(() => loadConfig([], {}), { name: 'SettingsError', message: /--node-name/ });
  t.throws(() => loadConfig(['--node-name=n', '--renew-period=6s'], {}), { message: /--renew-period/ });
  t.throws(() => loadConfig(['--node-name=n', '--address-lifetime=0'], {}), { message: /--address-lifetime: at least 1 second/ });
  t.throws(() => loadConfig(['--node-name=n', '--stall-threshold=10ms'], {}), { message: /--stall-threshold/ });
  t.throws(() => loadConfig(['--node-name=n', '--memberlist-port=99999'], {}), SettingsError);
  t.throws(() => loadConfig(['--node-name=n', '--bogus=1'], {}), SettingsError);
});

t.test('the README documents every setting', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  t.ok(readme.includes(settingsMarkdown(SETTINGS)), 'the settings table is the one the code renders');
});
