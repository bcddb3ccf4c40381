"""Drives the current major of the official PyPI `auth0-python` SDK (v6: the Fern-generated
`ManagementClient` over httpx, which fetches its own token), unmodified, against a Gatehouse idp
over HTTPS, and prints a JSON summary (crates/gatehouse/tests/it/sdk_python.rs asserts on it).
The idp's CA is trusted through SSL_CERT_FILE (httpx) and REQUESTS_CA_BUNDLE (GetToken).

    python sdk_auth0_v6.py --domain localhost:PORT --client-id ID --client-secret S \
        --cms-client-id ID --cms-client-secret S --bcrypt HASH --password PLAIN
"""

import argparse
import io
import json
import os
import time
from importlib.metadata import version

from auth0.authentication import GetToken
from auth0.management import ManagementClient

parser = argparse.ArgumentParser()
for name in ["domain", "client-id", "client-secret", "cms-client-id", "cms-client-secret", "bcrypt", "password"]:
    parser.add_argument(f"--{name}", required=True)
parser.add_argument("--connection", default="dev-users")
args = parser.parse_args()

run = f"{os.getpid()}-{int(time.time() * 1000)}"
summary = {"version": version("auth0-python")}


def plain(model):
    return model.model_dump(exclude_none=True) if hasattr(model, "model_dump") else model


mgmt = ManagementClient(domain=args.domain, client_id=args.client_id, client_secret=args.client_secret)

email = f"py6-{run}@example.test"
created = mgmt.users.create(
    connection=args.connection,
    email=email,
    password="Py6-Passw0rd!-1",
    app_metadata={"groups": ["admin"], "level": 1},
    user_metadata={"lang": "it"},
)
summary["user_created"] = {"user_id": created.user_id, "email": created.email}
found = [plain(u) for u in mgmt.users.list(q='app_metadata.groups:"admin"', search_engine="v3")]
summary["search_emails"] = sorted(u["email"] for u in found)
updated = mgmt.users.update(created.user_id, app_metadata={"level": 2})
summary["user_updated"] = {"app_metadata": updated.app_metadata, "user_metadata": updated.user_metadata}
mgmt.users.delete(created.user_id)
try:
    mgmt.users.get(created.user_id)
    summary["deleted_user"] = "still there"
except Exception as e:  # the SDK's NotFoundError
    summary["deleted_user"] = {"type": type(e).__name__, "status": getattr(e, "status_code", None)}

summary["clients"] = sorted(c.name for c in mgmt.clients.list())
connections = list(mgmt.connections.list())
summary["connections"] = sorted(c.name for c in connections)
api = mgmt.resource_servers.create(identifier=f"https://py6-{run}.example.test/", name=f"Py6 API {run}",
                                   scopes=[{"value": "read:things", "description": "Read things"}])
cms_client = next(c for c in mgmt.clients.list() if c.name == "CMS")
grant = mgmt.client_grants.create(client_id=cms_client.client_id, audience=api.identifier, scope=["read:things"])
summary["client_grant"] = {"scope": grant.scope, "id_prefix": grant.id[:4]}
mgmt.client_grants.delete(grant.id)
mgmt.resource_servers.delete(api.id)

target = next(c for c in connections if c.name == args.connection)
imported = f"py6-imported-{run}@example.test"
users = [
    {"email": imported, "email_verified": True, "password_hash": args.bcrypt},
    {"email": "broken"},
]
job = mgmt.jobs.users_imports.create(
    users=("users.json", io.BytesIO(json.dumps(users).encode()), "application/json"),
    connection_id=target.id,
    upsert=False,
    external_id=f"py6-{run}",
)
summary["job_created"] = {"status": job.status, "external_id_echoed": job.external_id == f"py6-{run}"}
for _ in range(200):
    current = mgmt.jobs.get(job.id)
    if current.status in ("completed", "failed"):
        break
    time.sleep(0.1)
summary["job"] = {"status": current.status, "summary": plain(current).get("summary")}
errors = mgmt.jobs.errors.get(job.id)
errors = [plain(e) for e in errors] if isinstance(errors, list) else plain(errors)
summary["job_errors"] = errors

cms = GetToken(args.domain, args.cms_client_id, client_secret=args.cms_client_secret)
login = cms.login(imported, args.password, realm=args.connection, scope="openid email")
summary["password_realm"] = {"token_type": login["token_type"], "has_id_token": "id_token" in login}

print(json.dumps(summary, default=str))
