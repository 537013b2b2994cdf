//! Lambda entry point of `sync-mailcow`: reads the configuration and the Mailcow API key once,
//! builds the clients once, then serves stream batches and scheduled runs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use ses_account_list::{SesAccountList, SesAccountListConfig};
use suppression_store::{DynamoDbSuppressionStore, StoreSettings};
use sync_mailcow::adapters::{self, DynamoDbSyncSource, MailcowBlocklist};
use sync_mailcow::handler::DEFAULT_AUTH_BACKOFF;
use sync_mailcow::{ApiKeySource, Config, Handler, HandlerSettings};
use tracing::warn;

/// Time kept free at the end of an invocation for the sync state write and the response.
const FINISH_MARGIN: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_logging();
    let config = Config::from_env()?;
    if !config.hash_key_set {
        warn!("ADDRESS_HASH_KEY is not set: log hashes use the public default key");
    }

    let aws = aws_config::load_from_env().await;
    let api_key = match &config.api_key {
        ApiKeySource::Inline(key) => key.clone(),
        ApiKeySource::Secret(id) => {
            adapters::read_api_key(&aws_sdk_secretsmanager::Client::new(&aws), id).await?
        }
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let store = DynamoDbSuppressionStore::new(dynamodb, &config.table, StoreSettings::default());
    let handler = Arc::new(Handler {
        source: DynamoDbSyncSource::new(store),
        blocklist: MailcowBlocklist::new(adapters::mailcow_client(&config, api_key)?),
        account_list: config.ses_sync.then(|| {
            let pacing = SesAccountListConfig {
                min_interval: config.ses_min_interval,
                ..SesAccountListConfig::default()
            };
            SesAccountList::new(aws_sdk_sesv2::Client::new(&aws), pacing)
        }),
        settings: HandlerSettings {
            mode: config.mode,
            auth_backoff: DEFAULT_AUTH_BACKOFF,
            hasher: config.hasher.clone(),
        },
        metrics: telemetry::MetricsSink::new(&config.service_name, &config.function_name)?,
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = Arc::clone(&handler);
        let left = event.context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
        let budget = config.ses_budget.min(left.saturating_sub(FINISH_MARGIN));
        async move {
            let deadline = tokio::time::Instant::now() + budget;
            let result = handler.handle_event(event.payload, chrono::Utc::now(), deadline).await;
            if let Err(e) = handler.metrics.flush() {
                warn!(error = %e, "metrics could not be written");
            }
            result.map_err(Error::from)
        }
    }))
    .await
}
