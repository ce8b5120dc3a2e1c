/**
 * Every way a call of this package can fail, as a stable code. Callers branch on `code`,
 * never on the message. Append new codes; never rename or reuse one.
 */
export const NetlinkErrorCode = {
  /** No link has the name or index the call names. */
  LinkNotFound: 'NETLINK_LINK_NOT_FOUND',
  /** The kernel refused: the process lacks CAP_NET_ADMIN (addresses, links) or CAP_NET_RAW (GARP/NA). */
  Permission: 'NETLINK_PERMISSION',
  /** The kernel has no driver for the virtual link kind (`virtualLinkKind`). */
  LinkKindUnsupported: 'NETLINK_LINK_KIND_UNSUPPORTED',
  /** A link of the virtual link's name exists but is of another kind. */
  LinkKindMismatch: 'NETLINK_LINK_KIND_MISMATCH',
  /** An argument is malformed (address text, prefix length, lifetimes, count) or the kernel rejected it as invalid. */
  InvalidArgument: 'NETLINK_INVALID_ARGUMENT',
  /** The kernel did not answer in time. */
  Timeout: 'NETLINK_TIMEOUT',
  /** The handle (or subscription) was closed. */
  Closed: 'NETLINK_CLOSED',
  /** A socket could not be opened (netlink or packet). */
  SocketFailed: 'NETLINK_SOCKET_FAILED',
  /** The kernel answered with an error this package has no more specific code for; `errno` says which. */
  RequestFailed: 'NETLINK_REQUEST_FAILED',
  /**
   * A probe (`arping -D`, duplicate address detection) could not be made: the link is down or
   * has no carrier, has no Ethernet address, does not do ARP, or a frame could not be sent or
   * read. Distinct from a probe that ran and heard nobody, which is `{ conflict: false }`.
   */
  ProbeFailed: 'NETLINK_PROBE_FAILED',
  /** The caller's `AbortSignal` fired before the call finished; `cause` is the signal's reason. */
  Aborted: 'NETLINK_ABORTED',
} as const;

export type NetlinkErrorCode = (typeof NetlinkErrorCode)[keyof typeof NetlinkErrorCode];

/** What an error is about, so a caller can build an Event or a status condition without parsing text. */
export interface NetlinkErrorContext {
  /** The link as the caller named it (name or index). */
  readonly link?: string | number;
  /** The address as the caller wrote it. */
  readonly address?: string;
  /** The setting or argument that is wrong (`virtualLinkKind`, `prefixLength`, ...). */
  readonly field?: string;
  /** The `ip` command the failed call matches, for the operator. */
  readonly operation?: string;
  /** The kernel's errno name (`EPERM`, `ENODEV`, ...) when the kernel refused. */
  readonly errno?: string;
}

/** The one error class of this package. */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  readonly code: NetlinkErrorCode;
  readonly context: NetlinkErrorContext;

  constructor(code: NetlinkErrorCode, message: string, context: NetlinkErrorContext = {}, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.context = context;
  }
}
