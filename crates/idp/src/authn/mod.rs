//! The Authentication API's endpoints, one file per URL family, each thin: read the request,
//! call the flow, grant or account function that does the work, and shape the answer.

pub mod authorize;
pub mod callback;
pub mod dbconnections;
pub mod discovery;
pub mod login;
pub mod logout;
pub mod token;
pub mod userinfo;
