"""Drives the official PyPI `auth0-python` SDK's roles and users-roles/permissions calls,
unmodified, against a Gatehouse idp over HTTPS, and prints a JSON summary of what the SDK saw
(crates/gatehouse/tests/it/sdk_rbac.rs asserts on it). The idp's CA is trusted through
REQUESTS_CA_BUNDLE.

    python sdk_auth0_rbac.py --domain localhost:PORT --client-id ID --client-secret S \
        --user-email EMAIL
"""

import argparse
import json
import os
import time
from importlib.metadata import version

from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error
from auth0.management import Auth0

parser = argparse.ArgumentParser()
for name in ["domain", "client-id", "client-secret", "user-email"]:
    parser.add_argument(f"--{name}", required=True)
args = parser.parse_args()

run = f"{os.getpid()}-{int(time.time() * 1000)}"
summary = {"version": version("auth0-python")}
token = GetToken(args.domain, args.client_id, client_secret=args.client_secret).client_credentials(
    f"https://{args.domain}/api/v2/"
)
mgmt = Auth0(args.domain, token["access_token"])


def refused(call):
    """The status of a call the SDK must refuse."""
    try:
        call()
        return "accepted"
    except Auth0Error as e:
        return e.status_code


identifier = f"https://rbac-{run}.example.test/"
api = mgmt.resource_servers.create(
    {
        "name": f"RBAC API {run}",
        "identifier": identifier,
        "scopes": [{"value": "read:things", "description": "Read things"}, {"value": "write:things"}],
        "enforce_policies": True,
        "token_dialect": "access_token_authz",
    }
)


def perm(name):
    return {"resource_server_identifier": identifier, "permission_name": name}


# Roles.
editors = mgmt.roles.create({"name": f"Editors {run}", "description": "Edit things"})
viewers = mgmt.roles.create({"name": f"Viewers {run}"})
summary["role_created"] = {"id_prefix": editors["id"][:4], "name_ok": editors["name"] == f"Editors {run}"}
summary["role_fetched"] = mgmt.roles.get(editors["id"])["description"]
summary["role_updated"] = mgmt.roles.update(viewers["id"], {"description": "Only look"})["description"]
listed = mgmt.roles.list(name_filter=f"EDITORS {run}")
summary["roles_filtered"] = {"total": listed["total"], "ids": [r["id"] == editors["id"] for r in listed["roles"]]}
summary["duplicate_name"] = refused(lambda: mgmt.roles.create({"name": f"Editors {run}"}))
summary["unknown_role"] = refused(lambda: mgmt.roles.get("rol_doesnotexist00"))

# Role permissions.
mgmt.roles.add_permissions(editors["id"], [perm("read:things"), perm("write:things")])
mgmt.roles.remove_permissions(editors["id"], [perm("write:things")])
held = mgmt.roles.list_permissions(editors["id"])
summary["role_permissions"] = {
    "total": held["total"],
    "names": [p["permission_name"] for p in held["permissions"]],
    "description": held["permissions"][0]["description"],
}
summary["undefined_permission"] = refused(lambda: mgmt.roles.add_permissions(editors["id"], [perm("delete:things")]))

# Users of a role (checkpoint paging), a user's roles and permissions.
user = mgmt.users_by_email.search_users_by_email(args.user_email)[0]
mgmt.roles.add_users(editors["id"], [user["user_id"]])
mgmt.roles.add_users(editors["id"], [user["user_id"]])
mgmt.users.add_roles(user["user_id"], [viewers["id"]])
members = mgmt.roles.list_users(editors["id"], take=1)
summary["role_users"] = {"ids": [u["user_id"] == user["user_id"] for u in members["users"]], "next": "next" in members}
roles = mgmt.users.list_roles(user["user_id"])
summary["user_roles"] = {"total": roles["total"], "names": sorted(r["name"].split(" ")[0] for r in roles["roles"])}
mgmt.users.add_permissions(user["user_id"], [perm("write:things")])
permissions = mgmt.users.list_permissions(user["user_id"])
summary["user_permissions"] = sorted(
    [
        {"name": p["permission_name"], "sources": [s["source_type"] for s in p["sources"]]}
        for p in permissions["permissions"]
        if p["resource_server_identifier"] == identifier
    ],
    key=lambda p: p["name"],
)
mgmt.users.remove_permissions(user["user_id"], [perm("write:things")])
mgmt.users.remove_roles(user["user_id"], [viewers["id"]])
summary["user_roles_after"] = mgmt.users.list_roles(user["user_id"])["total"]

# Deleting a role takes it off its users.
mgmt.roles.delete(editors["id"])
mgmt.roles.delete(viewers["id"])
summary["user_roles_after_delete"] = mgmt.users.list_roles(user["user_id"])["total"]
summary["deleted_role"] = refused(lambda: mgmt.roles.get(editors["id"]))
mgmt.resource_servers.delete(api["id"])

print(json.dumps(summary))
