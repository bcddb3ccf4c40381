// One sign-in at the express-openid-connect peer through `gatehouse idp`'s login form; prints
// the peer's appSession cookie (name=value). Usage: node login.mjs http://127.0.0.1:PEER_PORT EMAIL PASSWORD
const [peer, email, password] = process.argv.slice(2);
const jar = new Map();
function keep(res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
}
async function go(url, init = {}) {
  const headers = { ...init.headers, cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  keep(res);
  return res;
}
const hidden = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))[1].replaceAll('&amp;', '&');

let res = await go(`${peer}/login`);
let location = res.headers.get('location');
res = await go(location); // idp /authorize → login page
const page = new URL(res.headers.get('location'), location);
const html = await (await go(page)).text();
res = await go(page, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ state: hidden(html, 'state'), csrf: hidden(html, 'csrf'), connection: 'dev-users', username: email, password }),
});
const callback = new URL(res.headers.get('location'));
if (!callback.searchParams.get('code')) throw new Error(`no code: ${callback}`);
res = await go(`${peer}${callback.pathname}${callback.search}`);
if (!jar.has('appSession')) throw new Error(`no session: ${res.status} ${await res.text()}`);
const check = await go(`${peer}/userinfo`);
if (check.status !== 200) throw new Error(`userinfo ${check.status}`);
console.log(`appSession=${jar.get('appSession')}`);
