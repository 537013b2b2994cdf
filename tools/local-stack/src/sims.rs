//! Starting the simulator binaries (`mailcow-sim`, `ses-suppression-sim`) and driving them over
//! their HTTP control routes: faults, the stored map, "would Mailcow reject mail to X", the SES
//! list. Nothing here links the simulators' library: the demo and the test use the same binaries
//! and routes an operator could call with curl.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A simulator process and its base URL. The process is killed when this is dropped.
pub struct SimProcess {
    /// Base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    child: Child,
}

impl SimProcess {
    /// Stops the process.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

async fn spawn_and_read_url(mut command: Command, name: &str) -> anyhow::Result<SimProcess> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    let mut child = command.spawn().with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("{name}: no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .with_context(|| format!("{name} did not print its address in 20 s"))??
        .ok_or_else(|| anyhow!("{name} exited before printing its address"))?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| anyhow!("{name} printed no URL: {line:?}"))?
        .to_owned();
    // Keep reading stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(SimProcess { url, child })
}

/// Starts `mailcow-sim` on a free loopback port with `key` as its read-write API key.
///
/// Fails when the binary is missing or does not start.
pub async fn start_mailcow(bin_dir: &Path, key: &str) -> anyhow::Result<SimProcess> {
    let binary = bin_dir.join("mailcow-sim");
    if !binary.is_file() {
        bail!(
            "{} not found: build the workspace first (cargo build --workspace)",
            binary.display()
        );
    }
    let mut command = Command::new(binary);
    command.arg("--port").arg("0").env("MAILCOW_SIM_RW_KEY", key);
    spawn_and_read_url(command, "mailcow-sim").await
}

/// Starts `ses-suppression-sim` on a free loopback port. `interval_ms` 0 turns its throttle off.
///
/// Fails when the binary is missing or does not start.
pub async fn start_ses(bin_dir: &Path, interval_ms: u64) -> anyhow::Result<SimProcess> {
    let binary = bin_dir.join("ses-suppression-sim");
    if !binary.is_file() {
        bail!(
            "{} not found: build the workspace first (cargo build --workspace)",
            binary.display()
        );
    }
    let mut command = Command::new(binary);
    command.arg("--port").arg("0").arg("--interval-ms").arg(interval_ms.to_string());
    spawn_and_read_url(command, "ses-suppression-sim").await
}

/// The Mailcow simulator's control routes.
#[derive(Debug, Clone)]
pub struct MailcowControl {
    http: reqwest::Client,
    url: String,
}

impl MailcowControl {
    /// Controls for the simulator at `url`.
    pub fn new(url: &str) -> Self {
        Self { http: reqwest::Client::new(), url: url.trim_end_matches('/').to_owned() }
    }

    /// Arms one of the simulator's faults on every API request until [`MailcowControl::heal`]:
    /// `{"fault": "danger"}`, `{"fault": "slow", "millis": 3000}`, ... (replacing any armed one).
    ///
    /// Fails when the simulator does not accept the control call.
    pub async fn fail_with(&self, fault: Value) -> anyhow::Result<()> {
        let reply = self.http.post(format!("{}/sim/fault", self.url)).json(&fault).send().await?;
        if !reply.status().is_success() {
            bail!("mailcow-sim refused the fault {fault}: HTTP {}", reply.status());
        }
        Ok(())
    }

    /// Takes the caller's address off (or back onto) Mailcow's API allow-list: while off, every
    /// request is refused as with a wrong key (HTTP 401) and counts toward fail2ban.
    ///
    /// Fails when the simulator does not accept the control call.
    pub async fn allow_caller(&self, allowed: bool) -> anyhow::Result<()> {
        self.http
            .post(format!("{}/sim/ip-allowed", self.url))
            .json(&json!({ "allowed": allowed }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Disarms the fault.
    ///
    /// Fails when the simulator does not accept the control call.
    pub async fn heal(&self) -> anyhow::Result<()> {
        self.http.delete(format!("{}/sim/fault", self.url)).send().await?.error_for_status()?;
        Ok(())
    }

    /// The simulator's state: maps, rules, request counts.
    ///
    /// Fails when the simulator does not answer.
    pub async fn state(&self) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("{}/sim/state", self.url)).send().await?.json().await?)
    }

    /// The recipient denylist map as Mailcow stored it (one entry per line).
    ///
    /// Fails when the simulator does not answer.
    pub async fn denylist_map(&self) -> anyhow::Result<String> {
        let state = self.state().await?;
        let map = state
            .get("maps")
            .and_then(|m| m.get("global_rcpt_blacklist.map"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(map.to_owned())
    }

    /// Whether Rspamd, as configured by what Mailcow received, rejects mail to `address`.
    ///
    /// Fails when the simulator does not answer.
    pub async fn would_reject(&self, address: &str) -> anyhow::Result<bool> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/sim/would-reject", self.url),
            &[("rcpt", address)],
        )?;
        // The URL carries the address: errors leave it out.
        let reply: Value = self
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(reqwest::Error::without_url)?
            .json()
            .await
            .map_err(reqwest::Error::without_url)?;
        reply
            .get("reject")
            .and_then(Value::as_bool)
            .ok_or_else(|| anyhow!("no `reject` in {reply}"))
    }
}

/// The SES simulator's account list: address -> reason (`BOUNCE` or `COMPLAINT`).
///
/// Fails when the simulator does not answer.
pub async fn ses_entries(url: &str) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let reply: Value = reqwest::get(format!("{}/_sim/entries", url.trim_end_matches('/')))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let list = reply
        .as_array()
        .or_else(|| reply.get("entries").and_then(Value::as_array))
        .ok_or_else(|| anyhow!("unexpected /_sim/entries answer"))?;
    Ok(list
        .iter()
        .filter_map(|e| {
            let address = e.get("email_address").or_else(|| e.get("EmailAddress"))?.as_str()?;
            let reason = e.get("reason").or_else(|| e.get("Reason"))?.as_str()?;
            Some((address.to_owned(), reason.to_owned()))
        })
        .collect())
}

/// The SES simulator's request counters (`/_sim/stats`): `requests`, `throttled`, `failed`,
/// `put`, `get`, `list`, `delete`.
///
/// Fails when the simulator does not answer.
pub async fn ses_stats(url: &str) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
    let reply: Value = reqwest::get(format!("{}/_sim/stats", url.trim_end_matches('/')))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let object = reply.as_object().ok_or_else(|| anyhow!("unexpected /_sim/stats answer"))?;
    Ok(object.iter().filter_map(|(k, v)| Some((k.clone(), v.as_u64()?))).collect())
}
