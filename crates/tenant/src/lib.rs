//! The tenant as code. Owns the formats teams already use with Auth0 — auth0-deploy-cli's
//! `tenant.yaml` (with its `##KEY##` / `@@KEY@@` keyword replacement and `.env` keyword files)
//! and Auth0's bulk user-import JSON — and turns them into the `store` records the idp
//! provisions. Uses `store` for its record types only: it never touches a database or the
//! network, so every rule here is testable on plain text.
//!
//! Entry points: [`Keywords`], [`load_tenant`] / [`parse_tenant`] → [`TenantFile`], and
//! [`load_users`] / [`parse_users`] → [`UserImport`].

pub mod envfile;
pub mod error;
pub mod file;
pub mod keywords;
pub mod lint;
pub mod model;
pub mod users;

#[cfg(test)]
mod example_tests;
#[cfg(test)]
mod file_tests;

pub use error::{Error, Result};
pub use file::{TenantFile, load_tenant, parse_tenant};
pub use keywords::Keywords;
pub use lint::{Finding, Severity, lint};
pub use model::{
    ActionDependency, ActionSpec, ClientGrantSpec, ClientSpec, ConnectionSpec, ResourceServerSpec, SupportedTrigger,
    TriggerBinding,
};
pub use users::{
    CustomPasswordHash, EncodedValue, HashValue, ImportPassword, ImportUser, MfaFactor, RowError, Salt, UserImport,
    load_users, parse_users,
};
