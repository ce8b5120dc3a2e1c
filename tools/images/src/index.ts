// @purelb/images: OCI image tarballs of the allocator, the node agent and the lab's demo
// backend, built without a Docker engine. See docs/images.md.
export { type BuildImagesOptions, type BuiltImage, DEFAULT_OUT_DIR, DEFAULT_REGISTRY, buildImages, chartAppVersion, gitRevision, ociArchitecture, sourceDateEpoch } from './build.ts';
export { type Descriptor, type ImageRuntimeConfig, type Layer, type OciImage, type OciImageInput, imageConfig, makeLayer, sha256Digest, tagOf, writeOciImage } from './oci.ts';
export { ImageInputError, NODE_PATH, NONROOT_UID, hostFile, hostTree, runtimeEntries, sharedLibraries, withParentDirectories } from './rootfs.ts';
export { APP_DIR, IMAGE_NAMES, IMAGE_PATH, IMAGE_SPECS, type ImageName, type ImageSpec } from './specs.ts';
export { type FileData, type TarEntry, TarEntryError, chunksLength, tarChunks } from './tar.ts';
