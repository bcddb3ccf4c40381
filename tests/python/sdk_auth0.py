"""Drives the official PyPI `auth0-python` SDK, unmodified, against a Gatehouse idp over HTTPS
and prints a JSON summary of what the SDK saw (crates/gatehouse/tests/it/sdk_python.rs asserts
on it). The idp's CA is trusted through REQUESTS_CA_BUNDLE.

    python sdk_auth0.py --domain localhost:PORT --client-id ID --client-secret S \
        --cms-client-id ID --cms-client-secret S --bcrypt HASH --password PLAIN
"""

import argparse
import io
import json
import os
import time
from importlib.metadata import version

from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0

parser = argparse.ArgumentParser()
for name in ["domain", "client-id", "client-secret", "cms-client-id", "cms-client-secret", "bcrypt", "password"]:
    parser.add_argument(f"--{name}", required=True)
parser.add_argument("--connection", default="dev-users")
args = parser.parse_args()

run = f"{os.getpid()}-{int(time.time() * 1000)}"
summary = {"version": version("auth0-python")}

# A Management API token through the authentication client, as the SDK's docs show.
admin = GetToken(args.domain, args.client_id, client_secret=args.client_secret)
token = admin.client_credentials(f"https://{args.domain}/api/v2/")
summary["management_token"] = {"token_type": token["token_type"], "has_scope": "create:users" in token["scope"]}
mgmt = Auth0(args.domain, token["access_token"])

# Users: create, search (Lucene on app_metadata), update (metadata merge), delete.
email = f"py-{run}@example.test"
created = mgmt.users.create(
    {
        "connection": args.connection,
        "email": email,
        "password": "Py-Passw0rd!-1",
        "app_metadata": {"groups": ["admin"], "level": 1},
        "user_metadata": {"lang": "it"},
    }
)
summary["user_created"] = {"user_id": created["user_id"], "email": created["email"]}
found = mgmt.users.list(q='app_metadata.groups:"admin"', search_engine="v3")
summary["search"] = {
    "total": found["total"],
    "emails": sorted(u["email"] for u in found["users"]),
    "keys": sorted(k for k in found if k != "users"),
}
updated = mgmt.users.update(created["user_id"], {"app_metadata": {"level": 2}, "blocked": True})
summary["user_updated"] = {"app_metadata": updated["app_metadata"], "blocked": updated["blocked"]}
mgmt.users.delete(created["user_id"])
try:
    mgmt.users.get(created["user_id"])
    summary["deleted_user"] = "still there"
except Auth0Error as e:
    summary["deleted_user"] = {"status": e.status_code, "error_code": e.error_code, "message": e.message}

# Clients and connections listed; a resource server and a grant created.
summary["clients"] = sorted(c["name"] for c in mgmt.clients.all())
connections = mgmt.connections.all()
summary["connections"] = sorted(c["name"] for c in connections)
api = mgmt.resource_servers.create(
    {
        "name": f"Py API {run}",
        "identifier": f"https://py-{run}.example.test/",
        "scopes": [{"value": "read:things", "description": "Read things"}],
        "signing_alg": "RS256",
    }
)
summary["resource_server"] = {"identifier_ok": api["identifier"] == f"https://py-{run}.example.test/", "id": api["id"]}
cms_client = next(c for c in mgmt.clients.all() if c["name"] == "CMS")
grant = mgmt.client_grants.create(
    {"client_id": cms_client["client_id"], "audience": api["identifier"], "scope": ["read:things"]}
)
summary["client_grant"] = {"scope": grant["scope"], "id_prefix": grant["id"][:4]}
mgmt.client_grants.delete(grant["id"])
mgmt.resource_servers.delete(api["id"])

# An import job, to completion, and its errors.
target = next(c for c in connections if c["name"] == args.connection)
imported = f"py-imported-{run}@example.test"
users = [
    {"email": imported, "email_verified": True, "password_hash": args.bcrypt, "app_metadata": {"groups": ["editor"]}},
    {"email": "broken", "name": "no valid email"},
]
job = mgmt.jobs.import_users(
    target["id"], io.BytesIO(json.dumps(users).encode()), upsert=True, send_completion_email=False, external_id=f"py-{run}"
)
summary["job_created"] = {"status": job["status"], "external_id_echoed": job.get("external_id") == f"py-{run}"}
for _ in range(200):
    job = mgmt.jobs.get(job["id"])
    if job["status"] in ("completed", "failed"):
        break
    time.sleep(0.1)
summary["job"] = {"status": job["status"], "summary": job.get("summary")}
errors = mgmt.jobs.get_failed_job(job["id"])
summary["job_errors"] = [{"email": e["user"].get("email"), "codes": [x["code"] for x in e["errors"]]} for e in errors]

# The imported user logs in with the password-realm grant (JSON body with nulls).
cms = GetToken(args.domain, args.cms_client_id, client_secret=args.cms_client_secret)
login = cms.login(imported, args.password, realm=args.connection, scope="openid email")
summary["password_realm"] = {"token_type": login["token_type"], "has_id_token": "id_token" in login}
try:
    cms.login(imported, "wrong-password", realm=args.connection)
    summary["wrong_password"] = "accepted"
except Auth0Error as e:
    summary["wrong_password"] = {"status": e.status_code, "error_code": e.error_code, "message": e.message}

print(json.dumps(summary))
