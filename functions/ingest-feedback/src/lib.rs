//! `ingest-feedback`: turns SES feedback arriving on the SQS queue into suppression decisions in
//! the DynamoDB table. The library holds the handler (generic over its ports) and the AWS
//! adapters; `main.rs` only wires them together.

pub mod adapters;
pub mod apply;
pub mod config;
pub mod handler;
pub mod ports;

pub use config::Config;
pub use handler::{Handler, HandlerSettings, RecordOutcome};
