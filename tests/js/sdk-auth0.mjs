// Drives the official npm `auth0` SDK, unmodified, against a Gatehouse idp over HTTPS and prints
// a JSON summary of what the SDK saw (crates/gatehouse/tests/it/sdk_node.rs asserts on it).
//
//   node sdk-auth0.mjs --sdk v7|v4 --domain localhost:PORT \
//     --client-id ID --client-secret S          (an M2M app granted the Management API)
//     --cms-client-id ID --cms-client-secret S  (the CMS app: password-realm logins)
//     --connection dev-users --bcrypt HASH --password PLAIN (HASH is bcrypt of PLAIN)
//
// v7 is the current major (Fern-generated ManagementClient; the AuthenticationClient comes from
// `auth0/legacy`); v4 is the hand-written client most applications still run (npm alias
// `auth0-v4`). The idp's CA is trusted through NODE_EXTRA_CA_CERTS. Any error the SDK raises
// ends the script with a non-zero status and the SDK's own message.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

/** The installed version of a package (not every package exports its package.json). */
const versionOf = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8")).version;

const { values: args } = parseArgs({
  options: {
    sdk: { type: "string", default: "v7" },
    domain: { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    "cms-client-id": { type: "string" },
    "cms-client-secret": { type: "string" },
    connection: { type: "string", default: "dev-users" },
    bcrypt: { type: "string" },
    password: { type: "string" },
  },
});
for (const k of ["domain", "client-id", "client-secret", "cms-client-id", "cms-client-secret", "bcrypt", "password"]) {
  if (!args[k]) throw new Error(`--${k} is required`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const run = `${process.pid}-${Date.now()}`;
const summary = { sdk: args.sdk };

/** The same operations over either SDK generation. */
async function adapter(sdk) {
  if (sdk === "v7") {
    const { ManagementClient } = await import("auth0");
    const { AuthenticationClient } = await import("auth0/legacy");
    const m = new ManagementClient({ domain: args.domain, clientId: args["client-id"], clientSecret: args["client-secret"] });
    const all = async (pagePromise) => {
      const out = [];
      for await (const item of await pagePromise) out.push(item);
      return out;
    };
    return {
      version: versionOf("auth0"),
      AuthenticationClient,
      users: {
        create: (body) => m.users.create(body),
        search: (q) => all(m.users.list({ q, search_engine: "v3" })),
        get: (id) => m.users.get(id),
        update: (id, body) => m.users.update(id, body),
        delete: (id) => m.users.delete(id),
        byEmail: (email) => m.users.listUsersByEmail({ email }),
        logs: (id) => all(m.users.logs.list(id, { per_page: 100 })),
      },
      logs: {
        search: (q) => all(m.logs.list({ search: q, per_page: 100 })),
        get: (id) => m.logs.get(id),
      },
      clients: {
        list: () => all(m.clients.list()),
        create: (body) => m.clients.create(body),
        update: (id, body) => m.clients.update(id, body),
        delete: (id) => m.clients.delete(id),
      },
      connections: {
        list: () => all(m.connections.list()),
        create: (body) => m.connections.create(body),
        update: (id, body) => m.connections.update(id, body),
        delete: (id) => m.connections.delete(id),
        enabledClients: (id) => all(m.connections.clients.get(id)),
      },
      resourceServers: {
        list: () => all(m.resourceServers.list()),
        create: (body) => m.resourceServers.create(body),
        update: (id, body) => m.resourceServers.update(id, body),
        delete: (id) => m.resourceServers.delete(id),
      },
      clientGrants: {
        list: (q) => all(m.clientGrants.list(q)),
        create: (body) => m.clientGrants.create(body),
        update: (id, body) => m.clientGrants.update(id, body),
        delete: (id) => m.clientGrants.delete(id),
      },
      jobs: {
        importUsers: (users, params) =>
          m.jobs.usersImports.create({ users: new File([users], "users.json", { type: "application/json" }), ...params }),
        get: (id) => m.jobs.get(id),
        errors: (id) => m.jobs.errors.get(id),
      },
    };
  }
  if (sdk === "v4") {
    const { ManagementClient, AuthenticationClient } = await import("auth0-v4");
    const m = new ManagementClient({ domain: args.domain, clientId: args["client-id"], clientSecret: args["client-secret"] });
    const data = async (p) => (await p).data;
    return {
      version: versionOf("auth0-v4"),
      AuthenticationClient,
      users: {
        create: (body) => data(m.users.create(body)),
        search: (q) => data(m.users.getAll({ q, search_engine: "v3" })),
        get: (id) => data(m.users.get({ id })),
        update: (id, body) => data(m.users.update({ id }, body)),
        delete: (id) => data(m.users.delete({ id })),
        byEmail: (email) => data(m.usersByEmail.getByEmail({ email })),
        logs: (id) => data(m.users.getLogs({ id, per_page: 100 })),
      },
      logs: {
        search: (q) => data(m.logs.getAll({ q, per_page: 100 })),
        get: (id) => data(m.logs.get({ id })),
      },
      clients: {
        list: () => data(m.clients.getAll()),
        create: (body) => data(m.clients.create(body)),
        update: (id, body) => data(m.clients.update({ client_id: id }, body)),
        delete: (id) => data(m.clients.delete({ client_id: id })),
      },
      connections: {
        list: () => data(m.connections.getAll()),
        create: (body) => data(m.connections.create(body)),
        update: (id, body) => data(m.connections.update({ id }, body)),
        delete: (id) => data(m.connections.delete({ id })),
        enabledClients: async (id) => (await data(m.connections.getEnabledClients({ id, take: 50 }))).clients,
      },
      resourceServers: {
        list: () => data(m.resourceServers.getAll()),
        create: (body) => data(m.resourceServers.create(body)),
        update: (id, body) => data(m.resourceServers.update({ id }, body)),
        delete: (id) => data(m.resourceServers.delete({ id })),
      },
      clientGrants: {
        list: (q) => data(m.clientGrants.getAll(q)),
        create: (body) => data(m.clientGrants.create(body)),
        update: (id, body) => data(m.clientGrants.update({ id }, body)),
        delete: (id) => data(m.clientGrants.delete({ id })),
      },
      jobs: {
        importUsers: (users, params) =>
          data(m.jobs.importUsers({ users: new Blob([users], { type: "application/json" }), ...params })),
        get: (id) => data(m.jobs.get({ id })),
        errors: (id) => data(m.jobs.getErrors({ id })),
      },
    };
  }
  throw new Error(`unknown --sdk ${sdk}`);
}

function check(cond, what, detail) {
  if (!cond) throw new Error(`${what}: ${JSON.stringify(detail)}`);
}

const sdk = await adapter(args.sdk);
summary.version = sdk.version;

// --- users: create, search with a Lucene query on app_metadata, update (merge), delete.
const email = `sdk-${run}@example.test`;
const created = await sdk.users.create({
  connection: args.connection,
  email,
  password: "Sdk-Passw0rd!-1",
  app_metadata: { groups: ["admin"], level: 1 },
  user_metadata: { lang: "it" },
});
check(created.user_id?.startsWith("auth0|"), "created user id", created);
summary.user_created = { user_id: created.user_id, email: created.email, identities: created.identities };
const admins = await sdk.users.search('app_metadata.groups:"admin"');
summary.admins_found = admins.map((u) => u.email).sort();
const updated = await sdk.users.update(created.user_id, { app_metadata: { level: 2 }, name: "Renamed by SDK" });
summary.user_updated = { app_metadata: updated.app_metadata, user_metadata: updated.user_metadata, name: updated.name };
const fetched = await sdk.users.get(created.user_id);
summary.user_fetched_email = fetched.email;
summary.users_by_email = (await sdk.users.byEmail(email)).map((u) => u.user_id);
await sdk.users.delete(created.user_id);
try {
  await sdk.users.get(created.user_id);
  summary.deleted_user_status = 200;
} catch (e) {
  summary.deleted_user_status = e.statusCode ?? e.status ?? String(e);
}

// --- clients
const client = await sdk.clients.create({
  name: `SDK app ${run}`,
  app_type: "regular_web",
  callbacks: ["https://sdk.example.test/callback"],
  client_metadata: { team: "sdk" },
});
check(client.client_id && client.client_secret, "client credentials", client);
const clientUpdated = await sdk.clients.update(client.client_id, {
  callbacks: ["https://sdk.example.test/cb2"],
  client_metadata: { owner: "tests" },
});
summary.client = {
  callbacks: clientUpdated.callbacks,
  client_metadata: clientUpdated.client_metadata,
  listed: (await sdk.clients.list()).some((c) => c.client_id === client.client_id),
};

// --- connections
const connection = await sdk.connections.create({
  name: `sdk-db-${Date.now()}`,
  strategy: "auth0",
  enabled_clients: [client.client_id],
  options: { disable_signup: true },
});
const connectionUpdated = await sdk.connections.update(connection.id, { options: { passwordPolicy: "fair" } });
summary.connection = {
  id_pattern: /^con_[A-Za-z0-9]{16}$/.test(connection.id),
  options: connectionUpdated.options,
  enabled_clients: (await sdk.connections.enabledClients(connection.id)).map((c) => c.client_id),
  listed: (await sdk.connections.list()).some((c) => c.id === connection.id),
};
await sdk.connections.delete(connection.id);

// --- resource servers and client grants
const api = await sdk.resourceServers.create({
  name: `SDK API ${run}`,
  identifier: `https://sdk-${run}.example.test/`,
  scopes: [{ value: "read:things", description: "Read things" }],
  signing_alg: "RS256",
  token_lifetime: 3600,
});
const apiUpdated = await sdk.resourceServers.update(api.id, {
  token_lifetime: 7200,
  scopes: [
    { value: "read:things", description: "Read things" },
    { value: "write:things", description: "Write things" },
  ],
});
summary.resource_server = {
  token_lifetime: apiUpdated.token_lifetime,
  scopes: apiUpdated.scopes.map((s) => s.value),
  listed: (await sdk.resourceServers.list()).some((r) => r.id === api.id),
};
const grant = await sdk.clientGrants.create({ client_id: client.client_id, audience: api.identifier, scope: ["read:things"] });
const grantUpdated = await sdk.clientGrants.update(grant.id, { scope: ["read:things", "write:things"] });
summary.client_grant = {
  id_pattern: /^cgr_[A-Za-z0-9]{16}$/.test(grant.id),
  scope: grantUpdated.scope,
  listed: (await sdk.clientGrants.list({ client_id: client.client_id })).map((g) => g.audience),
};
// The new M2M credentials work at the token endpoint with the granted scopes.
const auth = new sdk.AuthenticationClient({ domain: args.domain, clientId: client.client_id, clientSecret: client.client_secret });
const cc = await auth.oauth.clientCredentialsGrant({ audience: api.identifier });
summary.client_credentials = { scope: cc.data.scope, token_type: cc.data.token_type, expires_in: cc.data.expires_in };
await sdk.clientGrants.delete(grant.id);
await sdk.resourceServers.delete(api.id);
await sdk.clients.delete(client.client_id);

// --- an import job: good rows (one with a bcrypt hash), a broken one, run to completion.
const connections = await sdk.connections.list();
const target = connections.find((c) => c.name === args.connection);
check(target, "the users connection is listed", connections.map((c) => c.name));
const importedEmail = `imported-${run}@example.test`;
const file = JSON.stringify([
  { email: importedEmail, email_verified: true, password_hash: args.bcrypt, app_metadata: { groups: ["editor"] } },
  { email: `second-${run}@example.test`, user_metadata: { source: "sdk" } },
  { email: "not-an-email", name: "broken" },
]);
const job = await sdk.jobs.importUsers(file, { connection_id: target.id, upsert: false, external_id: `ext-${run}` });
summary.job_created = { status: job.status, type: job.type, connection: job.connection, external_id_echoed: job.external_id === `ext-${run}` };
let finished = job;
for (let i = 0; i < 200 && !["completed", "failed"].includes(finished.status); i++) {
  await sleep(100);
  finished = await sdk.jobs.get(job.id);
}
summary.job = { status: finished.status, summary: finished.summary };
const errors = await sdk.jobs.errors(job.id);
summary.job_errors = (Array.isArray(errors) ? errors : []).map((e) => ({ email: e.user?.email, codes: e.errors.map((x) => x.code) }));

// --- the imported user logs in with the password-realm grant (and its bcrypt hash as given).
const cms = new sdk.AuthenticationClient({
  domain: args.domain,
  clientId: args["cms-client-id"],
  clientSecret: args["cms-client-secret"],
});
const login = await cms.oauth.passwordGrant({
  username: importedEmail,
  password: args.password,
  realm: args.connection,
  scope: "openid profile email",
});
const idClaims = JSON.parse(Buffer.from(login.data.id_token.split(".")[1], "base64url").toString());
summary.password_realm = { token_type: login.data.token_type, id_token_email: idClaims.email, has_access_token: !!login.data.access_token };
try {
  await cms.oauth.passwordGrant({ username: importedEmail, password: "wrong-password", realm: args.connection });
  summary.wrong_password = "accepted";
} catch (e) {
  summary.wrong_password = { status: e.statusCode, error: e.error, message: e.error_description ?? e.message };
}

// --- the tenant log: the wrong password above is an `fp` event of the imported user, found by a
// search, read by its id and listed among the user's events. Events reach the store within a
// second (the recorder's batching), so the search is retried for up to 10 s.
let failures = [];
for (let i = 0; i < 100 && failures.length === 0; i++) {
  failures = (await sdk.logs.search("type:fp")).filter((e) => e.user_name === importedEmail);
  if (failures.length === 0) await sleep(100);
}
check(failures.length === 1, "the wrong password's fp event", failures);
const fp = await sdk.logs.get(failures[0].log_id);
const userLogs = await sdk.users.logs(fp.user_id);
summary.logs = {
  fp_type: fp.type,
  fp_description: fp.description,
  fp_connection: fp.connection,
  same_id: fp.log_id === failures[0].log_id,
  user_log_types: [...new Set(userLogs.map((e) => e.type))].sort(),
};

console.log(JSON.stringify(summary));
