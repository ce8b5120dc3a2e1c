/**
 * Every way a Netbox call can fail, as a stable code. Callers branch on `code`, never on
 * the message. Append new codes; never rename or reuse one.
 */
export const NetboxErrorCode = {
  /** The token was refused (HTTP 401, or a 403 whose detail says the token is invalid, expired or missing). */
  Unauthorized: 'NETBOX_UNAUTHORIZED',
  /** The token is valid but may not do this (HTTP 403: no permission, or a read-only token writing). */
  Forbidden: 'NETBOX_FORBIDDEN',
  /** A redirect (3xx) or an HTML login page came back instead of JSON: the URL is not the API, or a proxy wants a login. */
  LoginRedirect: 'NETBOX_LOGIN_REDIRECT',
  /** The prefix or range has no free address (HTTP 409 "insufficient", an empty available list, no reserved address left). */
  Exhausted: 'NETBOX_EXHAUSTED',
  /** The prefix or IP range named by id or by text does not exist (or the token may not see it). */
  PrefixNotFound: 'NETBOX_PREFIX_NOT_FOUND',
  /** The tenant named in the configuration does not exist. */
  TenantNotFound: 'NETBOX_TENANT_NOT_FOUND',
  /** Netbox did not answer usefully after the retries: connection refused or reset, timeouts, HTTP 5xx, repeated 409 races. */
  Unavailable: 'NETBOX_UNAVAILABLE',
  /** Netbox answered with something that is not the documented shape (bad JSON, missing fields). */
  BadResponse: 'NETBOX_BAD_RESPONSE',
  /** Netbox refused the request body (HTTP 400); `context.fields` holds its field errors. */
  BadRequest: 'NETBOX_BAD_REQUEST',
  /** The source has no prefix or range of the address family asked for. */
  FamilyUnavailable: 'NETBOX_FAMILY_UNAVAILABLE',
  /** The client's own configuration is unusable (bad URL, empty token, no source named). */
  InvalidConfig: 'NETBOX_INVALID_CONFIG',
} as const;

export type NetboxErrorCode = (typeof NetboxErrorCode)[keyof typeof NetboxErrorCode];

/** What an error is about, so a caller can build an Event or a status condition without parsing text. */
export interface NetboxErrorContext {
  /** The request URL (method and URL), when a request failed. */
  readonly url?: string;
  /** The HTTP status, when there was an answer. */
  readonly status?: number;
  /** The prefix or IP range in use (`192.0.2.0/24`, `ip-range 7`). */
  readonly prefix?: string;
  /** Whom the address was for (the Service, `namespace/name`). */
  readonly service?: string;
  /** Netbox's own `detail` text, when it sent one. */
  readonly detail?: string;
  /** Field errors of an HTTP 400: field -> messages. */
  readonly fields?: Readonly<Record<string, readonly string[]>>;
  /** The configuration field at fault, for NETBOX_INVALID_CONFIG. */
  readonly field?: string;
}

/** The one error class of this package. */
export class NetboxError extends Error {
  override readonly name = 'NetboxError';
  readonly code: NetboxErrorCode;
  readonly context: NetboxErrorContext;

  constructor(code: NetboxErrorCode, message: string, context: NetboxErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.context = context;
  }

  /** Whether trying again later can help (Netbox down, a race), as opposed to a configuration or permission problem. */
  get transient(): boolean {
    return this.code === NetboxErrorCode.Unavailable || this.code === NetboxErrorCode.BadResponse;
  }
}

/** The same error with more context merged in (the Service, the prefix), keeping the code and the cause. */
export function withContext(e: NetboxError, extra: NetboxErrorContext, prefix?: string): NetboxError {
  return new NetboxError(e.code, prefix ? `${prefix}: ${e.message}` : e.message, { ...e.context, ...extra }, { cause: e.cause });
}
