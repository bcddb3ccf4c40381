//! The tenant as code. Owns the formats teams already use with Auth0 — auth0-deploy-cli's
//! `tenant.yaml` (with its `##KEY##` / `@@KEY@@` keyword replacement and `.env` keyword files)
//! and Auth0's bulk user-import JSON — and turns them into the `store` records the idp
//! provisions. Uses `store` for its record types only: it never touches a database, and every
//! rule here is testable on plain text.
//!
//! Entry points: [`Keywords`], [`load_tenant`] / [`parse_tenant`] → [`TenantFile`], and
//! [`load_users`] / [`parse_users`] → [`UserImport`]; [`lint`] and [`doctor`] check a tenant
//! against the guide (and an auth0-client config.json against a tenant).
//!
//! The one exception to "no network": [`remote`], [`export`] and [`import`] talk to a
//! Management API over HTTP (Auth0's or the idp's — never the idp crate), and [`yaml_out`]
//! writes what an export read, as auth0-deploy-cli does.

pub mod doctor;
pub mod envfile;
pub mod error;
pub mod export;
pub mod file;
pub mod import;
pub mod keywords;
pub mod lint;
pub mod logs;
pub mod model;
pub mod remote;
pub mod users;
pub mod yaml_out;

#[cfg(test)]
mod example_tests;
#[cfg(test)]
mod file_tests;

pub use error::{Error, Result};
pub use export::{RemoteState, export};
pub use file::{TenantFile, load_tenant, parse_tenant};
pub use import::{ImportOptions, ImportReport, import};
pub use keywords::Keywords;
pub use lint::{Finding, Severity, lint};
pub use model::{
    ActionDependency, ActionSpec, ClientGrantSpec, ClientSpec, ConnectionSpec, ResourceServerSpec, SupportedTrigger,
    TriggerBinding,
};
pub use remote::{Credentials, ManagementClient};
pub use users::{
    CustomPasswordHash, EncodedValue, HashValue, ImportPassword, ImportUser, MfaFactor, RowError, Salt, UserImport,
    load_users, parse_users,
};
pub use yaml_out::{Rendered, WriteOptions};
