//! `sync-mailcow`: projects the suppression table into Mailcow (the recipient denylist map or a
//! settings rule) and into the SES account-level suppression list. Triggered by the table's
//! stream and by a schedule (drift repair: the map cannot be read back, so the schedule always
//! pushes). The library holds the handler (generic over its ports), the pure projection, event
//! recognition and the AWS/Mailcow adapters; `main.rs` only wires them together.

pub mod adapters;
pub mod config;
pub mod event;
pub mod handler;
pub mod ports;
pub mod projection;

pub use config::{ApiKeySource, Config, MailcowMode};
pub use event::{StreamBatch, Trigger, parse_trigger};
pub use handler::{Handler, HandlerSettings, MailcowOutcome, SesOutcome, SyncError, SyncReport};
