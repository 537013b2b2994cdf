//! What the end-to-end and load tests share: the workspace binaries they run, the variables
//! scripts/test sets, and the stack configuration around the simulators they start.
#![allow(clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use local_stack::runtime::binaries_next_to;
use local_stack::stack::StackConfig;

/// The directory of the workspace binaries, after checking that the ones the stack runs are
/// there.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = binaries_next_to(&exe).expect("the test executable lives in target/<profile>/deps");
    for binary in ["ingest-feedback", "sync-mailcow", "mailcow-sim", "ses-suppression-sim"] {
        assert!(
            dir.join(binary).is_file(),
            "{binary} is missing from {}: `cargo test --workspace` builds every workspace binary \
             before running tests; with `-p local-stack` alone run `cargo build --workspace` first",
            dir.display()
        );
    }
    dir
}

/// A variable scripts/test sets; the message says so when it is missing.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run this test through scripts/test, which sets it")
    })
}

/// The stack of one test run: a stack name of its own (one moto serves every test of the
/// workspace), logs under `target/<profile>/local-stack-logs/<stack>`.
pub struct Run {
    /// The configuration to start the stack with.
    pub config: StackConfig,
    /// Where the functions' logs go.
    pub log_dir: PathBuf,
}

/// The configuration for a run named `prefix-<random>` against these endpoints and simulators.
pub fn run(
    prefix: &str,
    dynamodb_endpoint: String,
    mailcow: (&str, &str),
    ses_url: &str,
    hash_key: &str,
    sync_environment: BTreeMap<String, String>,
) -> Run {
    let bin_dir = bin_dir();
    let stack_name = format!("{prefix}-{:08x}", fastrand::u32(..));
    let log_dir = bin_dir.join("local-stack-logs").join(&stack_name);
    let config = StackConfig {
        moto_endpoint: env("MOTO_ENDPOINT"),
        dynamodb_endpoint,
        mailcow_url: mailcow.0.to_owned(),
        mailcow_key: mailcow.1.to_owned(),
        ses_url: ses_url.to_owned(),
        bin_dir,
        template: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml"),
        stack_name,
        region: "eu-central-1".to_owned(),
        log_dir: log_dir.clone(),
        hash_key: hash_key.to_owned(),
        sync_environment,
    };
    Run { config, log_dir }
}
