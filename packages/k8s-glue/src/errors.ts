/**
 * Every way a call to the API server can fail, as a stable code. Callers branch on
 * `code` (or `status`), never on the message. Append new codes; never rename or reuse one.
 */
export const KubeErrorCode = {
  /** 400: the request is malformed (bad patch, bad selector). */
  BadRequest: 'K8S_BAD_REQUEST',
  /** 401: no or bad credentials (an expired token, a wrong client certificate). */
  Unauthorized: 'K8S_UNAUTHORIZED',
  /** 403: authenticated, but RBAC does not allow the verb on the resource. */
  Forbidden: 'K8S_FORBIDDEN',
  /** 404: the object (or the resource type) does not exist. */
  NotFound: 'K8S_NOT_FOUND',
  /** 405 / 415: the server refuses this verb or content type on the resource. */
  NotAllowed: 'K8S_NOT_ALLOWED',
  /** 409 with reason AlreadyExists: a create found the name taken. */
  AlreadyExists: 'K8S_ALREADY_EXISTS',
  /** 409: the resourceVersion sent is not the current one (optimistic concurrency lost). */
  Conflict: 'K8S_CONFLICT',
  /** 410: the resourceVersion asked for was compacted away; relist. */
  Gone: 'K8S_GONE',
  /** 422: the object fails validation (schema, CEL rule, immutable field). */
  Invalid: 'K8S_INVALID',
  /** 429: throttled by API priority and fairness; retry later. */
  TooManyRequests: 'K8S_TOO_MANY_REQUESTS',
  /** 504, or no answer within the client's timeout. */
  Timeout: 'K8S_TIMEOUT',
  /** 503, or the server cannot be reached at all (refused, reset, DNS, TLS). */
  Unavailable: 'K8S_UNAVAILABLE',
  /** Any other 5xx. */
  ServerError: 'K8S_SERVER_ERROR',
  /** The answer is not what the API promises (not JSON, a watch line over the size bound). */
  BadResponse: 'K8S_BAD_RESPONSE',
  /** The caller's AbortSignal fired. */
  Aborted: 'K8S_ABORTED',
  /** A kubeconfig or in-cluster credential is missing or malformed. */
  Config: 'K8S_CONFIG',
} as const;

export type KubeErrorCode = (typeof KubeErrorCode)[keyof typeof KubeErrorCode];

/** The `Status` object the API server returns with an error. */
export interface KubeStatus {
  readonly kind?: 'Status';
  readonly apiVersion?: string;
  readonly status?: string;
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: { readonly name?: string; readonly kind?: string; readonly causes?: readonly { readonly field?: string; readonly message?: string; readonly reason?: string }[] };
}

/** A failed API call. The message names the method, the path and the server's reason. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly code: KubeErrorCode;
  /** HTTP status; 0 when no answer came (connection failure, timeout, abort). */
  readonly status: number;
  /** The Status body's `reason` (`NotFound`, `Conflict`, `Expired`, ...), or '' when there was none. */
  readonly reason: string;
  readonly method: string;
  readonly path: string;
  /** The Status body, when the server sent one. */
  readonly details: KubeStatus | undefined;

  constructor(code: KubeErrorCode, method: string, path: string, status: number, reason: string, message: string, details?: KubeStatus, cause?: unknown) {
    super(`${method} ${path}: ${status ? `HTTP ${status} ` : ''}${reason ? `${reason}: ` : ''}${message}`, cause === undefined ? undefined : { cause });
    this.code = code;
    this.status = status;
    this.reason = reason;
    this.method = method;
    this.path = path;
    this.details = details;
  }
}

/** A kubeconfig or in-cluster credential problem. The message names the file and the field. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
  readonly code = KubeErrorCode.Config;
  /** The file that is wrong ('' when the problem is in the environment). */
  readonly file: string;
  /** The field, as a path (`users[lab].user.client-key`). */
  readonly field: string;

  constructor(file: string, field: string, message: string) {
    super(`${file || 'environment'}${field ? ` (${field})` : ''}: ${message}`);
    this.file = file;
    this.field = field;
  }
}

/** The code for an HTTP status, refined by the Status reason where one status means two things. */
export function codeForStatus(status: number, reason: string): KubeErrorCode {
  switch (status) {
    case 400:
      return KubeErrorCode.BadRequest;
    case 401:
      return KubeErrorCode.Unauthorized;
    case 403:
      return KubeErrorCode.Forbidden;
    case 404:
      return KubeErrorCode.NotFound;
    case 405:
    case 406:
    case 415:
      return KubeErrorCode.NotAllowed;
    case 409:
      return reason === 'AlreadyExists' ? KubeErrorCode.AlreadyExists : KubeErrorCode.Conflict;
    case 410:
      return KubeErrorCode.Gone;
    case 422:
      return KubeErrorCode.Invalid;
    case 429:
      return KubeErrorCode.TooManyRequests;
    case 503:
      return KubeErrorCode.Unavailable;
    case 504:
      return KubeErrorCode.Timeout;
    default:
      return status >= 500 ? KubeErrorCode.ServerError : KubeErrorCode.BadRequest;
  }
}

/** True for a KubeApiError with the given code. */
export function isKubeError(e: unknown, code?: KubeErrorCode): e is KubeApiError {
  return e instanceof KubeApiError && (code === undefined || e.code === code);
}
