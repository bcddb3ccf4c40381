// The peer of bench/load.sh: oidc-provider set up like Gatehouse's example tenant, as far as the
// measured endpoints go.
//
// - "mgmt": a confidential client (client_secret_post, client_credentials only), allowed the
//   Management-API-like resource below, as the tenant's "User Management CMS" M2M client.
// - one resource indicator (Auth0's "audience") `https://<host>/api/v2/` issuing RS256 JWT access
//   tokens that live 86,400 s (as gatehouse's Management API) with the tenant's eight user-management scopes.
// - "web": a confidential code-flow client, only for the one scripted login (bench/peer/login.mjs)
//   that yields an opaque access token `/me` (userinfo) accepts: oidc-provider's userinfo refuses
//   client_credentials tokens and JWT tokens carrying an audience, and it has no password grant.
// - one RSA-2048 signing key in the JWKS, generated at start; in-memory adapter (the default).
// - findAccount: one user with the profile and email claims.
//
// Usage: node server.mjs PORT   (prints "listening" once ready; stops on SIGTERM/SIGINT)

import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT || 3100);
const issuer = `http://127.0.0.1:${port}`;
const MGMT = { id: 'mgmt-bench-client', secret: 'mgmt-bench-secret-0123456789abcdef0123456789abcdef' };
const WEB = { id: 'web-bench-client', secret: 'web-bench-secret-0123456789abcdef0123456789abcdef' };
const AUDIENCE = `https://127.0.0.1:${port}/api/v2/`;
const SCOPES = [
  'read:users',
  'update:users',
  'delete:users',
  'create:users',
  'read:users_app_metadata',
  'update:users_app_metadata',
  'delete:users_app_metadata',
  'create:users_app_metadata',
].join(' ');

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rsa-1', use: 'sig', alg: 'RS256' };

const ACCOUNT = {
  sub: 'auth0|bench-user',
  email: 'user@cms.example.test',
  email_verified: true,
  name: 'CMS User',
  given_name: 'CMS',
  family_name: 'User',
  nickname: 'user',
  updated_at: Math.floor(Date.now() / 1000),
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: MGMT.id,
      client_secret: MGMT.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: WEB.id,
      client_secret: WEB.secret,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:8080/callback'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['bench-cookie-key-not-a-secret'] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'nickname', 'updated_at'],
    email: ['email', 'email_verified'],
  },
  async findAccount(_ctx, id) {
    if (id !== ACCOUNT.sub) return undefined;
    return { accountId: id, claims: async () => ACCOUNT };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
        if (resourceIndicator !== AUDIENCE || client.clientId !== MGMT.id) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: SCOPES,
          audience: AUDIENCE,
          accessTokenTTL: 86400,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: { AccessToken: 86400 },
});

// No request log, as oidc-provider ships; errors only.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`listening ${issuer} audience ${AUDIENCE}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
