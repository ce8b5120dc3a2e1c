// A deterministic tar writer (POSIX ustar, with pax extended headers for long names).
// The same entries always give the same bytes: entries are sorted by path, every entry
// carries the one mtime it is given (0 unless told), owners are numeric only (no user or
// group names, nothing read from the host), and the archive ends with the two zero
// blocks the format asks for. Enough for image layers and OCI image-layout archives;
// it writes regular files, directories and symbolic links, nothing else.

/** A file's contents: one buffer, or several written one after the other (not copied). */
export type FileData = Uint8Array | readonly Uint8Array[];

/** One member of an archive. */
export type TarEntry =
  | { readonly type: 'file'; readonly path: string; readonly data: FileData; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'directory'; readonly path: string; readonly mode?: number; readonly uid?: number; readonly gid?: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string; readonly uid?: number; readonly gid?: number };

/** Options of a whole archive. */
export interface TarOptions {
  /** Modification time of every entry, in seconds since the epoch. Default 0. */
  readonly mtime?: number;
}

/** A tar entry refused before anything is written. */
export class TarEntryError extends Error {
  readonly code = 'TAR_BAD_ENTRY';
  constructor(path: string, reason: string) {
    super(`tar entry "${path}": ${reason}`);
    this.name = 'TarEntryError';
  }
}

const BLOCK = 512;
// 11 octal digits: the largest size and time a ustar field holds.
const MAX_OCTAL_11 = 0o77777777777;
const MAX_ID = 0o7777777;

/** The path as stored: no leading slash or "./", directories end with "/". */
function storedPath(entry: TarEntry): string {
  let p = entry.path.replace(/^(\.\/|\/)+/, '');
  if (entry.type === 'directory' && !p.endsWith('/')) p += '/';
  if (p === '' || p === '/') throw new TarEntryError(entry.path, 'empty path (the archive root is implicit)');
  if (p.split('/').some((part) => part === '..' || part === '.')) throw new TarEntryError(entry.path, 'contains "." or ".." components');
  if (p.includes('\0')) throw new TarEntryError(entry.path, 'contains a NUL byte');
  return p;
}

function octal(value: number, width: number): string {
  // width includes the terminating NUL.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** Splits a path into ustar's prefix (155 bytes) and name (100 bytes), or undefined. */
function ustarSplit(path: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  // Split at a slash so that the name part fits; a directory's trailing slash stays in name.
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/' || i === path.length - 1) continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(name) <= 100 && Buffer.byteLength(prefix) <= 155 && name !== '') return { prefix, name };
  }
  return undefined;
}

function isAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

interface HeaderFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}

function header(f: HeaderFields): Buffer {
  const b = Buffer.alloc(BLOCK, 0);
  const put = (text: string, offset: number, length: number): void => {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > length) throw new Error(`tar header field too long: ${text}`);
    bytes.copy(b, offset);
  };
  put(f.name, 0, 100);
  put(octal(f.mode, 8), 100, 8);
  put(octal(f.uid, 8), 108, 8);
  put(octal(f.gid, 8), 116, 8);
  put(octal(f.size, 12), 124, 12);
  put(octal(f.mtime, 12), 136, 12);
  b.fill(0x20, 148, 156); // the checksum is computed with its own field as spaces
  put(f.typeflag, 156, 1);
  put(f.linkname, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  // uname and gname stay empty: readers use the numeric ids.
  put(octal(0, 8), 329, 8);
  put(octal(0, 8), 337, 8);
  put(f.prefix, 345, 155);
  let sum = 0;
  for (const byte of b) sum += byte;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return b;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest, 0);
}

/** One pax record: "<length> <key>=<value>\n", where length counts the whole record. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  for (;;) {
    const total = len + String(len).length;
    if (String(total).length === String(len).length) return `${total}${body}`;
    len = total;
  }
}

/** The entries in archive order: sorted by stored path, byte-wise; duplicates refused. */
export function sortedEntries(entries: readonly TarEntry[]): { path: string; entry: TarEntry }[] {
  const withPaths = entries.map((entry) => ({ path: storedPath(entry), entry }));
  withPaths.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  for (let i = 1; i < withPaths.length; i++) {
    const prev = withPaths[i - 1]!.path.replace(/\/$/, '');
    if (prev === withPaths[i]!.path.replace(/\/$/, '')) throw new TarEntryError(withPaths[i]!.entry.path, 'appears twice');
  }
  return withPaths;
}

/**
 * Writes `entries` as a tar archive and returns it as a list of buffers (file contents
 * are not copied; concatenate or write them in order). Entries are sorted by path.
 */
export function tarChunks(entries: readonly TarEntry[], options: TarOptions = {}): Buffer[] {
  const mtime = options.mtime ?? 0;
  if (!Number.isInteger(mtime) || mtime < 0 || mtime > MAX_OCTAL_11) throw new RangeError(`tar mtime ${mtime} is not a time a ustar header holds`);
  const out: Buffer[] = [];
  for (const { path, entry } of sortedEntries(entries)) {
    const uid = entry.uid ?? 0;
    const gid = entry.gid ?? 0;
    for (const [what, id] of [['uid', uid], ['gid', gid]] as const) {
      if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new TarEntryError(entry.path, `${what} ${id} out of range`);
    }
    const data = entry.type === 'file' ? (entry.data instanceof Uint8Array ? [entry.data] : entry.data) : [];
    const size = chunksLength(data);
    if (size > MAX_OCTAL_11) throw new TarEntryError(entry.path, 'larger than 8 GiB');
    const linkname = entry.type === 'symlink' ? entry.target : '';
    if (entry.type === 'symlink' && linkname === '') throw new TarEntryError(entry.path, 'symlink without a target');
    const mode = entry.type === 'symlink' ? 0o777 : (entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644));
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new TarEntryError(entry.path, `mode ${mode.toString(8)} out of range`);
    const typeflag = entry.type === 'file' ? '0' : entry.type === 'directory' ? '5' : '2';

    let split = isAscii(path) ? ustarSplit(path) : undefined;
    const longLink = Buffer.byteLength(linkname) > 100 || !isAscii(linkname);
    if (!split || longLink) {
      // A pax extended header carries what ustar cannot; its own name is derived from the
      // entry's, so it is as deterministic as the rest.
      const records = (split ? '' : paxRecord('path', path)) + (longLink ? paxRecord('linkpath', linkname) : '');
      const body = Buffer.from(records, 'utf8');
      const base = path.replace(/\/$/, '').split('/').pop()!;
      const paxName = `PaxHeader/${Buffer.from(base).subarray(0, 80).toString('latin1').replace(/[^\x20-\x7e]/g, '_')}`;
      out.push(header({ name: paxName, prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime, typeflag: 'x', linkname: '' }), body, padding(body.length));
      // The ustar fields then hold a truncated stand-in that readers ignore.
      split ??= { prefix: '', name: Buffer.from(path).subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_') };
    }
    const shortLink = longLink ? Buffer.from(linkname).subarray(0, 100).toString('latin1').replace(/[^\x20-\x7e]/g, '_') : linkname;
    out.push(header({ name: split.name, prefix: split.prefix, mode, uid, gid, size, mtime, typeflag, linkname: shortLink }));
    if (size > 0) out.push(...data.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)), padding(size));
  }
  out.push(Buffer.alloc(2 * BLOCK, 0));
  return out;
}

/** Total byte length of a list of chunks. */
export function chunksLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.byteLength;
  return n;
}
