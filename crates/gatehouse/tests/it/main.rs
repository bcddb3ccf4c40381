//! Real-path tests of the `gatehouse` binary: each starts `gatehouse idp` (or `up`) as a child process
//! (the way users and CI run it) on its own port and data directory, then drives it with
//! software nobody here wrote: the `openid-client` npm SDK, the official Auth0 SDKs (npm `auth0`
//! v7 and v4, PyPI `auth0-python`), `auth0-deploy-cli` and a real chromium browser. One test
//! binary (modules below) so the support code links once.

mod browser;
mod browser_console;
mod browser_mail;
mod browser_up;
mod deploy;
mod deploy_cli;
mod doctor;
mod faults;
mod idp_cli;
mod logs_cli;
mod openid_client;
mod sdk_node;
mod sdk_python;
mod sdk_rbac;
mod sdk_support;
mod support;
mod tenant_parity;
mod tenant_remote;
mod traces;
mod up;
mod up_support;
