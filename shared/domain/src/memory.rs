//! An in-memory [`SuppressionStore`] with the same idempotency and locking rules as the table:
//! for handler tests and local experiments, never for production data.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::address::SuppressionTarget;
use crate::ports::{
    CommitOutcome, CounterField, EventWrite, HistoryEntry, Retryable, SuppressionStore, WriteScope,
};
use crate::record::AddressRecord;

/// The in-memory store never fails; this error type has no values.
#[derive(Debug, thiserror::Error)]
#[error("in-memory store error")]
pub enum InMemoryError {}

impl Retryable for InMemoryError {
    fn is_retryable(&self) -> bool {
        false
    }
}

#[derive(Debug, Default)]
struct State {
    records: HashMap<String, AddressRecord>,
    markers: HashSet<(String, String)>,
    history: Vec<(String, HistoryEntry)>,
    counters: HashMap<(String, String, CounterField), u64>,
}

/// A suppression store held in a mutex.
#[derive(Debug, Default)]
pub struct InMemorySuppressionStore {
    state: Mutex<State>,
}

impl InMemorySuppressionStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The record stored under a key (`address` or `*@domain`).
    pub fn record(&self, key: &str) -> Option<AddressRecord> {
        self.lock().records.get(key).cloned()
    }

    /// Every stored record, sorted by key.
    pub fn records(&self) -> Vec<AddressRecord> {
        let mut all: Vec<_> = self.lock().records.values().cloned().collect();
        all.sort_by(|a, b| a.target.cmp(&b.target));
        all
    }

    /// History entries of a key, in write order.
    pub fn history(&self, key: &str) -> Vec<HistoryEntry> {
        self.lock().history.iter().filter(|(k, _)| k == key).map(|(_, e)| e.clone()).collect()
    }

    /// A daily counter's value: identity, `YYYY-MM-DD`, field.
    pub fn counter(&self, identity: &str, day: &str, field: CounterField) -> u64 {
        self.lock()
            .counters
            .get(&(identity.to_owned(), day.to_owned(), field))
            .copied()
            .unwrap_or(0)
    }
}

impl SuppressionStore for InMemorySuppressionStore {
    type Error = InMemoryError;

    async fn load(
        &self,
        target: &SuppressionTarget,
    ) -> Result<Option<AddressRecord>, InMemoryError> {
        Ok(self.record(&target.key()))
    }

    async fn commit(&self, write: &EventWrite) -> Result<CommitOutcome, InMemoryError> {
        let mut state = self.lock();
        let scope_key = match &write.scope {
            WriteScope::Record { record, .. } => record.target.key(),
            WriteScope::Message { ses_message_id } => format!("MSG#{ses_message_id}"),
        };
        let marker = (scope_key.clone(), write.history.idempotency_key.clone());
        if state.markers.contains(&marker) {
            return Ok(CommitOutcome::Duplicate);
        }
        if let WriteScope::Record { record, expected_version } = &write.scope {
            let stored = state.records.get(&scope_key).map_or(0, |r| r.version);
            if stored != *expected_version {
                return Ok(CommitOutcome::Conflict);
            }
            state.records.insert(scope_key.clone(), (**record).clone());
        }
        state.markers.insert(marker);
        state.history.push((scope_key, write.history.clone()));
        if let Some(c) = &write.counter {
            let day = c.day.format("%Y-%m-%d").to_string();
            *state.counters.entry((c.identity.clone(), day, c.field)).or_default() +=
                u64::from(c.by);
        }
        Ok(CommitOutcome::Applied)
    }
}
