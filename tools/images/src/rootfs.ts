// What goes into an image's file system: the Node runtime (the project's Node 24 binary
// and the shared libraries it and the native addons load, found with ldd), the few files
// every image has (/etc/passwd, /etc/group, /tmp), and the app's own files.
import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { TarEntry } from './tar.ts';

/** Where the runtime puts node: the path of the distroless Node images the Dockerfiles use. */
export const NODE_PATH = '/nodejs/bin/node';

/** The distroless "nonroot" user and group. */
export const NONROOT_UID = 65532;

/** A problem with what should go into an image. */
export class ImageInputError extends Error {
  readonly code = 'IMAGE_BAD_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'ImageInputError';
  }
}

/** Mode an image gives a regular file: executable or not, nothing else from the host. */
function normalMode(hostMode: number): number {
  return hostMode & 0o111 ? 0o755 : 0o644;
}

/** A host file as an image file at `imagePath`, its contents read now. */
export function hostFile(hostPath: string, imagePath: string, options: { mode?: number } = {}): TarEntry {
  const real = realpathSync(hostPath);
  const st = statSync(real);
  if (!st.isFile()) throw new ImageInputError(`${hostPath} is not a regular file`);
  return { type: 'file', path: imagePath, data: readFileSync(real), mode: options.mode ?? normalMode(st.mode) };
}

/**
 * A host directory tree under `imagePath`: regular files, directories, symbolic links
 * (kept as links), in sorted order. Modes are normalised (0755 or 0644), owners are root.
 */
export function hostTree(hostDir: string, imagePath: string): TarEntry[] {
  const out: TarEntry[] = [{ type: 'directory', path: imagePath }];
  const walk = (dir: string, into: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const src = join(dir, name);
      const dest = posix.join(into, name);
      const st = lstatSync(src);
      if (st.isSymbolicLink()) out.push({ type: 'symlink', path: dest, target: readlinkSync(src) });
      else if (st.isDirectory()) {
        out.push({ type: 'directory', path: dest });
        walk(src, dest);
      } else if (st.isFile()) out.push({ type: 'file', path: dest, data: readFileSync(src), mode: normalMode(st.mode) });
      else throw new ImageInputError(`${src}: neither a file, a directory nor a symbolic link`);
    }
  };
  walk(hostDir, imagePath);
  return out;
}

/** True if the file starts with the ELF magic. */
function isElf(path: string): boolean {
  const b = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, b, 0, 4, 0) === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

/**
 * The shared libraries `binary` loads, as ldd resolves them on this machine: each as the
 * path the loader looks it up by (where it goes in the image) and the host file it
 * resolves to (what goes there), the dynamic loader included. Returns [] for a file that
 * is not a dynamic executable of this machine (another CPU's prebuilt addon, a static
 * binary). A library ldd cannot find is left out: koffi also ships a musl build that
 * links libc.musl, which a glibc runtime never loads.
 */
export function sharedLibraries(binary: string): { imagePath: string; hostPath: string }[] {
  let out: string;
  try {
    out = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return [];
  }
  const libs: { imagePath: string; hostPath: string }[] = [];
  for (const line of out.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /^\s*(?:\S+ => )?(\/\S+) \(0x[0-9a-f]+\)\s*$/.exec(line);
    if (m) libs.push({ imagePath: m[1]!, hostPath: realpathSync(m[1]!) });
  }
  return libs;
}

/** Every ELF file under `dir` (recursively), for ldd. */
export function elfFilesUnder(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && (name.endsWith('.node') || name.includes('.so')) && isElf(p)) found.push(p);
    }
  };
  walk(dir);
  return found;
}

/**
 * The runtime every image shares (one layer, so a node stores it once): node at
 * /nodejs/bin/node, the shared libraries of node and of `extraElfFiles` (native addons)
 * at the paths ldd names (the loader's own path included, as the ELF interpreter names
 * it), /etc/passwd and /etc/group with root and nonroot (65532), their home directories,
 * and /tmp (1777).
 */
export function runtimeEntries(nodeBinary: string, extraElfFiles: readonly string[] = []): TarEntry[] {
  const entries: TarEntry[] = [hostFile(nodeBinary, NODE_PATH, { mode: 0o755 })];
  const libs = new Map<string, string>();
  for (const bin of [nodeBinary, ...extraElfFiles]) {
    for (const l of sharedLibraries(bin)) {
      const before = libs.get(l.imagePath);
      if (before && before !== l.hostPath) throw new ImageInputError(`${l.imagePath} resolves to both ${before} and ${l.hostPath}`);
      libs.set(l.imagePath, l.hostPath);
    }
  }
  if (libs.size === 0) throw new ImageInputError(`ldd found no shared libraries for ${nodeBinary}: is it a dynamic executable of this machine?`);
  for (const [imagePath, hostPath] of [...libs].sort()) entries.push(hostFile(hostPath, imagePath));
  const text = (s: string): Buffer => Buffer.from(s, 'utf8');
  entries.push(
    { type: 'file', path: '/etc/passwd', data: text(`root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT_UID}:${NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n`) },
    { type: 'file', path: '/etc/group', data: text(`root:x:0:\nnonroot:x:${NONROOT_UID}:\n`) },
    { type: 'directory', path: '/root', mode: 0o700 },
    { type: 'directory', path: '/home' },
    { type: 'directory', path: '/home/nonroot', mode: 0o700, uid: NONROOT_UID, gid: NONROOT_UID },
    { type: 'directory', path: '/tmp', mode: 0o1777 },
  );
  return entries;
}

/**
 * Adds a directory entry (root, 0755) for every parent of every entry that has none, so
 * the archive describes the whole tree (extractors would otherwise invent the modes).
 */
export function withParentDirectories(entries: readonly TarEntry[]): TarEntry[] {
  const clean = (p: string): string => p.replace(/^\/+/, '').replace(/\/+$/, '');
  const have = new Set(entries.map((e) => clean(e.path)));
  const out = [...entries];
  for (const e of entries) {
    const parts = clean(e.path).split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!have.has(dir)) {
        have.add(dir);
        out.push({ type: 'directory', path: dir });
      }
    }
  }
  return out;
}
