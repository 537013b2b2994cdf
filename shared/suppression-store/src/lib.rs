//! DynamoDB adapter for the suppression table: the one source of truth.
//!
//! Owns the table's key design (documented in the README and in [`schema`]), the mapping between
//! [`AddressRecord`](feedback_domain::AddressRecord) and DynamoDB items, and the atomic,
//! idempotent event write. Depends on the domain crate and the DynamoDB SDK only; nothing here
//! knows about SQS, SNS or Mailcow.

mod error;
mod item;
pub mod queries;
pub mod schema;
mod store;

pub use error::StoreError;
pub use item::{history_from_item, record_from_item};
pub use queries::{
    Checkpoint, CounterValues, Cursor, DailyCounters, ExpiryFilter, ImportStatus, RecordPage,
    StateReasonQuery, StoredState,
};
pub use store::{DynamoDbSuppressionStore, StoreSettings};
