// A real OpenID Connect provider for the portal's tests: the npm package oidc-provider, configured by a JSON file
// that tests/peers/oidc_provider.py writes (issuer, port, signing key, clients, accounts). Usage:
//   node provider.mjs config.json
// Its development login form accepts any login (the account id) with any password; consent is granted at once.
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: ['gpux-test-cookie-key'] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, ...(config.accounts[id] ?? {}) }),
  }),
  // No consent screen: grant what the client asks for (oidc-provider's "skip consent" recipe).
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.params.scope);
    await grant.save();
    return grant;
  },
});

// Clients listed in config.expired_id_token_clients get ID tokens that expired an hour ago (issued normally
// otherwise): how a test sees the portal refuse an expired ID token from a real provider.
const expiredFor = new Set(config.expired_id_token_clients ?? []);
const issue = provider.IdToken.prototype.issue;
provider.IdToken.prototype.issue = function issueMaybeExpired(options = {}) {
  if (options.use === 'idtoken' && expiredFor.has(this.client?.clientId)) {
    return issue.call(this, { ...options, expiresAt: Math.floor(Date.now() / 1000) - 3600 });
  }
  return issue.call(this, options);
};

// A key set with the provider's key id but another key: a client told to fetch its keys here sees every
// signature as bad.
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/wrong-jwks') {
    ctx.body = config.wrong_jwks;
    return;
  }
  await next();
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
