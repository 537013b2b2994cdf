//! The cold-start floor: what any Rust Lambda of this shape pays before its first event. It loads
//! the AWS configuration, builds the SDK clients the two functions build (DynamoDB, SQS and SNS
//! for ingest; SES v2 for sync), then answers every event with an empty object.
//!
//! `bench/cold-start` times it next to `ingest-feedback` and `sync-mailcow`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let aws = aws_config::load_from_env().await;
    let clients = (
        aws_sdk_dynamodb::Client::new(&aws),
        aws_sdk_sqs::Client::new(&aws),
        aws_sdk_sns::Client::new(&aws),
        aws_sdk_sesv2::Client::new(&aws),
    );

    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        // Held by the handler as a real function holds its clients, so none is optimised away.
        let _clients = &clients;
        async move { Ok::<Value, Error>(Value::Object(serde_json::Map::new())) }
    }))
    .await
}
