//! Shared helpers of the black-box tests: run the built `suppressions` binary against moto
//! (`MOTO_ENDPOINT`, started by `scripts/test`) with a clean environment and a table of its own,
//! and read the table directly to check what the binary wrote.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::Stdio;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use feedback_domain::policy::{self, ManualSuppression};
use feedback_domain::ports::{
    CommitOutcome, EventWrite, HistoryEntry, SuppressionStore, WriteScope,
};
use feedback_domain::{SuppressionReason, SuppressionTarget};
use suppression_store::{DynamoDbSuppressionStore, StoreSettings};
use tokio::io::AsyncWriteExt;

/// The moto endpoint; the tests fail (never skip) without it.
pub fn moto() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!("MOTO_ENDPOINT is not set: run the tests through scripts/test, which starts moto")
    })
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as one JSON value per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// A table of one test, and the environment the binary runs in.
#[derive(Debug, Clone)]
pub struct Env {
    /// The table name.
    pub table: String,
    /// moto's URL.
    pub endpoint: String,
    /// Extra environment variables for the binary.
    pub vars: Vec<(String, String)>,
    /// Variables of the default environment to leave out.
    pub unset: Vec<&'static str>,
}

impl Env {
    /// A fresh table name; the table is not created.
    pub fn new(prefix: &str) -> Self {
        Self {
            table: format!("cli-{prefix}-{}", fastrand::u64(..)),
            endpoint: moto(),
            vars: Vec::new(),
            unset: Vec::new(),
        }
    }

    /// A fresh table, created by `suppressions table create`.
    pub async fn with_table(prefix: &str) -> Self {
        let env = Self::new(prefix);
        env.run(&["table", "create"]).await.expect(0);
        env
    }

    /// Runs the binary with `args`.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, None).await
    }

    /// Runs the binary with `args`, feeding `input` on stdin.
    pub async fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_suppressions"));
        command
            .args(args)
            .env_clear()
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "eu-central-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
            .env("SUPPRESSION_TABLE", &self.table)
            .env("USER", "tester")
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for name in &self.unset {
            command.env_remove(name);
        }
        command
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(input) = input {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).await.unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// An SDK configuration for moto.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("eu-central-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .load()
            .await
    }

    /// A DynamoDB client for moto.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk().await)
    }

    /// The store over the test's table.
    pub async fn store(&self) -> DynamoDbSuppressionStore {
        DynamoDbSuppressionStore::new(self.dynamodb().await, &self.table, StoreSettings::default())
    }

    /// Every item under `ADDR#<key>`.
    pub async fn items_of(&self, key: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.dynamodb()
            .await
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ADDR#{key}")))
            .send()
            .await
            .unwrap()
            .items()
            .to_vec()
    }

    /// Stores a suppression directly (not through the binary), as feedback would have.
    pub async fn seed(
        &self,
        key: &str,
        reason: SuppressionReason,
        at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let store = self.store().await;
        let target = SuppressionTarget::parse(key).unwrap();
        let prior = store.load(&target).await.unwrap();
        let request = ManualSuppression { reason, expires_at, source: "policy".into(), note: None };
        let (decision, record) = policy::suppress_manually(prior.as_ref(), &target, &request, at);
        let write = EventWrite {
            scope: WriteScope::Record {
                record: Box::new(record),
                expected_version: prior.map_or(0, |p| p.version),
            },
            history: HistoryEntry {
                idempotency_key: format!("seed:{}", at.timestamp_millis()),
                event_type: "bounce".into(),
                sub_type: None,
                at,
                feedback_id: Some(format!("fb-{key}")),
                ses_message_id: None,
                outcome: decision.outcome().into(),
                diagnostic_code: None,
                expires_at: None,
            },
            counter: None,
        };
        assert_eq!(store.commit(&write).await.unwrap(), CommitOutcome::Applied);
    }
}
