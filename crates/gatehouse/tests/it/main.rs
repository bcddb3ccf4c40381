//! Real-path tests of the `gatehouse` binary: each starts `gatehouse idp` as a child process
//! (the way users and CI run it) on its own port and data directory, then drives it with
//! software nobody here wrote: the `openid-client` npm SDK and a real chromium browser. One
//! test binary (modules below) so the support code links once.

mod browser;
mod openid_client;
mod support;
