import { hostname } from 'node:os';
import t from 'tap';
import { SettingsError, createJsonLogger, logLine, parseLogLevel } from '../src/index.ts';

function capture(level?: Parameters<typeof createJsonLogger>[0]['level']): { lines: Record<string, unknown>[]; log: ReturnType<typeof createJsonLogger> } {
  const lines: Record<string, unknown>[] = [];
  const log = createJsonLogger({
    name: 'unit',
    level,
    base: { node: 'n1' },
    now: () => 1_700_000_000_000,
    write: (line) => {
      if (!line.endsWith('\n') || line.indexOf('\n') !== line.length - 1) throw new Error(`not one line: ${JSON.stringify(line)}`);
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { lines, log };
}

t.test('one JSON object per line with the standard fields, then base, then the call\'s fields and msg', async (t) => {
  const { lines, log } = capture();
  log.info({ port: 7472 }, 'serving /metrics');
  t.same(lines, [{ level: 'info', time: 1_700_000_000_000, pid: process.pid, hostname: hostname(), name: 'unit', node: 'n1', port: 7472, msg: 'serving /metrics' }]);
  t.same(Object.keys(lines[0]!), ['level', 'time', 'pid', 'hostname', 'name', 'node', 'port', 'msg'], 'field order is stable');
  log.warn({});
  t.notOk('msg' in lines[1]!, 'no msg when none is given');
  t.equal(lines[1]!.level, 'warn');
});

t.test('each method writes its level by name', async (t) => {
  const { lines, log } = capture('debug');
  log.debug({}, 'd');
  log.info({}, 'i');
  log.warn({}, 'w');
  log.error({}, 'e');
  t.same(lines.map((l) => l.level), ['debug', 'info', 'warn', 'error']);
  t.ok(lines.every((l) => typeof l.level === 'string'), 'never a number');
});

t.test('the level threshold drops lower levels; silent drops everything', async (t) => {
  const warn = capture('warn');
  warn.log.debug({}, 'd');
  warn.log.info({}, 'i');
  warn.log.warn({}, 'w');
  warn.log.error({}, 'e');
  t.same(warn.lines.map((l) => [l.level, l.msg]), [['warn', 'w'], ['error', 'e']]);
  const debug = capture('debug');
  debug.log.debug({}, 'd');
  t.same(debug.lines.map((l) => l.level), ['debug']);
  const silent = capture('silent');
  silent.log.error({}, 'e');
  t.same(silent.lines, []);
});

t.test('errors, bigints and cycles are written, never thrown', async (t) => {
  const e = Object.assign(new Error('boom', { cause: new TypeError('inner') }), { code: 'K8S_GONE' });
  const cyc: Record<string, unknown> = { a: 1 };
  cyc.self = cyc;
  const rec = JSON.parse(logLine({ err: e, n: 10n, cyc })) as { err: { type: string; message: string; code: string; stack: string; cause: { type: string; message: string } }; n: string; cyc: { a: number; self: string } };
  t.equal(rec.err.type, 'Error');
  t.equal(rec.err.message, 'boom');
  t.equal(rec.err.code, 'K8S_GONE');
  t.match(rec.err.stack, /boom/);
  t.same(rec.err.cause && { type: rec.err.cause.type, message: rec.err.cause.message }, { type: 'TypeError', message: 'inner' });
  t.equal(rec.n, '10');
  t.same(rec.cyc, { a: 1, self: '[Circular]' });
  const { lines, log } = capture();
  log.error({ err: e }, 'failed');
  t.equal((lines[0]!.err as { message: string }).message, 'boom');
});

t.test('--log-level accepts the level names and names the setting otherwise', async (t) => {
  for (const l of ['debug', 'info', 'warn', 'error', 'silent'] as const) t.equal(parseLogLevel('--log-level', l), l);
  for (const bad of ['verbose', 'INFO', '', 'toString']) {
    t.throws(() => parseLogLevel('--log-level', bad), SettingsError, `"${bad}" is refused`);
    t.throws(() => parseLogLevel('--log-level', bad), { message: /--log-level: ".*" is not one of debug, info, warn, error, silent/ });
  }
});
