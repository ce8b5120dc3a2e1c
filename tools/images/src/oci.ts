// An OCI image-layout archive writer: layers (uncompressed tars), the image config, the
// manifest and index.json, all in one tar that `ctr images import` (containerd), podman
// and skopeo read. Deterministic: the same layers and config give the same bytes and so
// the same digest. Layers stay uncompressed: gzip of the 120 MB Node runtime costs about
// ten seconds of CPU here and containerd unpacks either kind.
import { createHash } from 'node:crypto';
import { type TarEntry, chunksLength, tarChunks } from './tar.ts';

export const MEDIA_TYPE_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** A content descriptor, as the OCI image spec writes it. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/** A layer: a tar of files, with its digest (uncompressed, so also its diff_id). */
export interface Layer extends Descriptor {
  readonly chunks: readonly Buffer[];
  /** What the layer holds, for the config's history. */
  readonly comment: string;
}

/** sha256 of the chunks, as "sha256:<hex>". */
export function sha256Digest(chunks: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return `sha256:${h.digest('hex')}`;
}

/** Makes a layer from tar entries (sorted and written by the deterministic tar writer). */
export function makeLayer(entries: readonly TarEntry[], comment: string, options: { mtime?: number } = {}): Layer {
  const chunks = tarChunks(entries, options);
  return { mediaType: MEDIA_TYPE_LAYER, digest: sha256Digest(chunks), size: chunksLength(chunks), chunks, comment };
}

/** The runtime part of an image config (the OCI config's `config` object). */
export interface ImageRuntimeConfig {
  readonly entrypoint: readonly string[];
  readonly cmd?: readonly string[];
  /** "uid:gid" (numeric, so no passwd lookup is needed to start it). */
  readonly user: string;
  readonly env: readonly string[];
  readonly workingDir: string;
  /** "port/proto", e.g. "7934/udp". */
  readonly exposedPorts: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly stopSignal?: string;
}

/** What an image is made of. */
export interface OciImageInput {
  /** Full reference, e.g. purelb.local/allocator:0.1.0 (the tag is after the last colon of the last path part). */
  readonly ref: string;
  /** RFC 3339 time written as the config's `created` (and in its history). */
  readonly created: string;
  readonly os: string;
  /** OCI architecture name: amd64, arm64, ... */
  readonly architecture: string;
  readonly config: ImageRuntimeConfig;
  readonly layers: readonly Layer[];
}

/** The written archive and the digests that name it. */
export interface OciImage {
  /** The archive's bytes, in order. */
  readonly chunks: readonly Buffer[];
  /** Archive size in bytes. */
  readonly size: number;
  /** The manifest's digest: what `ctr images ls` and a registry call the image's digest. */
  readonly digest: string;
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly configJson: Record<string, unknown>;
  readonly layers: readonly Descriptor[];
}

/** The tag of a reference: what follows the last ":" after the last "/" ("latest" if none). */
export function tagOf(ref: string): string {
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  const i = last.lastIndexOf(':');
  return i < 0 ? 'latest' : last.slice(i + 1);
}

function sortedObject<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Builds the image config object (deterministic key order; labels and ports sorted). */
export function imageConfig(input: OciImageInput): Record<string, unknown> {
  const c = input.config;
  if (!/^\d+(:\d+)?$/.test(c.user)) throw new Error(`${input.ref}: user "${c.user}" must be numeric uid[:gid]`);
  for (const p of c.exposedPorts) if (!/^\d+\/(tcp|udp|sctp)$/.test(p)) throw new Error(`${input.ref}: exposed port "${p}" must be <port>/<tcp|udp|sctp>`);
  const config: Record<string, unknown> = {
    User: c.user,
    ExposedPorts: sortedObject(Object.fromEntries(c.exposedPorts.map((p) => [p, {}]))),
    Env: [...c.env],
    Entrypoint: [...c.entrypoint],
    ...(c.cmd ? { Cmd: [...c.cmd] } : {}),
    WorkingDir: c.workingDir,
    Labels: sortedObject(c.labels),
    ...(c.stopSignal ? { StopSignal: c.stopSignal } : {}),
  };
  return {
    created: input.created,
    architecture: input.architecture,
    os: input.os,
    config,
    rootfs: { type: 'layers', diff_ids: input.layers.map((l) => l.digest) },
    history: input.layers.map((l) => ({ created: input.created, created_by: l.comment })),
  };
}

/**
 * Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) as one tar.
 * index.json names the image with `io.containerd.image.name` (the full reference, which
 * `ctr images import` uses as the image name) and `org.opencontainers.image.ref.name`
 * (the tag, as the image-layout spec uses it), and carries the platform, without which
 * `ctr images import` filters the image out.
 */
export function writeOciImage(input: OciImageInput, options: { mtime?: number } = {}): OciImage {
  const configJson = imageConfig(input);
  const configBytes = json(configJson);
  const config: Descriptor = { mediaType: MEDIA_TYPE_CONFIG, digest: sha256Digest([configBytes]), size: configBytes.length };
  const layers: Descriptor[] = input.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  const manifestBytes = json({ schemaVersion: 2, mediaType: MEDIA_TYPE_MANIFEST, config, layers });
  const manifest: Descriptor = { mediaType: MEDIA_TYPE_MANIFEST, digest: sha256Digest([manifestBytes]), size: manifestBytes.length };
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_INDEX,
    manifests: [
      {
        ...manifest,
        platform: { architecture: input.architecture, os: input.os },
        annotations: { 'io.containerd.image.name': input.ref, 'org.opencontainers.image.ref.name': tagOf(input.ref) },
      },
    ],
  });
  const blob = (digest: string): string => `blobs/sha256/${digest.slice('sha256:'.length)}`;
  const entries: TarEntry[] = [
    { type: 'file', path: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }) },
    { type: 'file', path: 'index.json', data: index },
    { type: 'directory', path: 'blobs' },
    { type: 'directory', path: 'blobs/sha256' },
    { type: 'file', path: blob(config.digest), data: configBytes },
    { type: 'file', path: blob(manifest.digest), data: manifestBytes },
  ];
  const seen = new Set([config.digest, manifest.digest]);
  for (const l of input.layers) {
    // Two identical layers are one blob.
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    entries.push({ type: 'file', path: blob(l.digest), data: l.chunks });
  }
  const chunks = tarChunks(entries, options);
  return { chunks, size: chunksLength(chunks), digest: manifest.digest, manifest, config, configJson, layers };
}
