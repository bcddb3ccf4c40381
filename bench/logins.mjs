// Full authorization-code logins per second, for bench/load.sh: each login is a new browser
// (its own cookie jar, so no SSO session skips the password) doing the whole flow, with PKCE:
//   gatehouse: GET /authorize → GET /u/login (the form) → POST /u/login (the password) →
//              the redirect to the callback with the code → POST /oauth/token (the exchange);
//   peer:      oidc-provider's code flow through its devInteractions (peer/login.mjs), which
//              checks no password: a reference for the protocol work, not for the hashing.
// WORKERS logins run at once until SECONDS have passed or MAX logins have started; the first
// failed login stops the run (exit 1). Targets 127.0.0.1 only.
//
// Usage: node logins.mjs gatehouse|peer BASE WORKERS SECONDS MAX
//   gatehouse reads CMS_CLIENT_ID, CMS_CLIENT_SECRET, CMS_CALLBACK, USER_EMAIL, USER_PASSWORD and
//   CONNECTION from the environment.
// Prints {"logins":N,"secs":S,"p50":MS,"p99":MS}.

import { browser, form, login as peerLogin, pkce } from './peer/login.mjs';

const [kind, base, workers, seconds, max] = process.argv.slice(2);
if (!['gatehouse', 'peer'].includes(kind) || !base || !(Number(workers) > 0) || !(Number(seconds) > 0) || !(Number(max) > 0)) {
  console.error('usage: node logins.mjs gatehouse|peer BASE WORKERS SECONDS MAX');
  process.exit(2);
}
if (new URL(base).hostname !== '127.0.0.1') throw new Error('logins.mjs targets 127.0.0.1 only');

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

async function gatehouseLogin() {
  const { go } = browser(base);
  const { verifier, challenge } = pkce();
  const callback = env('CMS_CALLBACK');
  const state = Math.random().toString(36).slice(2);
  const auth = new URL('/authorize', base);
  auth.search = new URLSearchParams({
    client_id: env('CMS_CLIENT_ID'),
    response_type: 'code',
    redirect_uri: callback,
    scope: 'openid profile email',
    state,
    nonce: state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  let res = await go(auth);
  const page = res.headers.get('location');
  if (res.status !== 302 || !page?.includes('/u/login')) throw new Error(`/authorize: ${res.status} ${page ?? await res.text()}`);
  res = await go(page);
  const html = await res.text();
  const hidden = (name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1]?.replaceAll('&amp;', '&');
  if (res.status !== 200 || !hidden('state') || !hidden('csrf')) throw new Error(`login page: ${res.status} ${html.slice(0, 300)}`);
  res = await go(page, form({
    state: hidden('state'),
    csrf: hidden('csrf'),
    connection: env('CONNECTION'),
    username: env('USER_EMAIL'),
    password: env('USER_PASSWORD'),
  }));
  let location = res.headers.get('location');
  for (let step = 0; step < 5 && location && !location.startsWith(callback); step += 1) {
    res = await go(location);
    location = res.headers.get('location');
  }
  if (!location?.startsWith(callback)) throw new Error(`login: ${res.status} ${location ?? (await res.text()).slice(0, 300)}`);
  const back = new URL(location).searchParams;
  if (!back.get('code') || back.get('state') !== state) throw new Error(`callback without the code or state: ${location}`);
  res = await go('/oauth/token', form({
    grant_type: 'authorization_code',
    client_id: env('CMS_CLIENT_ID'),
    client_secret: env('CMS_CLIENT_SECRET'),
    code: back.get('code'),
    redirect_uri: callback,
    code_verifier: verifier,
  }));
  const body = await res.json();
  if (res.status !== 200 || !body.access_token || !body.id_token) throw new Error(`code exchange: ${res.status} ${JSON.stringify(body)}`);
}

const one = kind === 'gatehouse' ? gatehouseLogin : () => peerLogin(base);
const start = performance.now();
const deadline = start + Number(seconds) * 1000;
const times = [];
let started = 0;
async function worker() {
  while (performance.now() < deadline && started < Number(max)) {
    started += 1;
    const t0 = performance.now();
    await one();
    times.push(performance.now() - t0);
  }
}
await Promise.all(Array.from({ length: Number(workers) }, worker));
const secs = (performance.now() - start) / 1000;
times.sort((a, b) => a - b);
const pct = (p) => (times.length ? times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))] : 0);
console.log(JSON.stringify({ logins: times.length, secs, p50: pct(50), p99: pct(99) }));
