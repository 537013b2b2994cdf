//! The whole system on loopback, for the demo (`scripts/demo`) and the end-to-end test.
//!
//! Creates the topology of `infra/template.yaml` in moto ([`topology`]), runs the real
//! `ingest-feedback` and `sync-mailcow` binaries behind a Lambda Runtime API ([`runtime`]),
//! feeds them the way AWS does ([`pollers`]), publishes a seeded scenario of SES feedback
//! ([`generator`]) and compares the final state with the one the domain policy predicts
//! ([`check`]). A TCP proxy in front of moto ([`proxy`]) and the simulators' fault switches
//! ([`sims`]) inject the faults of the end-to-end run; the load test also kills the table's own
//! DynamoDB Local and starts it again on its data ([`dynamodb_local`]).
//!
//! Nothing here is linked into a Lambda function.

pub mod check;
pub mod dynamodb_local;
pub mod figures;
pub mod generator;
pub mod observe;
pub mod pollers;
pub mod proxy;
pub mod runtime;
pub mod sims;
pub mod stack;
pub mod template;
pub mod topology;
