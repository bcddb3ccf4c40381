//! End-to-end tests of auth0-client: a real `gatehouse idp` child process (auth0-client never
//! links the idp), real Redis at 127.0.0.1:6379 (each test its own `SESSION_SCOPE`) and the
//! in-memory store, the service on an ephemeral port, and its own binary for start-up rules; a
//! MongoDB-wire server of its own for the user sync (or `MONGO_TEST_URL`).
//! One test binary, so the support code links once.

mod failures;
mod login;
mod redis_modes;
mod startup;
mod support;
mod user_sync;
mod users;
