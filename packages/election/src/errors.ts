/**
 * Every way an election call can fail, as a stable code. Callers branch on `code`, never
 * on the message. Append new codes; never rename or reuse one.
 */
export const ElectionErrorCode = {
  /** A configuration field is out of range or of the wrong type; the message names the field. */
  InvalidConfig: 'ELECTION_INVALID_CONFIG',
  /** A sealing key is not 32 bytes (AES-256), or the keyring would become empty. */
  InvalidKey: 'ELECTION_INVALID_KEY',
  /** Member metadata is malformed: a node name or subnet that cannot be carried or parsed. */
  InvalidMetadata: 'ELECTION_INVALID_METADATA',
  /** The transport could not bind its UDP or TCP socket. */
  BindFailed: 'ELECTION_BIND_FAILED',
  /** No seed answered a join. */
  JoinFailed: 'ELECTION_JOIN_FAILED',
  /** The membership or transport is already shut down. */
  Closed: 'ELECTION_CLOSED',
} as const;

export type ElectionErrorCode = (typeof ElectionErrorCode)[keyof typeof ElectionErrorCode];

/** What an error is about, so a caller can report it without parsing text. */
export interface ElectionErrorContext {
  /** The field of the input that is wrong, as a path (`config.probeIntervalMs`). */
  readonly field?: string;
  readonly node?: string;
  readonly address?: string;
}

/** The one error class of this package. */
export class ElectionError extends Error {
  override readonly name = 'ElectionError';
  readonly code: ElectionErrorCode;
  readonly context: ElectionErrorContext;

  constructor(code: ElectionErrorCode, message: string, context: ElectionErrorContext = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.context = context;
  }
}
