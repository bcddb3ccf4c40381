// One scripted sign-in at the peer through oidc-provider's devInteractions (code flow + PKCE,
// login then consent), exchanging the code for the opaque access token `/me` accepts.
// Run directly, prints the token on stdout: node login.mjs http://127.0.0.1:PORT
// Imported (bench/logins.mjs): `login(base)` does one such sign-in in a browser of its own and
// resolves to the token; `browser(base)` is that browser (a cookie jar, no redirects followed).

import { createHash, randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const CLIENT = { id: 'web-bench-client', secret: 'web-bench-secret-0123456789abcdef0123456789abcdef' };
const REDIRECT = 'http://127.0.0.1:8080/callback';
const ACCOUNT = 'auth0|bench-user';

export function browser(base) {
  const jar = new Map();
  function keep(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
      if (!value || expired) jar.delete(name);
      else jar.set(name, value);
    }
  }
  return {
    async go(url, init = {}) {
      const headers = { ...init.headers, cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
      const res = await fetch(new URL(url, base), { ...init, headers, redirect: 'manual' });
      keep(res);
      return res;
    },
  };
}

export function form(fields) {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) };
}

// A PKCE pair (RFC 7636, S256).
export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export async function login(base) {
  const { go } = browser(base);
  const { verifier, challenge } = pkce();
  const auth = new URL('/auth', base);
  auth.search = new URLSearchParams({
    client_id: CLIENT.id,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: 'openid profile email',
    state: 'bench',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  let res = await go(auth);
  let code;
  for (let step = 0; step < 10 && !code; step += 1) {
    const location = res.headers.get('location');
    if (!location) throw new Error(`no redirect at step ${step}: ${res.status} ${await res.text()}`);
    if (location.startsWith(REDIRECT)) {
      const u = new URL(location);
      code = u.searchParams.get('code');
      if (!code) throw new Error(`callback without a code: ${location}`);
      break;
    }
    const interaction = location.match(/\/interaction\/([^/?#]+)$/);
    if (interaction) {
      const page = await (await go(location)).text();
      const prompt = page.includes('name="login"') ? 'login' : 'consent';
      const fields = prompt === 'login' ? { prompt, login: ACCOUNT, password: 'unused' } : { prompt };
      res = await go(location, form(fields));
    } else {
      res = await go(location);
    }
  }
  if (!code) throw new Error('the scripted login did not reach the callback');

  const token = await go('/token', form({
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id: CLIENT.id,
    client_secret: CLIENT.secret,
  }));
  const body = await token.json();
  if (!body.access_token) throw new Error(`token exchange failed: ${JSON.stringify(body)}`);
  return body.access_token;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await login(process.argv[2])}\n`);
}
