import { closeSync, openSync, readFileSync } from 'node:fs';
import t from 'tap';
import fc from 'fast-check';
import { Counter, Gauge, Histogram, MetricsError, MetricsErrorCode, MetricsRegistry, buildInfo, processMetrics } from '../src/index.ts';

interface Sample {
  readonly name: string;
  readonly labels: readonly (readonly [string, string])[];
  readonly value: number;
}

interface Parsed {
  readonly help: Map<string, string>;
  readonly type: Map<string, string>;
  readonly samples: Sample[];
}

/** A strict reader of the text format (0.0.4): throws on anything it does not expect. */
function parseExposition(text: string): Parsed {
  if (text !== '' && !text.endsWith('\n')) throw new Error('the text does not end with a newline');
  const out: Parsed = { help: new Map(), type: new Map(), samples: [] };
  for (const line of text.split('\n').slice(0, -1)) {
    // The s flag: a HELP text may hold U+2028, which JavaScript's . would not match.
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/s.exec(line);
    if (m) {
      out.help.set(m[1]!, m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)));
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (m) {
      out.type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const name = m[1]!;
    let i = name.length;
    const labels: [string, string][] = [];
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(i));
        if (!l) throw new Error(`bad label at ${i}: ${JSON.stringify(line)}`);
        i += l[0].length;
        let v = '';
        for (;;) {
          const c = line[i++];
          if (c === undefined) throw new Error(`unterminated label value: ${JSON.stringify(line)}`);
          if (c === '"') break;
          if (c === '\\') {
            const e = line[i++];
            if (e === 'n') v += '\n';
            else if (e === '\\' || e === '"') v += e;
            else throw new Error(`bad escape \\${e}: ${JSON.stringify(line)}`);
          } else v += c;
        }
        labels.push([l[1]!, v]);
        if (line[i] === ',') i++;
        else if (line[i] !== '}') throw new Error(`expected , or } at ${i}: ${JSON.stringify(line)}`);
      }
      i++;
    }
    const rest = line.slice(i);
    const v = /^ (\+Inf|-Inf|NaN|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/.exec(rest);
    if (!v) throw new Error(`bad value ${JSON.stringify(rest)}: ${JSON.stringify(line)}`);
    const value = v[1] === '+Inf' ? Infinity : v[1] === '-Inf' ? -Infinity : Number(v[1]);
    out.samples.push({ name, labels, value });
  }
  return out;
}

function value(p: Parsed, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  return p.samples.find((s) => s.name === name && s.labels.length === want.length && want.every(([k, v]) => s.labels.some(([k2, v2]) => k2 === k && v2 === v)))?.value;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof MetricsError ? e.code : `not a MetricsError: ${String(e)}`;
  }
  return undefined;
}

t.test('the exposition, exactly', async (t) => {
  const registry = new MetricsRegistry();
  const requests = new Counter({ name: 'purelb_requests_total', help: 'Requests served.', labelNames: ['method', 'code'], registry });
  const temp = new Gauge({ name: 'purelb_temperature', help: 'Degrees.', registry });
  new Gauge({ name: 'purelb_unused', help: 'Has labels, no series yet.', labelNames: ['x'], registry });
  requests.inc({ method: 'POST', code: '500' });
  // The object's key order differs from the declaration: the output follows the declaration.
  requests.inc({ code: 200, method: 'GET' }, 2.5);
  temp.set(-3);
  t.equal(
    registry.metrics(),
    [
      '# HELP purelb_requests_total Requests served.',
      '# TYPE purelb_requests_total counter',
      'purelb_requests_total{method="GET",code="200"} 2.5',
      'purelb_requests_total{method="POST",code="500"} 1',
      '# HELP purelb_temperature Degrees.',
      '# TYPE purelb_temperature gauge',
      'purelb_temperature -3',
      '# HELP purelb_unused Has labels, no series yet.',
      '# TYPE purelb_unused gauge',
      '',
    ].join('\n'),
  );
  t.equal(registry.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  t.equal(new MetricsRegistry().metrics(), '', 'an empty registry writes nothing');
});

t.test('special values are written as Prometheus spells them', async (t) => {
  const registry = new MetricsRegistry();
  const g = new Gauge({ name: 'g', help: 'h', labelNames: ['v'], registry });
  const table: [number, string][] = [
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
    [0.1, '0.1'],
    [1e21, '1e+21'],
    [1e-7, '1e-7'],
    [-0.5, '-0.5'],
    [2 ** 53, '9007199254740992'],
  ];
  for (const [i, [v]] of table.entries()) g.set({ v: String(i) }, v);
  const text = registry.metrics();
  for (const [i, [v, written]] of table.entries()) {
    t.match(text, new RegExp(`^g\\{v="${i}"\\} ${written.replace('+', '\\+')}$`, 'm'), `${v} is written ${written}`);
  }
  const parsed = parseExposition(text);
  t.equal(parsed.samples.length, table.length, 'the reader accepts every line');
});

t.test('escaping: label values (backslash, double quote, newline) and HELP (backslash, newline)', async (t) => {
  const registry = new MetricsRegistry();
  const g = new Gauge({ name: 'purelb_escape', help: 'a \\ backslash,\na newline and "quotes" kept', labelNames: ['v'], registry });
  g.set({ v: 'C:\\dir "x"\nnext' }, 1);
  const text = registry.metrics();
  t.match(text, '# HELP purelb_escape a \\\\ backslash,\\na newline and "quotes" kept\n');
  t.match(text, 'purelb_escape{v="C:\\\\dir \\"x\\"\\nnext"} 1\n');
  t.equal(text.split('\n').length, 4, 'no raw newline inside a line');
  const parsed = parseExposition(text);
  t.equal(parsed.help.get('purelb_escape'), 'a \\ backslash,\na newline and "quotes" kept');
  t.same(parsed.samples[0]?.labels, [['v', 'C:\\dir "x"\nnext']]);
});

t.test('property: any label values and help text read back as written', async (t) => {
  const text = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '\\', '"', '\n', '{', '}', ',', '=', 'é', '\u2028', 'n'), maxLength: 12 });
  fc.assert(
    fc.property(text, fc.uniqueArray(fc.tuple(text, text), { maxLength: 6, selector: (p) => JSON.stringify(p) }), fc.integer({ min: -1e6, max: 1e6 }), (help, pairs, n) => {
      const registry = new MetricsRegistry();
      const g = new Gauge({ name: 'p', help, labelNames: ['a', 'b'], registry });
      for (const [a, b] of pairs) g.set({ a, b }, n);
      const parsed = parseExposition(registry.metrics());
      if (parsed.help.get('p') !== help) return false;
      if (parsed.samples.length !== pairs.length) return false;
      for (const [a, b] of pairs) if (value(parsed, 'p', { a, b }) !== n) return false;
      return parsed.samples.every((s) => s.labels.map(([k]) => k).join() === 'a,b');
    }),
    { numRuns: 300 },
  );
  t.pass('300 random label sets read back');
});

t.test('property: the output depends on the state, not on the order of updates', async (t) => {
  const op = fc.tuple(fc.constantFrom('x', 'y', 'z', 'x"y'), fc.constantFrom('v4', 'v6'), fc.integer({ min: 0, max: 5 }));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 20 }), fc.infiniteStream(fc.nat()), (ops, rnd) => {
      const shuffled = [...ops];
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = rnd.next().value % (i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      const render = (list: typeof ops): string => {
        const registry = new MetricsRegistry();
        const c = new Counter({ name: 'c_total', help: 'h', labelNames: ['group', 'family'], registry });
        for (const [group, family, n] of list) c.inc({ family, group }, n);
        return registry.metrics();
      };
      return render(ops) === render(shuffled);
    }),
    { numRuns: 200 },
  );
  t.pass('200 shuffles gave identical text');
});

t.test('counter: inc, labels, reset, and no way down', async (t) => {
  const c = new Counter({ name: 'purelb_c_total', help: 'h' });
  t.equal(c.get(), 0, 'starts at 0');
  c.inc();
  c.inc(2);
  c.inc(0);
  t.equal(c.get(), 3);
  c.reset();
  t.equal(c.get(), 0, 'reset goes back to 0 for a metric without labels');
  t.equal(codeOf(() => c.inc(-1)), MetricsErrorCode.NegativeIncrement);
  t.throws(() => c.inc(-1), /purelb_c_total.*negative/, 'the message names the metric');
  t.equal(codeOf(() => c.inc(NaN)), MetricsErrorCode.InvalidValue);
  t.equal(codeOf(() => c.inc('1' as unknown as number)), MetricsErrorCode.InvalidValue);
  t.equal(c.get(), 0, 'refused increments changed nothing');

  const l = new Counter({ name: 'purelb_l_total', help: 'h', labelNames: ['reason'] });
  t.equal(l.get({ reason: 'a' }), undefined, 'no series until used');
  l.inc({ reason: 'a' });
  l.inc({ reason: 'a' }, 4);
  l.inc({ reason: 'b' });
  t.equal(l.get({ reason: 'a' }), 5);
  t.equal(l.get({ reason: 'b' }), 1);
  t.equal(codeOf(() => l.inc({ reason: 'a' }, -2)), MetricsErrorCode.NegativeIncrement);
  l.reset();
  t.equal(l.get({ reason: 'a' }), undefined, 'reset forgets labelled series');
  t.equal(l.exposition(), '# HELP purelb_l_total h\n# TYPE purelb_l_total counter\n');
});

t.test('gauge: set, inc, dec, labels, reset', async (t) => {
  const g = new Gauge({ name: 'purelb_g', help: 'h' });
  t.equal(g.get(), 0);
  g.set(10);
  g.inc();
  g.inc(4);
  g.dec();
  g.dec(20);
  t.equal(g.get(), -6);
  t.equal(codeOf(() => g.set(undefined as unknown as number)), MetricsErrorCode.InvalidValue);
  const l = new Gauge({ name: 'purelb_lg', help: 'h', labelNames: ['group', 'family'] });
  l.set({ group: 'default', family: 'IPv4' }, 254);
  l.inc({ group: 'default', family: 'IPv4' });
  l.dec({ group: 'default', family: 'IPv6' }, 2);
  t.equal(l.get({ family: 'IPv4', group: 'default' }), 255);
  t.equal(l.get({ group: 'default', family: 'IPv6' }), -2);
  t.equal(codeOf(() => l.set({ group: 'x', family: 'IPv4' }, '3' as unknown as number)), MetricsErrorCode.InvalidValue);
  l.reset();
  t.equal(l.get({ group: 'default', family: 'IPv4' }), undefined);
});

t.test('names and labels are checked; errors carry a stable code and name the metric', async (t) => {
  const badNames = ['', '1abc', 'a-b', 'a b', 'é', 'a.b'];
  for (const name of badNames) t.equal(codeOf(() => new Counter({ name, help: 'h' })), MetricsErrorCode.InvalidName, `metric name ${JSON.stringify(name)}`);
  for (const name of ['a', '_a', 'a:b', ':a', 'A9_:z']) t.equal(codeOf(() => new Gauge({ name, help: 'h' })), undefined, `metric name ${JSON.stringify(name)} is fine`);
  const badLabels: string[][] = [['1a'], ['a-b'], ['a:b'], [''], ['__name'], ['a', 'a']];
  for (const labelNames of badLabels) {
    t.equal(codeOf(() => new Gauge({ name: 'purelb_x', help: 'h', labelNames })), MetricsErrorCode.InvalidLabelName, `labels ${JSON.stringify(labelNames)}`);
  }
  const err = (() => {
    try {
      new Gauge({ name: 'purelb_x', help: 'h', labelNames: ['ok', 'not-ok'] });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  t.ok(err instanceof MetricsError);
  t.equal((err as MetricsError).metric, 'purelb_x');
  t.match((err as MetricsError).message, /purelb_x.*not-ok/);

  const registry = new MetricsRegistry();
  new Counter({ name: 'purelb_once_total', help: 'h', registry });
  t.equal(codeOf(() => new Counter({ name: 'purelb_once_total', help: 'h', registry })), MetricsErrorCode.DuplicateMetric);
  t.equal(codeOf(() => new Gauge({ name: 'purelb_once_total', help: 'h', registry })), MetricsErrorCode.DuplicateMetric, 'a name is taken whatever the type');
  const loose = new Gauge({ name: 'purelb_loose', help: 'h' });
  registry.register(loose);
  t.equal(registry.get('purelb_loose'), loose, 'register() adds a metric made without a registry');
  t.equal(codeOf(() => registry.register(loose)), MetricsErrorCode.DuplicateMetric);

  const labelled = new Gauge({ name: 'purelb_lab', help: 'h', labelNames: ['a', 'b'] });
  t.equal(codeOf(() => labelled.set({ a: 'x' } as unknown as { a: string; b: string }, 1)), MetricsErrorCode.LabelsMismatch, 'a missing label');
  t.equal(codeOf(() => labelled.set({ a: 'x', b: 'y', c: 'z' } as unknown as { a: string; b: string }, 1)), MetricsErrorCode.LabelsMismatch, 'an unknown label');
  t.equal(codeOf(() => labelled.inc()), MetricsErrorCode.LabelsMismatch, 'no labels on a labelled metric');
  t.throws(() => labelled.inc(), /purelb_lab.*label "a" is missing/);
  const plain = new Counter({ name: 'purelb_plain_total', help: 'h' });
  t.equal(codeOf(() => plain.inc({ a: 'x' } as never)), MetricsErrorCode.LabelsMismatch, 'labels on a metric without labels');
  t.equal(labelled.exposition(), '# HELP purelb_lab h\n# TYPE purelb_lab gauge\n', 'refused calls left no series');
});

t.test('collect hooks: run before each exposition, all of them before any metric is written', async (t) => {
  const registry = new MetricsRegistry();
  let source = 7;
  const calls: string[] = [];
  const early = new Gauge({ name: 'purelb_early', help: 'set by the later hook', registry });
  const copied = new Counter({
    name: 'purelb_copied_total',
    help: 'copied from elsewhere',
    labelNames: ['reason'],
    registry,
    collect(metric) {
      calls.push('copied');
      t.equal(this, metric, 'this is the metric');
      this.reset();
      this.inc({ reason: 'x' }, source);
    },
  });
  new Gauge({
    name: 'purelb_late',
    help: 'h',
    registry,
    collect: (g) => {
      calls.push('late');
      g.set(source * 2);
      early.set(source * 3);
    },
  });
  t.same(calls, [], 'nothing runs at construction');
  let p = parseExposition(registry.metrics());
  t.same(calls, ['copied', 'late'], 'hooks run once each, in registration order');
  t.equal(value(p, 'purelb_copied_total', { reason: 'x' }), 7);
  t.equal(value(p, 'purelb_late'), 14);
  t.equal(value(p, 'purelb_early'), 21, 'a metric written before the hook that sets it shows the fresh value');
  source = 10;
  p = parseExposition(registry.metrics());
  t.equal(value(p, 'purelb_copied_total', { reason: 'x' }), 10);
  t.equal(copied.get({ reason: 'x' }), 10);
  t.same(calls, ['copied', 'late', 'copied', 'late']);

  new Gauge({
    name: 'purelb_broken',
    help: 'h',
    registry,
    collect() {
      throw new Error('source gone');
    },
  });
  let thrown: unknown;
  try {
    registry.metrics();
  } catch (e) {
    thrown = e;
  }
  t.ok(thrown instanceof MetricsError);
  t.equal((thrown as MetricsError).code, MetricsErrorCode.CollectFailed);
  t.equal((thrown as MetricsError).metric, 'purelb_broken');
  t.match((thrown as MetricsError).message, /purelb_broken.*source gone/);
  t.match((thrown as Error).cause, { message: 'source gone' }, 'the cause is attached');
});

t.test('processMetrics: every name, with the prefix, and plausible values', async (t) => {
  const registry = new MetricsRegistry();
  processMetrics(registry, 'purelb_test_');
  const text = registry.metrics();
  const p = parseExposition(text);
  const want: [string, 'counter' | 'gauge'][] = [
    ['process_cpu_user_seconds_total', 'counter'],
    ['process_cpu_system_seconds_total', 'counter'],
    ['process_cpu_seconds_total', 'counter'],
    ['process_start_time_seconds', 'gauge'],
    ['process_resident_memory_bytes', 'gauge'],
    ['process_open_fds', 'gauge'],
    ['process_max_fds', 'gauge'],
    ['nodejs_heap_size_total_bytes', 'gauge'],
    ['nodejs_heap_size_used_bytes', 'gauge'],
    ['nodejs_external_memory_bytes', 'gauge'],
    ['nodejs_heap_space_size_total_bytes', 'gauge'],
    ['nodejs_heap_space_size_used_bytes', 'gauge'],
    ['nodejs_eventloop_lag_seconds', 'gauge'],
    ['nodejs_version_info', 'gauge'],
  ];
  t.same([...p.type.entries()], want.map(([n, type]) => [`purelb_test_${n}`, type]), 'exactly these metrics, in this order, with these types');
  for (const [n] of want) t.ok((p.help.get(`purelb_test_${n}`) ?? '').length > 10, `${n} has help text`);
  const v = (n: string, labels?: Record<string, string>): number => value(p, `purelb_test_${n}`, labels) ?? NaN;

  const rss = v('process_resident_memory_bytes');
  const heapUsed = v('nodejs_heap_size_used_bytes');
  const heapTotal = v('nodejs_heap_size_total_bytes');
  t.ok(rss > heapUsed && heapUsed > 0, `rss ${rss} > heap used ${heapUsed} > 0`);
  t.ok(heapTotal >= heapUsed, `heap total ${heapTotal} >= heap used`);
  t.ok(rss > 10 * 2 ** 20 && rss < 4 * 2 ** 30, `rss ${rss} is between 10 MiB and 4 GiB`);
  t.ok(v('nodejs_external_memory_bytes') > 0, 'external memory');

  const user = v('process_cpu_user_seconds_total');
  const system = v('process_cpu_system_seconds_total');
  const total = v('process_cpu_seconds_total');
  t.ok(user > 0 && system >= 0, `cpu user ${user}, system ${system}`);
  t.ok(Math.abs(total - (user + system)) < 1e-9, 'total = user + system (one reading)');

  const start = v('process_start_time_seconds');
  const now = Date.now() / 1000;
  t.ok(Number.isInteger(start) && start <= now + 1 && start >= now - process.uptime() - 2, `start time ${start} is when this process started`);

  const fds = v('process_open_fds');
  t.ok(fds >= 3, `open fds ${fds} >= 3 (stdin, stdout, stderr)`);
  const fd = openSync(import.meta.filename, 'r');
  t.teardown(() => closeSync(fd));
  const fdsAfter = value(parseExposition(registry.metrics()), 'purelb_test_process_open_fds') ?? NaN;
  t.ok(fdsAfter >= fds + 1, `opening a file shows up (${fds} -> ${fdsAfter})`);
  const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  t.equal(v('process_max_fds'), Number(limit), `max fds is the soft limit (${limit})`);
  t.ok(v('process_max_fds') > fdsAfter, 'more than are open');

  const spaces = p.samples.filter((s) => s.name === 'purelb_test_nodejs_heap_space_size_used_bytes').map((s) => s.labels[0]?.[1]);
  t.ok(spaces.includes('new') && spaces.includes('old') && spaces.includes('code'), `spaces named as V8's without _space: ${spaces.join(', ')}`);
  for (const space of spaces) {
    const used = v('nodejs_heap_space_size_used_bytes', { space: space! });
    const size = v('nodejs_heap_space_size_total_bytes', { space: space! });
    t.ok(used >= 0 && used <= size, `space ${space}: used ${used} <= size ${size}`);
  }

  const [major, minor, patch] = process.versions.node.split('.');
  t.equal(v('nodejs_version_info', { version: process.version, major: major!, minor: minor!, patch: patch! }), 1);
  t.equal(v('nodejs_eventloop_lag_seconds'), 0, '0 before any measurement');
});

t.test('processMetrics: the event loop lag measured at one scrape shows at the next', async (t) => {
  const registry = new MetricsRegistry();
  processMetrics(registry);
  registry.metrics();
  // Hold the loop for 50 ms right after the scrape: the probe cannot run before that.
  const until = performance.now() + 50;
  while (performance.now() < until);
  await new Promise<void>((resolve) => setTimeout(resolve, 10));
  const lag = value(parseExposition(registry.metrics()), 'nodejs_eventloop_lag_seconds') ?? NaN;
  t.ok(lag >= 0.05 && lag < 30, `lag ${lag} s >= 0.05 s`);
  await new Promise<void>((resolve) => setTimeout(resolve, 10));
  const quiet = value(parseExposition(registry.metrics()), 'nodejs_eventloop_lag_seconds') ?? NaN;
  t.ok(quiet < lag, `an idle loop shows less lag (${quiet} s)`);
});

t.test('processMetrics: the standard names and a prefixed copy from one reading', async (t) => {
  const registry = new MetricsRegistry();
  processMetrics(registry, ['', 'purelb_test_']);
  const p = parseExposition(registry.metrics());
  for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'process_max_fds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
    t.ok(p.type.has(n), `${n} without a prefix`);
    t.equal(p.type.get(n), p.type.get(`purelb_test_${n}`), `${n}: the same type under both names`);
    t.equal(value(p, n), value(p, `purelb_test_${n}`), `${n}: the same figure under both names`);
  }
  t.equal(p.type.get('process_cpu_seconds_total'), 'counter');
  t.equal(p.type.get('process_resident_memory_bytes'), 'gauge');
  t.equal(codeOf(() => processMetrics(new MetricsRegistry(), ['x_', 'x_'])), MetricsErrorCode.DuplicateMetric, 'a prefix listed twice');
});

t.test('processMetrics: twice in one registry needs another prefix', async (t) => {
  const registry = new MetricsRegistry();
  processMetrics(registry, 'a_');
  t.equal(codeOf(() => processMetrics(registry, 'a_')), MetricsErrorCode.DuplicateMetric);
  processMetrics(registry, 'b_');
  const p = parseExposition(registry.metrics());
  t.ok(value(p, 'a_process_resident_memory_bytes')! > 0 && value(p, 'b_process_resident_memory_bytes')! > 0, 'both prefixes are written');
});

t.test('buildInfo: one series of value 1 with version, node_version and component', async (t) => {
  const registry = new MetricsRegistry();
  buildInfo(registry, 'allocator', '1.2.3');
  const p = parseExposition(registry.metrics());
  t.equal(p.type.get('purelb_build_info'), 'gauge');
  t.same(p.samples, [{ name: 'purelb_build_info', labels: [['version', '1.2.3'], ['node_version', process.version], ['component', 'allocator']], value: 1 }]);
  t.equal(codeOf(() => buildInfo(registry, 'lbnodeagent', '1.2.3')), MetricsErrorCode.DuplicateMetric, 'one per registry');
});

t.test('Histogram with labels: one set of buckets, _sum and _count per label values, le last', async (t) => {
  const registry = new MetricsRegistry();
  const h = new Histogram({ name: 'purelb_req_seconds', help: 'h', labelNames: ['verb', 'code'], buckets: [0.1, 1], registry });
  t.equal(registry.metrics(), '# HELP purelb_req_seconds h\n# TYPE purelb_req_seconds histogram\n', 'no series before an observation');
  h.observe({ verb: 'PATCH', code: '200' }, 0.05);
  h.observe({ verb: 'PATCH', code: '200' }, 0.5);
  h.observe({ verb: 'GET', code: 0 }, 3);
  t.equal(
    registry.metrics(),
    [
      '# HELP purelb_req_seconds h',
      '# TYPE purelb_req_seconds histogram',
      'purelb_req_seconds_bucket{verb="GET",code="0",le="0.1"} 0',
      'purelb_req_seconds_bucket{verb="GET",code="0",le="1"} 0',
      'purelb_req_seconds_bucket{verb="GET",code="0",le="+Inf"} 1',
      'purelb_req_seconds_sum{verb="GET",code="0"} 3',
      'purelb_req_seconds_count{verb="GET",code="0"} 1',
      'purelb_req_seconds_bucket{verb="PATCH",code="200",le="0.1"} 1',
      'purelb_req_seconds_bucket{verb="PATCH",code="200",le="1"} 2',
      'purelb_req_seconds_bucket{verb="PATCH",code="200",le="+Inf"} 2',
      'purelb_req_seconds_sum{verb="PATCH",code="200"} 0.55',
      'purelb_req_seconds_count{verb="PATCH",code="200"} 2',
      '',
    ].join('\n'),
  );
  t.equal(h.count, 3, 'count over all series');
  t.equal(h.quantileBound(0.3), 0.1);
  t.equal(h.quantileBound(1), Infinity);
  t.equal(codeOf(() => h.observe(1)), MetricsErrorCode.LabelsMismatch, 'labels are required');
  t.equal(codeOf(() => h.observe({ verb: 'GET' } as unknown as { verb: string; code: string }, 1)), MetricsErrorCode.LabelsMismatch);
  t.equal(codeOf(() => h.observe({ verb: 'GET', code: '200' }, NaN)), MetricsErrorCode.InvalidValue);
  t.equal(codeOf(() => new Histogram({ name: 'purelb_le', help: 'h', labelNames: ['le'], buckets: [1] })), MetricsErrorCode.InvalidLabelName, 'le is reserved');
});

t.test('Histogram without labels is written as before', async (t) => {
  const h = new Histogram({ name: 'purelb_plain_seconds', help: 'h', buckets: [1] });
  h.observe(0.5);
  t.equal(h.exposition(), '# HELP purelb_plain_seconds h\n# TYPE purelb_plain_seconds histogram\npurelb_plain_seconds_bucket{le="1"} 1\npurelb_plain_seconds_bucket{le="+Inf"} 1\npurelb_plain_seconds_sum 0.5\npurelb_plain_seconds_count 1\n');
});
