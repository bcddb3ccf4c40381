// Prints the configuration of a tenant as the Management API shows it (clients, connections,
// resource servers, client grants, tenant settings, actions and post-login bindings), through the official npm `auth0` SDK:
// crates/gatehouse/tests/it/deploy_cli.rs compares snapshots taken before and after an import.
//
//   node snapshot-tenant.mjs --domain localhost:PORT --client-id ID --client-secret S

import { parseArgs } from "node:util";
import { ManagementClient } from "auth0";

const { values: args } = parseArgs({
  options: { domain: { type: "string" }, "client-id": { type: "string" }, "client-secret": { type: "string" } },
});
const m = new ManagementClient({ domain: args.domain, clientId: args["client-id"], clientSecret: args["client-secret"] });
const all = async (pagePromise) => {
  const out = [];
  for await (const item of await pagePromise) out.push(item);
  return out;
};
const byKey = (key) => (a, b) => String(a[key]).localeCompare(String(b[key]));

const snapshot = {
  clients: (await all(m.clients.list())).sort(byKey("name")),
  connections: (await all(m.connections.list())).sort(byKey("name")),
  resource_servers: (await all(m.resourceServers.list())).sort(byKey("identifier")),
  client_grants: (await all(m.clientGrants.list())).sort(byKey("id")),
  tenant: await m.tenants.settings.get(),
  actions: (await all(m.actions.list())).sort(byKey("name")),
  post_login_bindings: await all(m.actions.triggers.bindings.list("post-login")),
};
console.log(JSON.stringify(snapshot));
