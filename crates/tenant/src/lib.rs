//! The tenant as code. Owns the formats teams already use with Auth0 — auth0-deploy-cli's
//! `tenant.yaml` and directory format (with its `##KEY##` / `@@KEY@@` keyword replacement), its
//! `config.json`, `.env` keyword files, and Auth0's bulk user-import JSON — and turns them into
//! the `store` records the idp provisions. Uses `store` for its record types only: it never
//! touches a database, and every rule here is testable on plain text.
//!
//! Entry points: [`config::DeployConfig`] and [`Keywords`]; [`load_tenant`] (YAML or
//! [`directory`], by the path) / [`parse_tenant`] → [`TenantFile`]; [`load_users`] /
//! [`parse_users`] → [`UserImport`]; [`lint`] and [`doctor`] check a tenant against the guide
//! (and an auth0-client config.json against a tenant).
//!
//! The one exception to "no network": [`remote`], [`state`], [`export`] and [`import`] talk
//! to a Management API over HTTP (Auth0's or the idp's — never the idp crate), and
//! [`yaml_out`] / [`directory`] write what an export read, as auth0-deploy-cli does.
//!
//! Layers, bottom up (no module imports one above it): `error`, `markers`, `ctx` →
//! `envfile`, `keywords` → `sources`, `model` → `file` → `directory`, `load`; `remote` →
//! `state` → `selection` → `config`, `export`, `import`.

pub mod config;
pub mod ctx;
pub mod directory;
pub mod doctor;
pub mod envfile;
pub mod error;
pub mod export;
pub mod file;
pub mod import;
pub mod keywords;
pub mod lint;
pub mod load;
pub mod logs;
pub mod markers;
pub mod model;
pub mod remote;
pub mod selection;
pub mod sources;
pub mod state;
pub mod users;
pub mod yaml_out;

#[cfg(test)]
mod example_tests;
#[cfg(test)]
mod file_tests;

pub use error::{Error, Result};
pub use export::{export, export_with};
pub use file::{TenantFile, parse_tenant};
pub use import::{ImportOptions, ImportReport, import};
pub use keywords::{Keywords, Unresolved};
pub use lint::{Finding, Severity, lint};
pub use load::load_tenant;
pub use model::{
    ActionDependency, ActionSpec, ClientGrantSpec, ClientSpec, ConnectionSpec, ResourceServerSpec, RolePermission,
    RoleSpec, SupportedTrigger, TriggerBinding,
};
pub use remote::{Credentials, ManagementClient};
pub use state::RemoteState;
pub use users::{
    CustomPasswordHash, EncodedValue, HashValue, ImportPassword, ImportUser, MfaFactor, RowError, Salt, UserImport,
    load_users, parse_users,
};
pub use yaml_out::{Rendered, WriteOptions};
