//! The HTTP layer: the router and what every request goes through (`router`), and the pieces
//! of HTTP the endpoints share: parameters (`params`, `json_body`), cookies, the client's
//! address and `event.request` (`client`), redirects back to applications (`reply`), and every
//! wire shape an error takes (`errors`). Nothing below `authn` and `management` uses this module.

pub mod client;
pub mod cookies;
pub mod errors;
pub mod json_body;
pub mod params;
pub mod reply;
pub mod router;
pub mod serve;
