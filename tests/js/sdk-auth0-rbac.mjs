// Drives the official npm `auth0` SDK's roles and users-roles/permissions calls, unmodified,
// against a Gatehouse idp over HTTPS, and prints a JSON summary of what the SDK saw
// (crates/gatehouse/tests/it/sdk_rbac.rs asserts on it).
//
//   node sdk-auth0-rbac.mjs --sdk v7|v4 --domain localhost:PORT --client-id ID --client-secret S
//     --user-email EMAIL   (a user of the tenant to give roles and permissions)
//
// The client must be granted the whole Management API. Any error the SDK raises that the
// script does not expect ends it with a non-zero status and the SDK's own message.

import { parseArgs } from "node:util";

const { values: args } = parseArgs({
  options: {
    sdk: { type: "string", default: "v7" },
    domain: { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    "user-email": { type: "string" },
  },
});
for (const k of ["domain", "client-id", "client-secret", "user-email"]) {
  if (!args[k]) throw new Error(`--${k} is required`);
}
const run = `${process.pid}-${Date.now()}`;
const summary = { sdk: args.sdk };

/** The same operations over either SDK generation. */
async function adapter(sdk) {
  const credentials = { domain: args.domain, clientId: args["client-id"], clientSecret: args["client-secret"] };
  if (sdk === "v7") {
    const { ManagementClient } = await import("auth0");
    const m = new ManagementClient(credentials);
    const all = async (pagePromise) => {
      const out = [];
      for await (const item of await pagePromise) out.push(item);
      return out;
    };
    return {
      userByEmail: async (email) => (await m.users.listUsersByEmail({ email }))[0],
      createApi: (body) => m.resourceServers.create(body),
      deleteApi: (id) => m.resourceServers.delete(id),
      roles: {
        list: (q) => all(m.roles.list(q)),
        create: (body) => m.roles.create(body),
        get: (id) => m.roles.get(id),
        update: (id, body) => m.roles.update(id, body),
        delete: (id) => m.roles.delete(id),
        permissions: (id) => all(m.roles.permissions.list(id)),
        addPermissions: (id, permissions) => m.roles.permissions.add(id, { permissions }),
        removePermissions: (id, permissions) => m.roles.permissions.delete(id, { permissions }),
        // Checkpoint paging, one user a page, so `next` is followed.
        users: (id) => all(m.roles.users.list(id, { take: 1 })),
        assignUsers: (id, users) => m.roles.users.assign(id, { users }),
      },
      users: {
        roles: (id) => all(m.users.roles.list(id)),
        assignRoles: (id, roles) => m.users.roles.assign(id, { roles }),
        removeRoles: (id, roles) => m.users.roles.delete(id, { roles }),
        permissions: (id) => all(m.users.permissions.list(id)),
        addPermissions: (id, permissions) => m.users.permissions.create(id, { permissions }),
        removePermissions: (id, permissions) => m.users.permissions.delete(id, { permissions }),
      },
    };
  }
  if (sdk === "v4") {
    const { ManagementClient } = await import("auth0-v4");
    const m = new ManagementClient(credentials);
    const data = async (p) => (await p).data;
    return {
      userByEmail: async (email) => (await data(m.usersByEmail.getByEmail({ email })))[0],
      createApi: (body) => data(m.resourceServers.create(body)),
      deleteApi: (id) => data(m.resourceServers.delete({ id })),
      roles: {
        list: (q) => data(m.roles.getAll(q)),
        create: (body) => data(m.roles.create(body)),
        get: (id) => data(m.roles.get({ id })),
        update: (id, body) => data(m.roles.update({ id }, body)),
        delete: (id) => data(m.roles.delete({ id })),
        permissions: (id) => data(m.roles.getPermissions({ id })),
        addPermissions: (id, permissions) => data(m.roles.addPermissions({ id }, { permissions })),
        removePermissions: (id, permissions) => data(m.roles.deletePermissions({ id }, { permissions })),
        users: async (id) => {
          const out = [];
          let from;
          for (let i = 0; i < 10; i++) {
            const page = await data(m.roles.getUsers({ id, take: 1, ...(from ? { from } : {}) }));
            out.push(...page.users);
            if (!page.next) break;
            from = page.next;
          }
          return out;
        },
        assignUsers: (id, users) => data(m.roles.assignUsers({ id }, { users })),
      },
      users: {
        roles: (id) => data(m.users.getRoles({ id })),
        assignRoles: (id, roles) => data(m.users.assignRoles({ id }, { roles })),
        removeRoles: (id, roles) => data(m.users.deleteRoles({ id }, { roles })),
        permissions: (id) => data(m.users.getPermissions({ id })),
        addPermissions: (id, permissions) => data(m.users.assignPermissions({ id }, { permissions })),
        removePermissions: (id, permissions) => data(m.users.deletePermissions({ id }, { permissions })),
      },
    };
  }
  throw new Error(`unknown --sdk ${sdk}`);
}

/** The status of a call the SDK must refuse. */
async function refused(promise) {
  try {
    await promise;
    return "accepted";
  } catch (e) {
    return e.statusCode ?? e.status ?? String(e);
  }
}

const sdk = await adapter(args.sdk);
const identifier = `https://rbac-${run}.example.test/`;
const api = await sdk.createApi({
  name: `RBAC API ${run}`,
  identifier,
  scopes: [
    { value: "read:things", description: "Read things" },
    { value: "write:things", description: "Write things" },
  ],
  enforce_policies: true,
  token_dialect: "access_token_authz",
});
const perm = (name) => ({ resource_server_identifier: identifier, permission_name: name });

// Roles: create, get, update, list with a filter, duplicate names refused.
const editors = await sdk.roles.create({ name: `Editors ${run}`, description: "Edit things" });
const viewers = await sdk.roles.create({ name: `Viewers ${run}` });
summary.role_created = { id_pattern: /^rol_[A-Za-z0-9]{16}$/.test(editors.id), name_ok: editors.name === `Editors ${run}` };
summary.role_fetched = (await sdk.roles.get(editors.id)).description;
summary.role_updated = (await sdk.roles.update(viewers.id, { description: "Only look" })).description;
summary.roles_filtered = (await sdk.roles.list({ name_filter: `editors ${run}` })).map((r) => r.id === editors.id);
summary.duplicate_name = await refused(sdk.roles.create({ name: `Editors ${run}` }));
summary.unknown_role = await refused(sdk.roles.get("rol_doesnotexist00"));

// Role permissions.
await sdk.roles.addPermissions(editors.id, [perm("read:things"), perm("write:things")]);
await sdk.roles.removePermissions(editors.id, [perm("write:things")]);
summary.role_permissions = (await sdk.roles.permissions(editors.id)).map((p) => ({
  name: p.permission_name,
  api: p.resource_server_name === `RBAC API ${run}`,
  description: p.description,
}));
summary.undefined_permission = await refused(sdk.roles.addPermissions(editors.id, [perm("delete:things")]));

// Users of a role, and a user's roles and permissions.
const user = await sdk.userByEmail(args["user-email"]);
await sdk.roles.assignUsers(editors.id, [user.user_id]);
await sdk.roles.assignUsers(editors.id, [user.user_id]);
await sdk.users.assignRoles(user.user_id, [viewers.id]);
summary.role_users = (await sdk.roles.users(editors.id)).map((u) => u.user_id === user.user_id);
summary.user_roles = (await sdk.users.roles(user.user_id)).map((r) => r.name.split(" ")[0]).sort();
await sdk.users.addPermissions(user.user_id, [perm("write:things")]);
summary.user_permissions = (await sdk.users.permissions(user.user_id))
  .filter((p) => p.resource_server_identifier === identifier)
  .map((p) => ({ name: p.permission_name, sources: p.sources.map((s) => s.source_type) }))
  .sort((a, b) => a.name.localeCompare(b.name));
await sdk.users.removePermissions(user.user_id, [perm("write:things")]);
await sdk.users.removeRoles(user.user_id, [viewers.id]);
summary.user_roles_after = (await sdk.users.roles(user.user_id)).length;

// Deleting a role takes it off its users.
await sdk.roles.delete(editors.id);
await sdk.roles.delete(viewers.id);
summary.user_roles_after_delete = (await sdk.users.roles(user.user_id)).length;
summary.deleted_role = await refused(sdk.roles.get(editors.id));
await sdk.deleteApi(api.id);

console.log(JSON.stringify(summary));
