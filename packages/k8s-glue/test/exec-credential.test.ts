// kubeconfig `exec` credential plugins, with a small shell script as the plugin: it counts
// its runs in a file, records its arguments and KUBERNETES_EXEC_INFO, and prints an
// ExecCredential with an expiry (or fails, or prints garbage, as told by its env).
import t, { type Test } from 'tap';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiError, KubeClient, KubeConfigError, KubeErrorCode, execRefreshMarginMs, loadKubeConfig } from '../src/index.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

const PLUGIN = `#!/bin/sh
n=$(( $(cat "$DIR/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$DIR/count"
printf '%s\\n' "$@" > "$DIR/args"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$DIR/info"
case "$MODE" in
  fail) echo "error: the refresh token expired; run login again" >&2; echo "second line" >&2; exit 3 ;;
  garbage) echo "Please visit https://login.example to sign in" ; exit 0 ;;
  cert) printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"clientCertificateData":"%s","clientKeyData":"%s"}}\\n' "$API" "$CERT" "$KEY"; exit 0 ;;
esac
exp=$(date -u -d "@$(( $(date +%s) + LIFETIME ))" +%Y-%m-%dT%H:%M:%SZ)
printf '{"apiVersion":"%s","kind":"ExecCredential","status":{"token":"tok-%s","expirationTimestamp":"%s"}}\\n' "$API" "$n" "$exp"
`;

/** A string as it appears inside a JSON string (the plugin prints it between quotes). */
const jsonText = (s: string): string => JSON.stringify(s).slice(1, -1);

interface Plugin {
  dir: string;
  file: string;
  runs(): number;
  args(): string[];
  info(): { apiVersion: string; kind: string; spec: { interactive: boolean; cluster?: { server: string; 'certificate-authority-data'?: string } } };
}

function plugin(t: Test, opts: { api?: string; lifetime?: number; mode?: string; server?: string; clusterInfo?: boolean; command?: string; extraEnv?: Record<string, string> } = {}): Plugin {
  const dir = mkdtempSync(join(tmpdir(), 'k8s-glue-exec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'plugin.sh'), PLUGIN);
  chmodSync(join(dir, 'plugin.sh'), 0o755);
  const api = opts.api ?? 'client.authentication.k8s.io/v1';
  const env = { DIR: dir, API: api, LIFETIME: String(opts.lifetime ?? 3600), MODE: opts.mode ?? 'token', CERT: jsonText(PEM), KEY: jsonText(PEM.replaceAll('CERTIFICATE', 'PRIVATE KEY')), ...opts.extraEnv };
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'c',
      contexts: [{ name: 'c', context: { cluster: 'k', user: 'eks-admin' } }],
      clusters: [{ name: 'k', cluster: { server: opts.server ?? 'https://192.0.2.1:6443', 'certificate-authority-data': Buffer.from(PEM).toString('base64') } }],
      users: [
        {
          name: 'eks-admin',
          user: {
            exec: {
              apiVersion: api,
              // A command with a slash is relative to the kubeconfig's folder.
              command: opts.command ?? './plugin.sh',
              args: ['token', '--cluster-id', 'lab one'],
              env: Object.entries(env).map(([name, value]) => ({ name, value })),
              installHint: 'install it with: brew install plugin\nsecond hint line',
              provideClusterInfo: opts.clusterInfo ?? false,
              interactiveMode: 'IfAvailable',
            },
          },
        },
      ],
    }),
  );
  const read = (name: string): string => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
  return {
    dir,
    file,
    runs: () => Number(read('count').trim() || '0'),
    args: () => read('args').trim().split('\n'),
    info: () => JSON.parse(read('info')) as ReturnType<Plugin['info']>,
  };
}

t.test('runs the command once with its args, env and KUBERNETES_EXEC_INFO; caches the token', async (t) => {
  const p = plugin(t, { clusterInfo: true });
  const cfg = loadKubeConfig({ kubeconfig: p.file });
  t.ok(cfg.exec, 'an exec source');
  t.equal(cfg.token, undefined);
  t.equal(p.runs(), 0, 'nothing runs at load time');
  const first = await Promise.all([cfg.exec!.get(), cfg.exec!.get(), cfg.exec!.get()]);
  t.same(first.map((c) => c.token), ['tok-1', 'tok-1', 'tok-1'], 'concurrent callers share one run');
  for (let i = 0; i < 20; i++) t.equal((await cfg.exec!.get()).token, 'tok-1');
  t.equal(p.runs(), 1, 'one run for 23 requests');
  t.same(p.args(), ['token', '--cluster-id', 'lab one']);
  const info = p.info();
  t.equal(info.apiVersion, 'client.authentication.k8s.io/v1');
  t.equal(info.kind, 'ExecCredential');
  t.equal(info.spec.interactive, false);
  t.equal(info.spec.cluster?.server, 'https://192.0.2.1:6443', 'provideClusterInfo passes the cluster');
  t.equal(Buffer.from(info.spec.cluster?.['certificate-authority-data'] ?? '', 'base64').toString(), PEM);
  const exp = (await cfg.exec!.get()).expiresAt;
  t.ok(exp && Math.abs(exp.getTime() - Date.now() - 3600_000) < 5000, 'the expiry is read');
});

t.test('v1beta1; no cluster info unless asked', async (t) => {
  const p = plugin(t, { api: 'client.authentication.k8s.io/v1beta1' });
  const cfg = loadKubeConfig({ kubeconfig: p.file });
  t.equal((await cfg.exec!.get()).token, 'tok-1');
  t.equal(p.info().apiVersion, 'client.authentication.k8s.io/v1beta1');
  t.equal(p.info().spec.cluster, undefined);
});

t.test('refreshed a margin before expirationTimestamp', async (t) => {
  t.equal(execRefreshMarginMs(3600_000), 300_000, 'an hour: 5 min before');
  t.equal(execRefreshMarginMs(900_000), 90_000, '15 min: 10%');
  t.equal(execRefreshMarginMs(60_000), 10_000, 'a minute: 10 s');
  t.equal(execRefreshMarginMs(6000), 3000, 'never more than half the lifetime');
  t.equal(execRefreshMarginMs(-5000), 0);
  // Lifetime 6 s (5-6 s after rounding to whole seconds): refreshed 2.5-3 s after the run.
  const p = plugin(t, { lifetime: 6 });
  const cfg = loadKubeConfig({ kubeconfig: p.file });
  t.equal((await cfg.exec!.get()).token, 'tok-1');
  await new Promise((r) => setTimeout(r, 1000));
  t.equal((await cfg.exec!.get()).token, 'tok-1', 'cached 1 s later');
  t.equal(p.runs(), 1);
  await new Promise((r) => setTimeout(r, 2300));
  t.equal((await cfg.exec!.get()).token, 'tok-2', 'run again before it expires');
  t.equal(p.runs(), 2);
});

t.test('the client sends the token, and on a 401 runs the plugin again and retries once', async (t) => {
  const seen: string[] = [];
  const srv = createServer((req, res) => {
    seen.push(`${req.url} ${req.headers.authorization}`);
    if (req.headers.authorization === 'Bearer tok-1') {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"kind":"Status","code":401,"reason":"Unauthorized","message":"Unauthorized"}');
      return;
    }
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const p = plugin(t, { server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
  const client = new KubeClient(loadKubeConfig({ kubeconfig: p.file }));
  t.teardown(() => client.close());
  t.same(await client.get('/api/v1/namespaces/a'), { ok: true });
  t.same(seen, ['/api/v1/namespaces/a Bearer tok-1', '/api/v1/namespaces/a Bearer tok-2'], 'refused, then sent again with a new token');
  t.equal(p.runs(), 2);
  for (let i = 0; i < 5; i++) await client.get('/api/v1/namespaces/b');
  t.equal(p.runs(), 2, 'the new token is cached');
  t.ok(seen.slice(2).every((s) => s.endsWith('Bearer tok-2')));

});

t.test('a watch refused with 401 fails, and the next attempt (an informer retrying) runs the plugin again', async (t) => {
  const seen: string[] = [];
  const srv = createServer((req, res) => {
    seen.push(String(req.headers.authorization));
    if (req.headers.authorization === 'Bearer tok-1') {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"kind":"Status","code":401,"reason":"Unauthorized","message":"Unauthorized"}');
      return;
    }
    res.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const p = plugin(t, { server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
  const client = new KubeClient(loadKubeConfig({ kubeconfig: p.file }));
  t.teardown(() => client.close());
  const watchOnce = async (): Promise<unknown> => {
    try {
      for await (const _ of client.watch('/api/v1/namespaces', { timeoutSeconds: 5 })) break;
      return 'ended';
    } catch (e) {
      return e;
    }
  };
  const first = await watchOnce();
  t.ok(first instanceof KubeApiError && first.code === KubeErrorCode.Unauthorized);
  t.equal(await watchOnce(), 'ended');
  t.same(seen, ['Bearer tok-1', 'Bearer tok-2']);
  t.equal(p.runs(), 2);
});

t.test('a 401 with a token that keeps being refused rejects after one retry', async (t) => {
  const srv = createServer((_req, res) => {
    res.writeHead(401);
    res.end('{"kind":"Status","code":401,"reason":"Unauthorized","message":"Unauthorized"}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const p = plugin(t, { server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
  const client = new KubeClient(loadKubeConfig({ kubeconfig: p.file }));
  t.teardown(() => client.close());
  const err = await client.get('/api/v1/namespaces/a').catch((e: unknown) => e);
  t.ok(err instanceof KubeApiError && err.code === KubeErrorCode.Unauthorized);
  t.equal(p.runs(), 2, 'one run, one more after the 401, no loop');
});

t.test('failures name the kubeconfig, the user and the command, with the exit code and stderr first line', async (t) => {
  const fail = plugin(t, { mode: 'fail' });
  const cfg = loadKubeConfig({ kubeconfig: fail.file });
  const e = await cfg.exec!.get().catch((x: unknown) => x);
  t.ok(e instanceof KubeConfigError);
  const err = e as KubeConfigError;
  t.equal(err.code, 'K8S_CONFIG');
  t.equal(err.file, fail.file);
  t.equal(err.field, 'users[eks-admin].user.exec');
  t.equal(err.message, `${fail.file} (users[eks-admin].user.exec): user eks-admin: command ./plugin.sh token --cluster-id lab one: failed with exit code 3: error: the refresh token expired; run login again`);
  t.notMatch(err.message, /second line|\n/, 'one line, no stack');
  await cfg.exec!.get().catch(() => undefined);
  t.equal(fail.runs(), 2, 'a failure is not cached');

  const missing = plugin(t, { command: 'purelb-no-such-plugin' });
  const m = await loadKubeConfig({ kubeconfig: missing.file }).exec!.get().catch((x: unknown) => x);
  t.match(String((m as Error).message), /user eks-admin: command purelb-no-such-plugin token --cluster-id lab one: not found \(install it with: brew install plugin\)$/);

  const garbage = plugin(t, { mode: 'garbage' });
  const g = await loadKubeConfig({ kubeconfig: garbage.file }).exec!.get().catch((x: unknown) => x);
  t.match(String((g as Error).message), /did not print an ExecCredential \(not JSON: Please visit/);

  const client = new KubeClient(loadKubeConfig({ kubeconfig: fail.file }));
  t.teardown(() => client.close());
  const r = await client.get('/api/v1/namespaces').catch((x: unknown) => x);
  t.ok(r instanceof KubeConfigError, 'a request rejects with the plugin error');
  const w = await (async () => {
    for await (const _ of client.watch('/api/v1/namespaces')) break;
  })().catch((x: unknown) => x);
  t.ok(w instanceof KubeConfigError, 'a watch too');
});

t.test('an answer of another apiVersion is refused; a client certificate and key are read', async (t) => {
  const p = plugin(t);
  writeFileSync(p.file, readFileSync(p.file, 'utf8').replace('"name":"API","value":"client.authentication.k8s.io/v1"', '"name":"API","value":"client.authentication.k8s.io/v1beta1"'));
  const e = await loadKubeConfig({ kubeconfig: p.file }).exec!.get().catch((x: unknown) => x);
  t.match(String((e as Error).message), /answered apiVersion client\.authentication\.k8s\.io\/v1beta1, asked for client\.authentication\.k8s\.io\/v1$/);

  const c = plugin(t, { mode: 'cert' });
  const cred = await loadKubeConfig({ kubeconfig: c.file }).exec!.get();
  t.equal(cred.certPem, PEM);
  t.match(cred.keyPem, /BEGIN PRIVATE KEY/);
  t.equal(cred.token, undefined);
  t.equal(cred.expiresAt, undefined);
});
