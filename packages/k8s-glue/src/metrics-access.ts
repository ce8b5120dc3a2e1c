// Who may read /metrics: the request's bearer token is checked with a TokenReview, then
// the user it names with a SubjectAccessReview for the non-resource URL and verb, as
// controller-runtime's secure metrics and kube-rbac-proxy do. Answers are cached briefly.
import { createHash } from 'node:crypto';
import type { KubeClient } from './client.ts';

/** The user a token belongs to, as the TokenReview names it. */
export interface ReviewedUser {
  readonly username: string;
  readonly uid?: string | undefined;
  readonly groups?: readonly string[] | undefined;
  readonly extra?: Readonly<Record<string, readonly string[]>> | undefined;
}

/** The outcome of a TokenReview. */
export interface TokenReviewResult {
  readonly authenticated: boolean;
  readonly user?: ReviewedUser | undefined;
  /** The API server's reason when not authenticated. */
  readonly error?: string | undefined;
}

/** The outcome of a SubjectAccessReview. */
export interface AccessReviewResult {
  readonly allowed: boolean;
  readonly reason?: string | undefined;
}

/** The two questions asked of the API server (the real one: kubeAccessReviewer). */
export interface AccessReviewer {
  reviewToken(token: string): Promise<TokenReviewResult>;
  reviewAccess(user: ReviewedUser, path: string, verb: string): Promise<AccessReviewResult>;
}

/** What to answer a request: 200 go on, 401 no or bad token, 403 not allowed, 503 the API server could not say. */
export interface AccessDecision {
  readonly status: 200 | 401 | 403 | 503;
  /** Why, for the response body (never the token). */
  readonly reason: string;
  /** The user, once authenticated. */
  readonly user?: string | undefined;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
  return m?.[1];
}

/** The decision for a token's reviews (pure): the access review is only asked for once the token is authenticated. */
export function accessDecision(token: TokenReviewResult, access: AccessReviewResult | undefined, path: string, verb: string): AccessDecision {
  if (!token.authenticated || !token.user) return { status: 401, reason: `the bearer token was not accepted${token.error ? `: ${token.error}` : ''}` };
  const user = token.user.username;
  if (!access?.allowed) return { status: 403, reason: `user "${user}" may not ${verb} ${path}${access?.reason ? `: ${access.reason}` : ''}`, user };
  return { status: 200, reason: 'allowed', user };
}

/** Options of MetricsAccess. */
export interface MetricsAccessOptions {
  /** How long a decision (allowed or denied) is reused for the same token (default 10 s). */
  readonly ttlMs?: number | undefined;
  /** At most this many tokens cached; the oldest entry goes first (default 1,000). */
  readonly maxEntries?: number | undefined;
  /** Clock in ms (tests). */
  readonly now?: (() => number) | undefined;
}

/** The authentication and authorization filter of the metrics endpoint, with a bounded cache. */
export class MetricsAccess {
  readonly #reviewer: AccessReviewer;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** sha256(token) + path + verb -> decision; Map order is insertion order, so the first key is the oldest. */
  readonly #cache = new Map<string, { decision: AccessDecision; expires: number }>();

  constructor(reviewer: AccessReviewer, opts: MetricsAccessOptions = {}) {
    this.#reviewer = reviewer;
    this.#ttlMs = opts.ttlMs ?? 10_000;
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 1000);
    this.#now = opts.now ?? Date.now;
  }

  /** Tokens currently cached. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Decides a request from its Authorization header. A failed review (API server down) is answered 503 and not cached. */
  async check(authorization: string | undefined, path = '/metrics', verb = 'get'): Promise<AccessDecision> {
    const token = bearerToken(authorization);
    if (token === undefined) return { status: 401, reason: 'no bearer token: send "Authorization: Bearer <service account token>"' };
    const key = `${createHash('sha256').update(token).digest('hex')} ${verb} ${path}`;
    const now = this.#now();
    const hit = this.#cache.get(key);
    if (hit && hit.expires > now) return hit.decision;
    if (hit) this.#cache.delete(key);
    let decision: AccessDecision;
    try {
      const reviewed = await this.#reviewer.reviewToken(token);
      const access = reviewed.authenticated && reviewed.user ? await this.#reviewer.reviewAccess(reviewed.user, path, verb) : undefined;
      decision = accessDecision(reviewed, access, path, verb);
    } catch (e) {
      return { status: 503, reason: `cannot check the token with the API server: ${e instanceof Error ? e.message : String(e)}` };
    }
    this.#remember(key, decision, now);
    return decision;
  }

  #remember(key: string, decision: AccessDecision, now: number): void {
    if (this.#cache.size >= this.#maxEntries) {
      for (const [k, v] of this.#cache) if (v.expires <= now) this.#cache.delete(k);
      while (this.#cache.size >= this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(key, { decision, expires: now + this.#ttlMs });
  }
}

interface TokenReviewObject {
  status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> }; error?: string };
}

interface SubjectAccessReviewObject {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

/**
 * The reviews through the API server: POST TokenReview (authentication.k8s.io/v1) and
 * SubjectAccessReview (authorization.k8s.io/v1). The client's identity needs
 * `create` on both (the ClusterRole system:auth-delegator has it).
 */
export function kubeAccessReviewer(client: KubeClient, timeoutMs = 5000): AccessReviewer {
  return {
    async reviewToken(token) {
      const r = await client.create<TokenReviewObject>('/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } }, { timeoutMs });
      const s = r.status ?? {};
      const user = s.user?.username ? { username: s.user.username, uid: s.user.uid, groups: s.user.groups, extra: s.user.extra } : undefined;
      return { authenticated: s.authenticated === true && user !== undefined, user, error: s.error };
    },
    async reviewAccess(user, path, verb) {
      const spec = {
        user: user.username,
        ...(user.uid !== undefined ? { uid: user.uid } : {}),
        ...(user.groups !== undefined ? { groups: user.groups } : {}),
        ...(user.extra !== undefined ? { extra: user.extra } : {}),
        nonResourceAttributes: { path, verb },
      };
      const r = await client.create<SubjectAccessReviewObject>('/apis/authorization.k8s.io/v1/subjectaccessreviews', { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec }, { timeoutMs });
      const s = r.status ?? {};
      return { allowed: s.allowed === true && s.denied !== true, reason: s.reason ?? s.evaluationError };
    },
  };
}
