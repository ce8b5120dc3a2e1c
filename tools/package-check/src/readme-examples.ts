/** The code examples of a README, as the package check runs them. Pure: text in, blocks out. */

/** A fenced ```ts or ```js block of a README. */
export interface ReadmeExample {
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: 'ts' | 'js';
  readonly code: string;
  /** The closest `##`/`###` heading above the block ('' before the first one). */
  readonly heading: string;
  /** The reason given by a `<!-- not run: REASON -->` line right before the block; undefined when it runs. */
  readonly notRun: string | undefined;
}

/** A README whose examples cannot be read as the check expects. */
export class ReadmeExampleError extends Error {
  readonly code: 'README_NOT_RUN_WITHOUT_REASON' | 'README_NOT_RUN_MISPLACED' | 'README_UNCLOSED_FENCE';
  readonly readme: string;
  readonly line: number;
  constructor(code: ReadmeExampleError['code'], readme: string, line: number, message: string) {
    super(`${readme}:${line}: ${message}`);
    this.name = 'ReadmeExampleError';
    this.code = code;
    this.readme = readme;
    this.line = line;
  }
}

const NOT_RUN = /^<!--\s*not run:(.*?)-->\s*$/;
const FENCE = /^```(\S*)\s*$/;

/**
 * Every ```ts and ```js block of `text` (other languages, such as ```sh, are not code to
 * run). A block is skipped only with `<!-- not run: REASON -->` on the line right before
 * its fence, and the reason must not be empty; a marker anywhere else is an error, so a
 * marker cannot silently stop applying when the text around it moves.
 */
export function readmeExamples(text: string, readme: string): ReadmeExample[] {
  const lines = text.split('\n');
  const out: ReadmeExample[] = [];
  let heading = '';
  let pendingNotRun: { reason: string; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const marker = NOT_RUN.exec(line.trim());
    if (marker) {
      const reason = (marker[1] ?? '').trim();
      if (reason === '') throw new ReadmeExampleError('README_NOT_RUN_WITHOUT_REASON', readme, i + 1, '"not run" marker without a reason');
      pendingNotRun = { reason, line: i + 1 };
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const lang = fence[1] ?? '';
      const start = i;
      let end = i + 1;
      while (end < lines.length && !/^```\s*$/.test(lines[end] ?? '')) end++;
      if (end >= lines.length) throw new ReadmeExampleError('README_UNCLOSED_FENCE', readme, start + 1, 'code fence never closed');
      const runnable = lang === 'ts' || lang === 'js';
      if (pendingNotRun && !runnable) {
        throw new ReadmeExampleError('README_NOT_RUN_MISPLACED', readme, pendingNotRun.line, `"not run" marker before a \`\`\`${lang} block, which is never run`);
      }
      if (runnable) {
        out.push({ line: start + 1, lang, code: lines.slice(start + 1, end).join('\n') + '\n', heading, notRun: pendingNotRun?.reason });
      }
      pendingNotRun = undefined;
      i = end;
      continue;
    }
    if (pendingNotRun && line.trim() !== '') {
      throw new ReadmeExampleError('README_NOT_RUN_MISPLACED', readme, pendingNotRun.line, '"not run" marker not right before a code block');
    }
    const h = /^#{2,3}\s+(.*)$/.exec(line);
    if (h) heading = (h[1] ?? '').trim();
  }
  if (pendingNotRun) throw new ReadmeExampleError('README_NOT_RUN_MISPLACED', readme, pendingNotRun.line, '"not run" marker not right before a code block');
  return out;
}


/**
 * What a block says it prints: the comment after each `console.log(...);` that ends its
 * line (`console.log(x); // 42`). `...` in a comment stands for any output. A comment
 * states output only; an explanation goes on a line of its own.
 */
export function statedOutput(code: string): string[] {
  return [...code.matchAll(/console\.log\(.*\);[ \t]*\/\/ (.*)$/gm)].map((m) => (m[1] ?? '').trim());
}

/**
 * The stated outputs that `stdout` does not show, in order: each must appear after the
 * previous one. Whitespace is ignored and double quotes count as single ones, since
 * Node's inspect wraps long values and READMEs write arrays compactly.
 */
export function missingOutput(stdout: string, stated: readonly string[]): string[] {
  const norm = (s: string): string => s.replace(/\s+/g, '').replace(/"/g, "'");
  const out = norm(stdout);
  const missing: string[] = [];
  let at = 0;
  for (const s of stated) {
    let pos = at;
    let ok = true;
    for (const part of norm(s).split('...').filter((p) => p !== '')) {
      const i = out.indexOf(part, pos);
      if (i < 0) {
        ok = false;
        break;
      }
      pos = i + part.length;
    }
    if (ok) at = pos;
    else missing.push(s);
  }
  return missing;
}
