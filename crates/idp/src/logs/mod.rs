//! Tenant logs: Auth0's log events for every outcome of the Authentication API and every
//! Management API write. The login path describes what happened where it decides it
//! ([`Event`], [`Type`]) and hands it to [`crate::Idp::log`]; the [`Recorder`] writes events to
//! the store in batches off the request path. Searching them is `management/logs.rs`.

mod event;
mod recorder;

pub use event::{Event, Origin, Type};
pub use recorder::Recorder;
