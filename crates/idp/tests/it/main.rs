//! End-to-end tests of the identity provider over real HTTP: each test starts its own idp on
//! an ephemeral port, provisioned from the guide's example tenant, against SQLite or
//! PostgreSQL. One test binary (modules below) so the world links once.

mod actions;
mod at_rest;
mod console;
mod harness;
mod jobs;
mod lifecycle;
mod log_streams;
mod login_flow;
mod logs;
mod mail;
mod management;
mod nodes;
mod oidc;
mod passwords;
mod rbac;
mod scopes;
mod social;
mod tenant_import;
mod token_endpoint;
mod transport;
