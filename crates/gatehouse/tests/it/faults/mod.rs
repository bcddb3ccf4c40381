//! Several nodes under faults: real PostgreSQL, Redis, idp nodes and auth0-client instances of
//! the tests' own, failed on purpose. `parts` starts and breaks them, `balancer` spreads
//! connections over nodes, `load` is the mixed traffic and its verdicts; `readiness` checks
//! the probes follow the database and Redis, `under_load` the invariants through each fault.

mod balancer;
pub mod load;
pub mod parts;
mod readiness;
mod under_load;
