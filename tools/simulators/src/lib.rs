//! Local simulators of the outside HTTP APIs the functions talk to, for tests and the demo.
//!
//! Each simulator is a real HTTP server on loopback that answers the routes, shapes and quirks of
//! the system it stands in for. Nothing here is linked into a Lambda function.

pub mod mailcow;
pub mod sesv2;
