//! Lambda entry point of `ingest-feedback`: reads the configuration once, builds the clients
//! once, then serves SQS batches.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use ingest_feedback::adapters::{SnsAuthenticator, SnsConfirmer, SqsQuarantine};
use ingest_feedback::{Config, Handler, HandlerSettings};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sns_verify::{Certificate, CertificateStore, ReqwestFetcher, Verifier};
use suppression_store::{DynamoDbSuppressionStore, StoreSettings};
use tracing::warn;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_logging();
    let config = Config::from_env()?;
    if !config.hash_key_set {
        warn!("ADDRESS_HASH_KEY is not set: log hashes use the public default key");
    }

    let aws = aws_config::load_from_env().await;
    let store = DynamoDbSuppressionStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        config.table.clone(),
        StoreSettings { record_retention: config.history_retention },
    );
    let quarantine =
        SqsQuarantine::new(aws_sdk_sqs::Client::new(&aws), config.quarantine_queue_url.clone());
    let authenticator = if config.allowed_topic_arns.is_empty() {
        None
    } else {
        let mut certs =
            CertificateStore::new(ReqwestFetcher::new(sns_verify::DEFAULT_FETCH_TIMEOUT));
        if let Some(bundle) = &config.sns_cert_bundle {
            certs = certs.with_pinned(Certificate::load_bundle(std::path::Path::new(bundle))?);
        }
        Some(SnsAuthenticator::new(Verifier::new(
            Arc::new(certs),
            config.allowed_topic_arns.clone(),
        )?))
    };
    let confirmer = config
        .auto_confirm_subscriptions
        .then(|| SnsConfirmer::new(aws_sdk_sns::Client::new(&aws)));
    let function_name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "ingest-feedback".to_owned());
    let handler = Arc::new(Handler {
        store,
        quarantine,
        authenticator,
        confirmer,
        // The Service dimension defaults to the function's own name: the template's alarms and
        // dashboard select the ingest series by it.
        metrics: telemetry::MetricsSink::new(
            std::env::var("SERVICE_NAME").unwrap_or_else(|_| function_name.clone()),
            function_name,
        )?,
        settings: HandlerSettings {
            policy: config.policy.clone(),
            retention: config.history_retention,
            hasher: config.hasher.clone(),
            require_signature: config.require_signature,
            auto_confirm_subscriptions: config.auto_confirm_subscriptions,
        },
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        async move {
            let (response, outcomes) = handler.handle_batch(&event.payload).await;
            drop(outcomes);
            if let Err(e) = handler.metrics.flush() {
                warn!(error = %e, "metrics could not be written");
            }
            Ok::<SqsBatchResponse, Error>(response)
        }
    }))
    .await
}
