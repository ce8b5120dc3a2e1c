#!/usr/bin/env node
// kubectl-purelb: kubectl finds this on PATH and runs it as `kubectl purelb ...`.
import { run } from './cli.ts';

process.exitCode = await run(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
});
