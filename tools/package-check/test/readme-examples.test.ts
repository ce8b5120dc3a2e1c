import t from 'tap';
import { missingOutput, readmeExamples, statedOutput, thirdPartyClosure } from '../src/index.ts';

const fence = '```';

t.test('ts and js blocks are examples, with the heading above them; other languages are not', async (t) => {
  const md = ['# pkg', `${fence}sh`, 'npm i pkg', fence, '## Example', `${fence}ts`, "const a: number = 1;", fence, '### More', `${fence}js`, 'console.log(1);', fence, `${fence}`, 'plain', fence].join('\n');
  t.same(readmeExamples(md, 'R.md'), [
    { line: 6, lang: 'ts', code: 'const a: number = 1;\n', heading: 'Example', notRun: undefined },
    { line: 10, lang: 'js', code: 'console.log(1);\n', heading: 'More', notRun: undefined },
  ]);
});

t.test('a block is skipped only with a reason, right before it', async (t) => {
  const ok = ['## X', '<!-- not run: needs a Netbox -->', '', `${fence}ts`, 'x();', fence].join('\n');
  t.equal(readmeExamples(ok, 'R.md')[0]?.notRun, 'needs a Netbox');
  const bad = (md: string, code: string): void => {
    t.throws(() => readmeExamples(md, 'R.md'), { name: 'ReadmeExampleError', code, readme: 'R.md', message: /^R\.md:\d+: / }, code);
  };
  bad(['<!-- not run: -->', `${fence}ts`, 'x();', fence].join('\n'), 'README_NOT_RUN_WITHOUT_REASON');
  bad(['<!-- not run: why -->', 'some text', `${fence}ts`, 'x();', fence].join('\n'), 'README_NOT_RUN_MISPLACED');
  bad(['<!-- not run: why -->', `${fence}sh`, 'ls', fence].join('\n'), 'README_NOT_RUN_MISPLACED');
  bad(['text', '<!-- not run: why -->'].join('\n'), 'README_NOT_RUN_MISPLACED');
  bad([`${fence}ts`, 'x();'].join('\n'), 'README_UNCLOSED_FENCE');
});

t.test('stated output: the comment that ends a console.log line', async (t) => {
  const code = ["console.log(a); // 1", "if (x) console.log(b, c); // b c", "console.log('no comment');", '// a comment alone', "  console.log(d);   // [ 'x' ]"].join('\n');
  t.same(statedOutput(code), ['1', 'b c', "[ 'x' ]"]);
});

t.test('stated output is found in order, ignoring whitespace, quote style and ... gaps', async (t) => {
  const stdout = "{ group: 'default',\n  addresses: [ '192.0.2.10' ] }\nlabel{a=\"b\"} 3\nlast\n";
  t.same(missingOutput(stdout, ["{ group: 'default', addresses: ['192.0.2.10'] }", "... label{a='b'} ...", 'last']), []);
  t.same(missingOutput(stdout, ['last', 'label']), ['label'], 'order matters');
  t.same(missingOutput(stdout, ['192.0.2.11']), ['192.0.2.11']);
  t.same(missingOutput('', []), []);
});

t.test('third-party closure follows node resolution through the lockfile', async (t) => {
  const lock = {
    packages: {
      'packages/a': { dependencies: { '@purelb/b': '^0.1.0', x: '^1.0.0' } },
      'packages/b': { dependencies: { y: '^2.0.0' }, optionalDependencies: { gone: '^1.0.0' } },
      'node_modules/x': { version: '1.2.0', dependencies: { z: '^1.0.0' } },
      'node_modules/x/node_modules/z': { version: '1.0.1' },
      'node_modules/z': { version: '9.0.0' },
      'node_modules/y': { version: '2.0.0', dependencies: { x: '^1.0.0' } },
    },
  };
  t.same(thirdPartyClosure(lock, ['a', 'b']), [
    { name: 'x', version: '1.2.0', location: 'node_modules/x' },
    { name: 'y', version: '2.0.0', location: 'node_modules/y' },
    { name: 'z', version: '1.0.1', location: 'node_modules/x/node_modules/z' },
  ]);
  const conflict = { packages: { ...lock.packages, 'packages/c': { dependencies: { z: '^9.0.0', x: '^1.0.0' } } } };
  t.throws(() => thirdPartyClosure(conflict, ['c']), { name: 'PackageCheckError', code: 'PACKAGE_CHECK_DEPENDENCY_CONFLICT', message: /z is needed as 9\.0\.0 .* and 1\.0\.1/ });
  t.throws(() => thirdPartyClosure({ packages: { 'packages/d': { dependencies: { nope: '1' } } } }, ['d']), { name: 'PackageCheckError', code: 'PACKAGE_CHECK_DEPENDENCY_MISSING', message: /dependency nope is not installed/ });
  t.throws(() => thirdPartyClosure(lock, ['missing']), { name: 'PackageCheckError', code: 'PACKAGE_CHECK_DEPENDENCY_MISSING', message: /no workspace packages\/missing/ });
});
