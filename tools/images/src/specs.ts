// The three images: who they run as, what they expose, and where their files come from.
// The allocator's and the agent's entries mirror apps/<app>/Dockerfile (the documented
// way to build them with a Docker engine); a test keeps the two in step, and the Node
// flags of both come from purelb.nodeFlags in the app's package.json.
import { NODE_PATH, NONROOT_UID } from './rootfs.ts';

/** The images this project builds. */
export const IMAGE_NAMES = ['allocator', 'lbnodeagent', 'demo'] as const;

/** A name in IMAGE_NAMES. */
export type ImageName = (typeof IMAGE_NAMES)[number];

/** How one image is made. */
export interface ImageSpec {
  readonly name: ImageName;
  readonly description: string;
  /** Where the files come from: a bundle of tools/bundle.ts, or the demo server's source. */
  readonly from: { readonly kind: 'bundle'; readonly app: 'allocator' | 'lbnodeagent' } | { readonly kind: 'demo'; readonly source: string };
  /** Numeric "uid:gid". */
  readonly user: string;
  /** "port/proto". */
  readonly exposedPorts: readonly string[];
  /** Added to the PATH every image has. */
  readonly env: readonly string[];
}

/** Directory of the app's files, and the working directory, in every image. */
export const APP_DIR = '/app';

/** PATH of every image: node first, then the usual directories (as the distroless base has). */
export const IMAGE_PATH = `PATH=${NODE_PATH.slice(0, NODE_PATH.lastIndexOf('/'))}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

const NONROOT = `${NONROOT_UID}:${NONROOT_UID}`;

/** The specs, by image name. */
export const IMAGE_SPECS: Readonly<Record<ImageName, ImageSpec>> = {
  allocator: {
    name: 'allocator',
    description: 'PureLB allocator: gives LoadBalancer Services addresses from ServiceGroups.',
    from: { kind: 'bundle', app: 'allocator' },
    user: NONROOT,
    exposedPorts: ['7472/tcp', '7474/tcp'],
    env: [],
  },
  lbnodeagent: {
    name: 'lbnodeagent',
    description: 'PureLB node agent: puts LoadBalancer addresses on the node that should answer for them.',
    from: { kind: 'bundle', app: 'lbnodeagent' },
    // Root, as the Dockerfile explains: Kubernetes gives added capabilities (NET_ADMIN,
    // NET_RAW) to UID 0 only; the chart drops every other capability.
    user: '0:0',
    exposedPorts: ['7473/tcp', '7475/tcp', '7934/tcp', '7934/udp'],
    env: [],
  },
  demo: {
    name: 'demo',
    description: "PureLB lab demo backend: answers HTTP with its pod's name, its node's name and the client's address.",
    from: { kind: 'demo', source: 'tools/images/src/demo/server.ts' },
    user: NONROOT,
    exposedPorts: ['8080/tcp'],
    env: ['PORT=8080'],
  },
};
