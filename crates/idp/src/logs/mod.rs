//! Tenant logs: Auth0's log events for every outcome of the Authentication API and every
//! Management API write. The login path describes what happened where it decides it
//! ([`Event`], [`Type`]) and hands it to [`crate::Idp::log`]; the [`Recorder`] writes events to
//! the store in batches off the request path; [`streams`] pushes them to log streams. Searching
//! them is `management/logs.rs`, and the log streams' API `management/log_streams.rs`.

mod event;
mod recorder;
pub mod streams;

pub use event::{Event, Origin, Type, to_json};
pub use recorder::Recorder;
