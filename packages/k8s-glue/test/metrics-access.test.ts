// The metrics endpoint's authentication and authorization decisions, on a fake reviewer.
import t from 'tap';
import { type AccessReviewer, type ReviewedUser, MetricsAccess, accessDecision, bearerToken } from '../src/index.ts';

/** A reviewer that knows two tokens and counts the questions it was asked. */
function fakeReviewer(): AccessReviewer & { tokenReviews: number; accessReviews: number; down: boolean } {
  const users: Record<string, ReviewedUser> = {
    'reader-token': { username: 'system:serviceaccount:monitoring:prometheus', groups: ['system:serviceaccounts'] },
    'other-token': { username: 'system:serviceaccount:default:app' },
  };
  const r = {
    tokenReviews: 0,
    accessReviews: 0,
    down: false,
    async reviewToken(token: string) {
      r.tokenReviews++;
      if (r.down) throw new Error('connect ECONNREFUSED');
      const user = users[token];
      return user ? { authenticated: true, user } : { authenticated: false, error: 'invalid bearer token' };
    },
    async reviewAccess(user: ReviewedUser, path: string, verb: string) {
      r.accessReviews++;
      const allowed = user.username.endsWith(':prometheus') && path === '/metrics' && verb === 'get';
      return allowed ? { allowed } : { allowed, reason: 'no RBAC policy matched' };
    },
  };
  return r;
}

t.test('bearerToken reads only a well-formed Bearer header', async (t) => {
  t.equal(bearerToken('Bearer abc.def'), 'abc.def');
  t.equal(bearerToken('bearer abc'), 'abc', 'the scheme is case-insensitive');
  t.equal(bearerToken(undefined), undefined);
  t.equal(bearerToken('Basic dXNlcjpwYXNz'), undefined);
  t.equal(bearerToken('Bearer '), undefined);
  t.equal(bearerToken('Bearer a b'), undefined, 'a token has no spaces');
});

t.test('accessDecision: 401 unless authenticated, 403 unless allowed, else 200', async (t) => {
  const user = { username: 'u' };
  t.equal(accessDecision({ authenticated: false, error: 'expired' }, undefined, '/metrics', 'get').status, 401);
  t.match(accessDecision({ authenticated: false, error: 'expired' }, undefined, '/metrics', 'get').reason, /expired/);
  t.equal(accessDecision({ authenticated: true }, { allowed: true }, '/metrics', 'get').status, 401, 'authenticated without a user is no identity');
  t.equal(accessDecision({ authenticated: true, user }, { allowed: false }, '/metrics', 'get').status, 403);
  t.equal(accessDecision({ authenticated: true, user }, undefined, '/metrics', 'get').status, 403);
  t.match(accessDecision({ authenticated: true, user }, { allowed: false, reason: 'nope' }, '/metrics', 'get').reason, /user "u" may not get \/metrics: nope/);
  t.same(accessDecision({ authenticated: true, user }, { allowed: true }, '/metrics', 'get'), { status: 200, reason: 'allowed', user: 'u' });
});

t.test('MetricsAccess: decisions, and the access review only after authentication', async (t) => {
  const r = fakeReviewer();
  const access = new MetricsAccess(r);
  t.equal((await access.check(undefined)).status, 401, 'no header');
  t.equal(r.tokenReviews, 0, 'no token: nothing asked');
  t.equal((await access.check('Bearer wrong')).status, 401, 'unknown token');
  t.equal(r.accessReviews, 0, 'an unauthenticated token is not authorized');
  t.equal((await access.check('Bearer other-token')).status, 403, 'authenticated, not allowed');
  const ok = await access.check('Bearer reader-token');
  t.equal(ok.status, 200);
  t.equal(ok.user, 'system:serviceaccount:monitoring:prometheus');
  t.notMatch(JSON.stringify(await access.check('Bearer wrong')), /wrong/, 'the token never appears in a reason');
});

t.test('MetricsAccess caches for the TTL, per token, and the cache is bounded', async (t) => {
  const r = fakeReviewer();
  let now = 1_000_000;
  const access = new MetricsAccess(r, { ttlMs: 10_000, maxEntries: 2, now: () => now });
  await access.check('Bearer reader-token');
  await access.check('Bearer reader-token');
  t.equal(r.tokenReviews, 1, 'the second request within the TTL is answered from the cache');
  now += 9_999;
  t.equal((await access.check('Bearer reader-token')).status, 200);
  t.equal(r.tokenReviews, 1);
  now += 1;
  await access.check('Bearer reader-token');
  t.equal(r.tokenReviews, 2, 'asked again once the TTL has passed');
  await access.check('Bearer other-token');
  await access.check('Bearer wrong');
  t.equal(access.cacheSize, 2, 'never more than maxEntries');
  const before = r.tokenReviews;
  await access.check('Bearer wrong');
  t.equal(r.tokenReviews, before, 'a denial is cached as well');
  await access.check('Bearer reader-token');
  t.equal(r.tokenReviews, before + 1, 'the oldest entry was dropped to make room');
});

t.test('MetricsAccess answers 503 when the API server cannot be asked, and does not cache that', async (t) => {
  const r = fakeReviewer();
  const access = new MetricsAccess(r);
  r.down = true;
  const d = await access.check('Bearer reader-token');
  t.equal(d.status, 503);
  t.match(d.reason, /ECONNREFUSED/);
  r.down = false;
  t.equal((await access.check('Bearer reader-token')).status, 200, 'answered once the API server is back');
});
