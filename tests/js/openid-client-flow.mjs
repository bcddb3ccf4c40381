// An authorization-code login against a Gatehouse idp through the unmodified openid-client v6
// SDK: discovery, PKCE (S256) + state + nonce, the code exchange with client_secret_post or
// client_secret_basic, ID-token validation and UserInfo. The script plays the browser itself
// with fetch (manual redirects, cookies carried by hand) so that everything the SDK checks comes
// from the idp's real HTTP answers.
//
// openid-client v6 checks the ID token's claims (iss, aud, exp, iat, nonce, azp) and its alg
// against discovery, but by design not its signature (the token came straight from the token
// endpoint over TLS). Older SDKs did verify it, so the script also verifies the signature with
// `jose` against the idp's published JWKS, the way a resource server or such an SDK would.
//
// Driven by crates/gatehouse/tests/it/openid_client.rs. Trust the idp's CA with
// NODE_EXTRA_CA_CERTS. On success prints one JSON summary line on stdout and exits 0; on any
// failure prints `openid-client-flow: FAILED: …` on stderr and exits 1.
//
//   node openid-client-flow.mjs --issuer https://localhost:PORT/ --client-id ID \
//     --client-secret SECRET --username EMAIL --password PASSWORD \
//     [--auth post|basic] [--connection dev-users] \
//     [--redirect-uri http://localhost:8080/web-login/callback] [--expect-denied]
//
// With --expect-denied the login must be refused: the login page comes back with its error
// message and no authorization code is ever issued.

import * as client from 'openid-client';
import * as jose from 'jose';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    auth: { type: 'string', default: 'post' },
    connection: { type: 'string', default: 'dev-users' },
    'redirect-uri': { type: 'string', default: 'http://localhost:8080/web-login/callback' },
    'expect-denied': { type: 'boolean', default: false },
  },
});

function fail(message) {
  throw new Error(message);
}

function required(name) {
  return args[name] ?? fail(`missing --${name}`);
}

/// The SDK's token request, as it went on the wire: proves which client authentication was used.
const tokenRequests = [];

/// Every request the SDK makes goes through here; the token request is recorded.
async function recordingFetch(url, options) {
  if (new URL(url).pathname === '/oauth/token') {
    const body = new URLSearchParams(typeof options.body === 'string' ? options.body : options.body?.toString());
    const authorization = options.headers.authorization ?? options.headers.Authorization ?? '';
    tokenRequests.push({
      authorization_scheme: authorization.split(' ')[0] || null,
      secret_in_body: body.has('client_secret'),
    });
  }
  return fetch(url, options);
}

function clientAuth(kind, secret) {
  switch (kind) {
    case 'post':
      return client.ClientSecretPost(secret);
    case 'basic':
      return client.ClientSecretBasic(secret);
    default:
      return fail(`--auth must be post or basic, not ${kind}`);
  }
}

/// A one-host cookie jar: the idp sets a per-transaction CSRF cookie at /authorize and the
/// session cookie after login; a browser would send them back, so we do too.
class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => a.trim().toLowerCase() === 'max-age=0');
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

/// One browser step: no redirect following, cookies in and out.
async function browse(jar, url, init = {}) {
  const headers = { ...(init.headers ?? {}), cookie: jar.header() };
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(response);
  return response;
}

function hiddenInput(html, name) {
  const match = html.match(new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`));
  return match ? match[1].replaceAll('&amp;', '&') : fail(`login page has no hidden input "${name}"`);
}

function errorMessage(html) {
  const match = html.match(/<div class="error"[^>]*>([^<]*)<\/div>/);
  return match ? match[1] : null;
}

function expectRedirect(response, what) {
  const location = response.headers.get('location');
  if (response.status !== 302 || !location) {
    fail(`${what}: expected a 302 redirect, got ${response.status}`);
  }
  return location;
}

/// /authorize → login page → form post; returns the response to the form post.
async function logIn(authorizationUrl) {
  const jar = new CookieJar();
  const toLogin = await browse(jar, authorizationUrl);
  const loginUrl = new URL(expectRedirect(toLogin, 'GET /authorize'), authorizationUrl);
  if (loginUrl.pathname !== '/u/login' || !loginUrl.searchParams.get('state')) {
    fail(`/authorize redirected to ${loginUrl}, not to /u/login?state=…`);
  }
  const page = await browse(jar, loginUrl);
  if (page.status !== 200) fail(`GET ${loginUrl}: status ${page.status}`);
  const html = await page.text();
  const form = new URLSearchParams({
    state: hiddenInput(html, 'state'),
    csrf: hiddenInput(html, 'csrf'),
    connection: args.connection,
    username: required('username'),
    password: required('password'),
  });
  return browse(jar, loginUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
}

async function main() {
  const issuer = new URL(required('issuer'));
  const config = await client.discovery(
    issuer,
    required('client-id'),
    undefined,
    clientAuth(args.auth, required('client-secret')),
    { [client.customFetch]: recordingFetch },
  );

  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: args['redirect-uri'],
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  });

  const answer = await logIn(authorizationUrl);
  if (args['expect-denied']) {
    return denied(answer);
  }
  const callback = new URL(expectRedirect(answer, 'POST /u/login'));
  if (!callback.href.startsWith(args['redirect-uri'])) fail(`login redirected to ${callback}, not the callback`);

  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier,
    expectedState,
    expectedNonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims() ?? fail('no ID token claims');
  const signature = await verifySignature(config, tokens.id_token);
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  return {
    issuer: config.serverMetadata().issuer,
    auth: args.auth,
    token_request: tokenRequests.at(-1) ?? null,
    token_type: tokens.token_type,
    id_token: { sub: claims.sub, email: claims.email, aud: claims.aud, nonce: claims.nonce, ...signature },
    userinfo: { sub: userinfo.sub, email: userinfo.email },
  };
}

/// Verifies the ID token's RS256 signature with the key the JWKS publishes under its `kid`.
async function verifySignature(config, idToken) {
  const metadata = config.serverMetadata();
  const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
  const { protectedHeader } = await jose.jwtVerify(idToken, jwks, {
    issuer: metadata.issuer,
    audience: config.clientMetadata().client_id,
    algorithms: ['RS256'],
  });
  return { alg: protectedHeader.alg, kid: protectedHeader.kid, signature_verified: true };
}

/// The refused login: the page re-rendered with its message, and no code anywhere.
async function denied(answer) {
  const location = answer.headers.get('location');
  if (location) fail(`a wrong password was answered with a redirect to ${location}`);
  const html = await answer.text();
  return { denied: true, status: answer.status, error: errorMessage(html) };
}

try {
  console.log(JSON.stringify(await main()));
} catch (error) {
  // Everything the SDK knows about a rejection: its code, the OAuth error and the cause.
  const details = [error.code, error.error, error.error_description, error.cause?.message ?? error.cause]
    .filter((d) => d !== undefined && d !== null)
    .map((d) => (typeof d === 'string' ? d : JSON.stringify(d)));
  console.error(`openid-client-flow: FAILED: ${error.message}${details.length ? ` (${details.join('; ')})` : ''}`);
  process.exit(1);
}
