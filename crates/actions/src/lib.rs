//! Auth0 Actions for Gatehouse: runs the JavaScript of post-login Actions on an event and
//! returns the commands the code issued (custom claims, scope changes, metadata updates, a
//! denial) and what it printed.
//!
//! This crate owns the JavaScript engine (QuickJS through rquickjs), the `event`/`api` runtime
//! contract and its limits. It must not touch storage or HTTP: the identity provider loads the
//! deployed code and secrets, builds the event, calls [`Engine::run_post_login`] on a blocking
//! thread and applies the [`Outcome`].
//!
//! ```
//! use actions::{Engine, Limits, Loaded};
//! let engine = Engine::new(Limits::default());
//! let code = "exports.onExecutePostLogin = async (event, api) => {
//!     api.idToken.setCustomClaim(`${event.secrets.NS}groups`, event.user.app_metadata.groups);
//! };";
//! engine.check(code).unwrap();
//! let action = Loaded {
//!     name: "groups".into(),
//!     code: code.into(),
//!     secrets: std::sync::Arc::new(serde_json::json!({"NS": "https://x.test/"}).as_object().unwrap().clone()),
//! };
//! let event = serde_json::json!({"user": {"app_metadata": {"groups": ["admin"]}}});
//! let outcome = engine.run_post_login(&[action], &event).result.unwrap();
//! assert_eq!(outcome.id_token_claims["https://x.test/groups"], serde_json::json!(["admin"]));
//! ```

mod bytecode;
mod claims;
mod engine;
mod error;
mod outcome;

pub use claims::{RESTRICTED, allowed as claim_allowed, namespaced as claim_namespaced};
pub use engine::{Engine, Execution, Limits, Loaded, MAX_CODE_BYTES};
pub use error::ActionError;
pub use outcome::{Denial, Level, LogLine, MAX_CLAIMS_BYTES, MAX_LOG_CHARS, MAX_METADATA_BYTES, Outcome};
