//! AWS plumbing of the tool: the shared SDK configuration from the global flags, the clients,
//! and the advice printed under an error (missing credentials, missing table, wrong region).
//!
//! Only this module and the command modules that call a service know the SDK; the advice is
//! derived from error codes, never from addresses.

use std::error::Error as StdError;

use anyhow::{Context as _, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use ses_account_list::SesListError;
use suppression_store::{DynamoDbSuppressionStore, StoreError, StoreSettings};

use crate::args::GlobalArgs;

/// Loads the SDK configuration: flags first, then the usual environment and config files.
///
/// Fails when no region can be found.
pub async fn sdk_config(global: &GlobalArgs) -> anyhow::Result<SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(profile) = &global.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = &global.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        bail!(
            "no AWS region: pass --region or set AWS_REGION to the region of the suppression table"
        );
    }
    Ok(config)
}

/// The table name from `--table` / `SUPPRESSION_TABLE`.
///
/// Fails when neither is set.
pub fn table_name(global: &GlobalArgs) -> anyhow::Result<&str> {
    global
        .table
        .as_deref()
        .filter(|t| !t.is_empty())
        .context("no table given: pass --table or set SUPPRESSION_TABLE")
}

/// The store over the configured table.
///
/// Fails when the region or the table name is missing.
pub async fn store(global: &GlobalArgs) -> anyhow::Result<DynamoDbSuppressionStore> {
    let table = table_name(global)?.to_owned();
    let config = sdk_config(global).await?;
    let client = aws_sdk_dynamodb::Client::new(&config);
    Ok(DynamoDbSuppressionStore::new(client, table, StoreSettings::default()))
}

/// A failed AWS call outside the store and the SES adapter (SQS), with the service's error code
/// kept for the advice.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed ({})", code.as_deref().unwrap_or("no response"))]
pub struct AwsCallError {
    /// E.g. `sqs ReceiveMessage`.
    pub operation: &'static str,
    /// The service's error code, if it answered.
    pub code: Option<String>,
    /// The SDK error.
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl AwsCallError {
    /// Wraps an SDK error of any service.
    pub fn new<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.as_service_error().and_then(|e| e.code()).map(str::to_owned);
        Self { operation, code, source: Box::new(err) }
    }
}

/// [`describe`] of a failed SDK call of any service, named by `operation` (`sqs
/// GetQueueAttributes`): for reports that carry the failure as text.
pub fn describe_call<E, R>(operation: &'static str, err: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    describe(&anyhow::Error::from(AwsCallError::new(operation, err)))
}

/// The error for the terminal: the tool's own context down to the first adapter error (which
/// names the call and the service's code), then the root cause as the service worded it.
pub fn describe(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        let adapter = cause.downcast_ref::<StoreError>().is_some()
            || cause.downcast_ref::<AwsCallError>().is_some()
            || cause.downcast_ref::<SesListError>().is_some();
        if adapter {
            break;
        }
    }
    if let Some(root) = err.chain().last().map(ToString::to_string)
        && !parts.iter().any(|p| p.contains(&root))
    {
        parts.push(root);
    }
    parts.join(": ")
}

/// What the operator can do about an error, if the tool can tell.
pub fn advice(err: &anyhow::Error, global: &GlobalArgs) -> Option<String> {
    let region = global.region.as_deref().unwrap_or("the configured region");
    let table = global.table.as_deref().unwrap_or("the table");
    let code = err.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            e.code().map(str::to_owned)
        } else if let Some(e) = cause.downcast_ref::<AwsCallError>() {
            e.code.clone()
        } else {
            None
        }
    });
    let text: String = err.chain().map(|c| format!("{c} | {c:?}")).collect();
    match code.as_deref() {
        Some("ResourceNotFoundException") => Some(format!(
            "table {table} was not found in {region}: run `suppressions table create` or check \
             --table/--region"
        )),
        Some("ResourceInUseException") => {
            Some(format!("table {table} exists already in {region}: nothing to create"))
        }
        Some(
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "ExpiredToken",
        ) => Some(format!(
            "AWS rejected the credentials: refresh them (e.g. `aws sso login`), check --profile, \
             and that {region} is the right region"
        )),
        Some("AccessDeniedException" | "AccessDenied") => Some(
            "the credentials lack a permission for this call: use a role that may read and \
             write the table and queues"
                .to_owned(),
        ),
        Some(
            "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist" | "NonExistentQueue",
        ) => Some(format!(
            "the queue does not exist in {region}: check the queue URL flags and --region"
        )),
        Some(_) => None,
        None if text.contains("credentials") => Some(
            "no AWS credentials found: pass --profile or set AWS_PROFILE, or set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .to_owned(),
        ),
        None if text.contains("dispatch failure") || text.contains("ConnectorError") => {
            Some(match &global.endpoint_url {
                Some(url) => format!("could not reach {url}: is the endpoint running?"),
                None => format!("could not reach AWS in {region}: check --region and the network"),
            })
        }
        None if err.chain().any(|c| c.downcast_ref::<SesListError>().is_some()) => Some(
            "the SES call failed: check --region (the SES account list is per region) and \
             the credentials; a rerun of the import continues where it stopped"
                .to_owned(),
        ),
        None => None,
    }
}
