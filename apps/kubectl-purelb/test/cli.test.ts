// The command line and the output formats, offline (validate; usage errors; unreadable input).
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { ExitCode } from '../src/errors.ts';
import { formatTable } from '../src/output.ts';
import { parseCommandLine, run } from '../src/cli.ts';
import { VERSION } from '../src/version.ts';
import pkg from '../package.json' with { type: 'json' };

function io(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: (s: string) => void out.push(s),
      stderr: (s: string) => void err.push(s),
      env: { KUBECONFIG: '/nonexistent/kubeconfig' },
      readFile: (f: string) => {
        if (!(f in files)) throw new Error(`ENOENT: no such file or directory, open '${f}'`);
        return files[f]!;
      },
    },
  };
}

const GOOD = 'apiVersion: purelb.io/v1\nkind: LBNodeAgent\nmetadata: {name: default}\nspec: {local: {extlbint: kube-lb0}}\n';
const BAD = 'apiVersion: purelb.io/v1\nkind: LBNodeAgent\nmetadata: {name: bad}\nspec: {local: {extlbint: lo}}\n';

t.test('the version is package.json\'s', async (t) => {
  t.equal(VERSION, pkg.version);
});

t.test('usage errors exit 2 and name the flag or argument', async (t) => {
  const table: [string[], RegExp][] = [
    [[], /a subcommand is required/],
    [['frobnicate'], /unknown subcommand "frobnicate"/],
    [['status', 'extra'], /unexpected argument "extra"/],
    [['status', '-o', 'xml'], /--output: "xml" is not one of table, json, yaml/],
    [['status', '--bogus'], /Unknown option '--bogus'/],
    [['validate'], /name at least one manifest with -f FILE/],
    [['status', '-f', 'x.yaml'], /-f\/--filename belongs to validate/],
    [['pools', '--simulate-drain', 'n'], /--simulate-drain belongs to election/],
    [['status', '--request-timeout', '0'], /--request-timeout: "0"/],
    [['migrate'], /migrate: name what to migrate from: "migrate metallb"/],
    [['migrate', 'nginx'], /not "nginx"/],
    [['migrate', 'metallb', '--subnet', '192.0.2.0/33'], /--subnet: "192\.0\.2\.0\/33" is not a CIDR/],
    [['status', '--apply'], /--apply belong to migrate/],
  ];
  for (const [argv, message] of table) {
    const x = io();
    t.equal(await run(argv, x.io), ExitCode.usage, argv.join(' '));
    t.match(x.err.join(''), message, argv.join(' '));
    t.same(x.out, [], `${argv.join(' ')}: nothing on stdout`);
  }
});

t.test('help and version exit 0', async (t) => {
  const h = io();
  t.equal(await run(['--help'], h.io), ExitCode.ok);
  t.match(h.out.join(''), /Exit status: 0 nothing wrong, 1 problems found/);
  const v = io();
  t.equal(await run(['--version'], v.io), ExitCode.ok);
  t.equal(v.out.join(''), `kubectl-purelb ${VERSION}\n`);
});

t.test('validate: 0 when valid, 1 with problems, 3 for a missing file; table, json and yaml', async (t) => {
  const ok = io({ 'good.yaml': GOOD });
  t.equal(await run(['validate', '-f', 'good.yaml'], ok.io), ExitCode.ok);
  t.match(ok.out.join(''), /good\.yaml\s+1\s+LBNodeAgent\s+default\s+valid/);
  t.notMatch(ok.out.join(''), /PROBLEMS/);

  const bad = io({ 'good.yaml': GOOD, 'bad.yaml': BAD });
  t.equal(await run(['validate', '-f', 'good.yaml', '--filename', 'bad.yaml'], bad.io), ExitCode.problems);
  t.match(bad.out.join(''), /PROBLEMS \(1\)\n- bad\.yaml#1: LBNodeAgent "bad": spec\.local\.extlbint: "lo" is reserved/);

  const json = io({ 'bad.yaml': BAD });
  t.equal(await run(['validate', '-f', 'bad.yaml', '-o', 'json'], json.io), ExitCode.problems);
  const data = JSON.parse(json.out.join('')) as { problems: { object: string; field: string }[] };
  t.same(data.problems.map((p) => [p.object, p.field]), [['bad.yaml#1', 'spec.local.extlbint']]);

  const yaml = io({ 'bad.yaml': BAD });
  t.equal(await run(['validate', '-f', 'bad.yaml', '-o', 'yaml'], yaml.io), ExitCode.problems);
  t.same(parseYaml(yaml.out.join('')), data, 'yaml says what json says');

  const missing = io();
  t.equal(await run(['validate', '-f', 'nope.yaml'], missing.io), ExitCode.unreadable);
  t.match(missing.err.join(''), /-f nope\.yaml: ENOENT/);
});

t.test('a cluster command without a usable kubeconfig exits 3 naming it', async (t) => {
  const x = io();
  t.equal(await run(['status'], x.io), ExitCode.unreadable);
  t.match(x.err.join(''), /\/nonexistent\/kubeconfig/);
});

t.test('parseCommandLine defaults', async (t) => {
  t.same(parseCommandLine(['election', '--simulate-drain', 'node-a', '-n', 'lb', '--context', 'c', '--kubeconfig', 'k']), {
    command: 'election',
    output: 'table',
    namespace: 'lb',
    kubeconfig: 'k',
    context: 'c',
    allocatorLease: 'purelb-allocator',
    timeoutMs: 30_000,
    files: [],
    drain: 'node-a',
    subnets: [],
    metallbNamespace: 'metallb-system',
    apply: false,
  });
});

t.test('formatTable: aligned columns, <none> for empty cells', async (t) => {
  t.equal(formatTable(['name', 'value'], [['a', 1], ['longer', undefined]]), 'NAME     VALUE\na        1\nlonger   <none>\n');
});
