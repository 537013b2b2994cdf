//! Adapter for the SES account-level suppression list (SESv2 API).
//!
//! Owns the four list-management calls the project makes (`PutSuppressedDestination`,
//! `GetSuppressedDestination`, `DeleteSuppressedDestination`, `ListSuppressedDestinations`) and
//! the pacing SES demands of them: one request per second per account and region across every
//! call of one [`SesAccountList`] (and its clones), with bounded, jittered retries on throttling,
//! 5xx answers, timeouts and connection failures. Answers are values: an address that is not
//! listed is `None` or [`DeleteOutcome::NotFound`], not an error.
//!
//! The caller builds the `aws_sdk_sesv2::Client` (region, credentials, endpoint). The adapter
//! turns the SDK's own retries off for its calls, because it retries itself and an SDK retry
//! would bypass the rate limiter. It logs no addresses: at most the domain, at debug level.
//! It must not depend on the Lambda runtime or on other adapters.

mod error;
mod pace;

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::primitives::DateTime as AwsDateTime;
use aws_sdk_sesv2::types::SuppressionListReason;
use chrono::{DateTime, Utc};
use feedback_domain::ports::Retryable;
use feedback_domain::{AddressError, EmailAddress};
use tokio::time::Instant;
use tracing::{debug, instrument, warn};

pub use error::{Operation, SdkSource, SesListError};

use error::classify;
use pace::{Backoff, RateLimiter};

/// Why an address is on the SES account list (SES knows only these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SesReason {
    /// A hard bounce (`BOUNCE`).
    Bounce,
    /// A complaint (`COMPLAINT`).
    Complaint,
}

impl SesReason {
    /// The SES wire value: `BOUNCE` or `COMPLAINT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bounce => "BOUNCE",
            Self::Complaint => "COMPLAINT",
        }
    }

    fn to_sdk(self) -> SuppressionListReason {
        match self {
            Self::Bounce => SuppressionListReason::Bounce,
            Self::Complaint => SuppressionListReason::Complaint,
        }
    }

    fn from_sdk(reason: &SuppressionListReason) -> Option<Self> {
        match reason {
            SuppressionListReason::Bounce => Some(Self::Bounce),
            SuppressionListReason::Complaint => Some(Self::Complaint),
            _ => None,
        }
    }
}

/// One address on the SES account list.
///
/// `Debug` hides the local part; the address is personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address exactly as SES returned it. SES matches list entries exactly, so an entry
    /// that SES added itself may differ in case from the normalised [`EmailAddress`].
    pub address: String,
    /// Why it is listed.
    pub reason: SesReason,
    /// When SES added or last updated it.
    pub last_update: DateTime<Utc>,
}

impl Entry {
    /// The address normalised the way the rest of the project stores it.
    ///
    /// Fails when SES holds something that is not a single valid mailbox.
    pub fn normalized_address(&self) -> Result<EmailAddress, AddressError> {
        EmailAddress::parse(&self.address)
    }

    fn from_sdk(
        operation: Operation,
        address: &str,
        reason: &SuppressionListReason,
        last_update: &AwsDateTime,
    ) -> Result<Self, SesListError> {
        if address.is_empty() {
            return Err(SesListError::UnexpectedAnswer { operation, problem: "empty address" });
        }
        let reason = SesReason::from_sdk(reason)
            .ok_or(SesListError::UnexpectedAnswer { operation, problem: "unknown reason" })?;
        let last_update = rounded_to_millis(last_update).ok_or(SesListError::UnexpectedAnswer {
            operation,
            problem: "timestamp out of range",
        })?;
        Ok(Self { address: address.to_owned(), reason, last_update })
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.address.rsplit_once('@').map_or("", |(_, domain)| domain);
        f.debug_struct("Entry")
            .field("address", &format_args!("<redacted>@{domain}"))
            .field("reason", &self.reason)
            .field("last_update", &self.last_update)
            .finish()
    }
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The entries on this page.
    pub entries: Vec<Entry>,
    /// Pass to the next [`SesAccountList::list_page`] call; `None` on the last page.
    pub next_token: Option<String>,
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The address was listed and is now removed.
    Deleted,
    /// The address was not listed (exact match): nothing changed.
    NotFound,
}

/// Pacing and retry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesAccountListConfig {
    /// Least time between the starts of two requests of one adapter. SES allows one request per
    /// second per account and region; zero turns the limiter off.
    pub min_interval: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: NonZeroU32,
    /// Backoff ceiling after the first failed attempt; it doubles with each further failure.
    pub initial_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
}

impl Default for SesAccountListConfig {
    /// One request per second, five attempts, backoff from 1 s up to 20 s.
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(1),
            max_attempts: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// The SES account-level suppression list of one account and region.
///
/// Clones share the rate limiter, so every clone together stays within
/// [`SesAccountListConfig::min_interval`].
#[derive(Debug, Clone)]
pub struct SesAccountList {
    client: Client,
    limiter: Arc<RateLimiter>,
    max_attempts: NonZeroU32,
    backoff: Backoff,
}

impl SesAccountList {
    /// An adapter over `client`, paced by `config`.
    pub fn new(client: Client, config: SesAccountListConfig) -> Self {
        Self {
            client,
            limiter: Arc::new(RateLimiter::new(config.min_interval)),
            max_attempts: config.max_attempts,
            backoff: Backoff { initial: config.initial_backoff, max: config.max_backoff },
        }
    }

    /// Lists `address` (or updates its reason and time if it is listed already).
    ///
    /// Fails with [`SesListError`] when SES rejects the request or every attempt failed.
    #[instrument(skip_all, fields(domain = address.domain(), reason = reason.as_str()))]
    pub async fn put(&self, address: &EmailAddress, reason: SesReason) -> Result<(), SesListError> {
        let operation = Operation::Put;
        self.call(operation, || async {
            self.client
                .put_suppressed_destination()
                .email_address(address.as_str())
                .reason(reason.to_sdk())
                .customize()
                .config_override(without_sdk_retries())
                .send()
                .await
                .map(|_| ())
                .map_err(|error| classify(operation, error))
        })
        .await
    }

    /// The entry stored under exactly `address`, or `None` when it is not listed.
    ///
    /// Fails with [`SesListError`] when SES rejects the request, every attempt failed, or the
    /// answer is unusable.
    #[instrument(skip_all, fields(domain = address.domain()))]
    pub async fn get(&self, address: &EmailAddress) -> Result<Option<Entry>, SesListError> {
        let operation = Operation::Get;
        self.call(operation, || async {
            let result = self
                .client
                .get_suppressed_destination()
                .email_address(address.as_str())
                .customize()
                .config_override(without_sdk_retries())
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                Err(error)
                    if error.as_service_error().is_some_and(|e| e.is_not_found_exception()) =>
                {
                    return Ok(None);
                }
                Err(error) => return Err(classify(operation, error)),
            };
            let destination =
                output.suppressed_destination().ok_or(SesListError::UnexpectedAnswer {
                    operation,
                    problem: "no SuppressedDestination",
                })?;
            Entry::from_sdk(
                operation,
                destination.email_address(),
                destination.reason(),
                destination.last_update_time(),
            )
            .map(Some)
        })
        .await
    }

    /// Removes exactly `address` from the list.
    ///
    /// Fails with [`SesListError`] when SES rejects the request or every attempt failed.
    #[instrument(skip_all, fields(domain = address.domain()))]
    pub async fn delete(&self, address: &EmailAddress) -> Result<DeleteOutcome, SesListError> {
        self.delete_raw(address.as_str()).await
    }

    /// Removes an entry as SES listed it, for entries whose address is not in normalised form
    /// (SES matches exactly, so [`SesAccountList::delete`] of the normalised address would miss).
    ///
    /// Fails with [`SesListError`] when SES rejects the request or every attempt failed.
    #[instrument(skip_all)]
    pub async fn delete_entry(&self, entry: &Entry) -> Result<DeleteOutcome, SesListError> {
        self.delete_raw(&entry.address).await
    }

    async fn delete_raw(&self, address: &str) -> Result<DeleteOutcome, SesListError> {
        let operation = Operation::Delete;
        self.call(operation, || async {
            let result = self
                .client
                .delete_suppressed_destination()
                .email_address(address)
                .customize()
                .config_override(without_sdk_retries())
                .send()
                .await;
            match result {
                Ok(_) => Ok(DeleteOutcome::Deleted),
                Err(error)
                    if error.as_service_error().is_some_and(|e| e.is_not_found_exception()) =>
                {
                    Ok(DeleteOutcome::NotFound)
                }
                Err(error) => Err(classify(operation, error)),
            }
        })
        .await
    }

    /// One page of at most `page_size` entries, starting where `token` (from the previous page)
    /// points, or at the start for `None`.
    ///
    /// Fails with [`SesListError::InvalidNextToken`] for a token SES does not accept (start
    /// again), with [`SesListError::BadRequest`] for a page size SES refuses, and otherwise as
    /// the other calls do.
    #[instrument(skip_all, fields(page_size = page_size))]
    pub async fn list_page(
        &self,
        token: Option<String>,
        page_size: u16,
    ) -> Result<Page, SesListError> {
        let operation = Operation::List;
        self.call(operation, || async {
            let output = self
                .client
                .list_suppressed_destinations()
                .set_next_token(token.clone())
                .page_size(i32::from(page_size))
                .customize()
                .config_override(without_sdk_retries())
                .send()
                .await
                .map_err(|error| classify(operation, error))?;
            let entries = output
                .suppressed_destination_summaries()
                .iter()
                .map(|summary| {
                    Entry::from_sdk(
                        operation,
                        summary.email_address(),
                        summary.reason(),
                        summary.last_update_time(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let next_token = output.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
            Ok(Page { entries, next_token })
        })
        .await
    }

    /// Runs `attempt_once` after waiting for the limiter, retrying retryable failures with
    /// backoff until `max_attempts` is used up.
    async fn call<T, F, Fut>(
        &self,
        operation: Operation,
        mut attempt_once: F,
    ) -> Result<T, SesListError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SesListError>>,
    {
        let mut attempt = 1;
        loop {
            self.limiter.wait_turn().await;
            let started = Instant::now();
            let result = attempt_once().await;
            let elapsed_ms = millis(started.elapsed());
            match result {
                Ok(value) => {
                    debug!(operation = %operation, attempt, elapsed_ms, "ses call succeeded");
                    return Ok(value);
                }
                Err(error) if error.is_retryable() && attempt < self.max_attempts.get() => {
                    let delay = self.backoff.delay(attempt);
                    warn!(
                        operation = %operation,
                        attempt,
                        kind = error.kind(),
                        delay_ms = millis(delay),
                        "ses call failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => {
                    debug!(operation = %operation, attempt, elapsed_ms, kind = error.kind(), "ses call failed");
                    return Err(error);
                }
            }
        }
    }
}

/// Per-call override that turns the SDK's retries off: the adapter retries itself, through its
/// limiter.
fn without_sdk_retries() -> aws_sdk_sesv2::config::Builder {
    aws_sdk_sesv2::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// SES keeps milliseconds and sends them as fractional epoch seconds, which the SDK parses through
/// an `f64`: rounding to the millisecond removes the float noise (`.220` arrives as `.220000028`).
fn rounded_to_millis(at: &AwsDateTime) -> Option<DateTime<Utc>> {
    let subsec_millis = (at.subsec_nanos() + 500_000) / 1_000_000;
    let millis = at.secs().checked_mul(1000)?.checked_add(i64::from(subsec_millis))?;
    DateTime::from_timestamp_millis(millis)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_debug_hides_the_local_part() {
        let entry = Entry {
            address: "Secret.Person@Example.com".into(),
            reason: SesReason::Bounce,
            last_update: DateTime::from_timestamp(0, 0).unwrap(),
        };

        let shown = format!("{entry:?}");

        assert!(!shown.contains("Secret"), "{shown}");
        assert!(shown.contains("<redacted>@Example.com"), "{shown}");
    }

    #[test]
    fn entries_convert_from_sdk_values_and_reject_unknown_reasons() {
        let at = AwsDateTime::from_secs_f64(1_733_241_600.220);

        let entry = Entry::from_sdk(
            Operation::Get,
            "a@example.com",
            &SuppressionListReason::Complaint,
            &at,
        )
        .unwrap();
        let unknown = Entry::from_sdk(
            Operation::List,
            "a@example.com",
            &SuppressionListReason::from("SOMETHING_NEW"),
            &at,
        );
        let empty = Entry::from_sdk(Operation::List, "", &SuppressionListReason::Bounce, &at);

        assert_eq!(entry.reason, SesReason::Complaint);
        assert_eq!(entry.last_update.timestamp_millis(), 1_733_241_600_220);
        assert!(matches!(unknown, Err(SesListError::UnexpectedAnswer { .. })));
        assert!(matches!(empty, Err(SesListError::UnexpectedAnswer { .. })));
    }

    #[test]
    fn entries_normalise_to_the_stored_form() {
        let entry = Entry {
            address: "Annoyed@Example.COM".into(),
            reason: SesReason::Complaint,
            last_update: DateTime::from_timestamp(0, 0).unwrap(),
        };

        assert_eq!(entry.normalized_address().unwrap().as_str(), "annoyed@example.com");
    }
}
