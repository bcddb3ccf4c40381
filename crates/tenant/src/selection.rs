//! What a deploy-cli configuration leaves out of management, both ways (deploy-cli's
//! "bi-directional" exclusion): `AUTH0_INCLUDED_ONLY` / `AUTH0_EXCLUDED` name whole resource
//! types, `AUTH0_EXCLUDED_CLIENTS` / `_DATABASES` / `_CONNECTIONS` / `_RESOURCE_SERVERS` single
//! objects by name, and `AUTH0_INCLUDED_CONNECTIONS` the only connections managed. What is left
//! out is neither read from a file, nor exported, nor compared, nor deleted. A client left
//! out takes its grants along, as in deploy-cli.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::TenantFile;
use crate::state::{RemoteState, str_of};

/// Resource types Gatehouse reads and writes, by deploy-cli's names.
pub const MANAGED_TYPES: [&str; 9] = [
    "tenant",
    "clients",
    "databases",
    "connections",
    "resourceServers",
    "clientGrants",
    "actions",
    "triggers",
    "roles",
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    included_only: Option<BTreeSet<String>>,
    excluded: BTreeSet<String>,
    /// Section → names left out.
    names: BTreeMap<&'static str, BTreeSet<String>>,
    /// `AUTH0_INCLUDED_CONNECTIONS`.
    only_connections: Option<BTreeSet<String>>,
}

impl Selection {
    /// From deploy-cli's settings; `by_name` holds the per-name lists by their variable name.
    /// An error is `(setting, message)`.
    pub fn new(
        included_only: Option<Vec<String>>,
        excluded: Vec<String>,
        by_name: BTreeMap<&str, Vec<String>>,
    ) -> Result<Self, (&'static str, String)> {
        if included_only.as_ref().is_some_and(Vec::is_empty) {
            return Err(("AUTH0_INCLUDED_ONLY", "needs at least one resource type".into()));
        }
        if included_only.is_some() && !excluded.is_empty() {
            return Err((
                "AUTH0_INCLUDED_ONLY",
                "both AUTH0_EXCLUDED and AUTH0_INCLUDED_ONLY are set; only one can be used at a time".into(),
            ));
        }
        let list = |key: &str| by_name.get(key).cloned().unwrap_or_default();
        let only_connections = by_name.get("AUTH0_INCLUDED_CONNECTIONS").filter(|l| !l.is_empty()).cloned();
        if only_connections.is_some() && !list("AUTH0_EXCLUDED_CONNECTIONS").is_empty() {
            return Err((
                "AUTH0_INCLUDED_CONNECTIONS",
                "both AUTH0_INCLUDED_CONNECTIONS and AUTH0_EXCLUDED_CONNECTIONS are set; only one can be used".into(),
            ));
        }
        let mut names = BTreeMap::new();
        for (section, key) in [
            ("clients", "AUTH0_EXCLUDED_CLIENTS"),
            ("databases", "AUTH0_EXCLUDED_DATABASES"),
            ("connections", "AUTH0_EXCLUDED_CONNECTIONS"),
            ("resourceServers", "AUTH0_EXCLUDED_RESOURCE_SERVERS"),
        ] {
            let set: BTreeSet<String> = list(key).into_iter().collect();
            if !set.is_empty() {
                names.insert(section, set);
            }
        }
        Ok(Self {
            included_only: included_only.map(|l| l.into_iter().collect()),
            excluded: excluded.into_iter().collect(),
            names,
            only_connections: only_connections.map(|l| l.into_iter().collect()),
        })
    }

    /// Whether a resource type is managed.
    pub fn manages(&self, section: &str) -> bool {
        match &self.included_only {
            Some(only) => only.contains(section),
            None => !self.excluded.contains(section),
        }
    }

    /// Whether the object named `name` of `section` is managed (its type aside).
    pub fn keeps_name(&self, section: &str, name: &str) -> bool {
        if self.names.get(section).is_some_and(|n| n.contains(name)) {
            return false;
        }
        match (&self.only_connections, section) {
            (Some(only), "connections") => only.contains(name),
            _ => true,
        }
    }

    /// Names in AUTH0_INCLUDED_ONLY / AUTH0_EXCLUDED that Gatehouse does not manage (deploy-cli
    /// types such as `branding`, or typos), for a note.
    pub fn unmanaged_types(&self) -> Vec<String> {
        let named = self.included_only.iter().flatten().chain(self.excluded.iter());
        named.filter(|t| !MANAGED_TYPES.contains(&t.as_str())).cloned().collect()
    }

    /// Leaves out of `file` what is not managed; returns one note per thing left out.
    pub fn apply_to_file(&self, file: &mut TenantFile) -> Vec<String> {
        let mut notes = Vec::new();
        for section in MANAGED_TYPES {
            if !self.manages(section) && file.sections.remove(section) {
                notes.push(format!("{section}: left out by the configuration (AUTH0_INCLUDED_ONLY / AUTH0_EXCLUDED)"));
                match section {
                    "tenant" => file.tenant = Default::default(),
                    "clients" => file.clients.clear(),
                    "databases" => file.databases.clear(),
                    "connections" => file.connections.clear(),
                    "resourceServers" => file.resource_servers.clear(),
                    "clientGrants" => file.client_grants.clear(),
                    "actions" => file.actions.clear(),
                    "triggers" => file.triggers.clear(),
                    _ => file.roles.clear(),
                }
            }
        }
        let mut dropped =
            |section: &str, name: &str| notes.push(format!("{section}: {name:?} left out by the configuration"));
        file.clients.retain(|c| self.keeps_name("clients", &c.name) || (dropped("clients", &c.name), false).1);
        file.databases.retain(|c| self.keeps_name("databases", &c.name) || (dropped("databases", &c.name), false).1);
        file.connections
            .retain(|c| self.keeps_name("connections", &c.name) || (dropped("connections", &c.name), false).1);
        file.resource_servers
            .retain(|r| self.keeps_name("resourceServers", &r.name) || (dropped("resourceServers", &r.name), false).1);
        file.client_grants.retain(|g| self.keeps_name("clients", &g.client_name));
        notes
    }

    /// Leaves out of a live tenant what is not managed, so that an import neither compares nor
    /// deletes it and an export does not write it.
    pub fn apply_to_state(&self, state: &mut RemoteState) {
        let named = |m: &Map<String, Value>| str_of(m, "name").to_string();
        // Clients stay, whatever is left out: grants and connections name them. Deletes and
        // exports ask [`Selection::keeps_name`].
        let left_out: BTreeSet<String> = state
            .clients
            .iter()
            .filter(|c| !self.keeps_name("clients", &named(c)))
            .map(|c| str_of(c, "client_id").to_string())
            .collect();
        state.grants.retain(|g| !left_out.contains(str_of(g, "client_id")) && self.manages("clientGrants"));
        state.connections.retain(|(c, _)| {
            let section = if str_of(c, "strategy") == "auth0" { "databases" } else { "connections" };
            self.manages(section) && self.keeps_name(section, &named(c))
        });
        state
            .resource_servers
            .retain(|r| self.manages("resourceServers") && self.keeps_name("resourceServers", &named(r)));
        if !self.manages("actions") {
            state.actions.clear();
        }
        if !self.manages("triggers") {
            state.bindings.clear();
        }
        if !self.manages("roles") {
            state.roles = None;
        }
        if !self.manages("tenant") {
            state.settings.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_names() {
        let mut by_name = BTreeMap::new();
        by_name.insert("AUTH0_EXCLUDED_CLIENTS", vec!["Legacy".to_string()]);
        by_name.insert("AUTH0_INCLUDED_CONNECTIONS", vec!["github".to_string()]);
        let s = Selection::new(None, vec!["roles".into(), "branding".into()], by_name).unwrap();
        assert!(!s.manages("roles") && s.manages("clients"));
        assert!(!s.keeps_name("clients", "Legacy") && s.keeps_name("clients", "CMS"));
        assert!(s.keeps_name("connections", "github") && !s.keeps_name("connections", "google-oauth2"));
        assert!(s.keeps_name("databases", "dev-users"));
        assert_eq!(s.unmanaged_types(), ["branding"]);
        let only = Selection::new(Some(vec!["clients".into()]), vec![], BTreeMap::new()).unwrap();
        assert!(only.manages("clients") && !only.manages("tenant"));
    }
}
