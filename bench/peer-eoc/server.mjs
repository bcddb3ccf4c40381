// express-openid-connect protecting /userinfo with its session cookie (appSession, encrypted,
// rolling), signed in against `gatehouse idp` like the CMS's auth0-client. The peer of
// bench/auth0-client.sh. Usage: ISSUER=https://localhost:PORT PORT=3904 node server.mjs
import express from 'express';
import eoc from 'express-openid-connect';

const { auth, requiresAuth } = eoc;
const app = express();
app.use(
  auth({
    issuerBaseURL: process.env.ISSUER,
    baseURL: 'http://localhost:8080',
    clientID: process.env.CLIENT_ID,
    clientSecret: process.env.CLIENT_SECRET,
    secret: 'a-long-random-secret-for-the-benchmark-only-0123456789',
    authRequired: false,
    idpLogout: false,
    routes: { callback: '/web-login/callback', login: '/login', logout: '/logout' },
    authorizationParams: { response_type: 'code', scope: 'openid profile email' },
  }),
);
app.get('/userinfo', requiresAuth(), (req, res) => res.json(req.oidc.user));
app.listen(Number(process.env.PORT || 3904), '127.0.0.1', () => console.log('peer listening'));
