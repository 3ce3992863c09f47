//! The real `taxiway-operator` binary as a child process, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::support::{eventually, free_port, http_get};

/// Lease timings short enough for a failover test.
pub const LEASE_SECONDS: u64 = 4;

/// A running operator.
pub struct OperatorProcess {
    child: Child,
    /// Its `--identity`.
    pub identity: String,
    /// Admin listener (`127.0.0.1:PORT`).
    pub admin: String,
    /// Its log file.
    pub log: PathBuf,
}

impl OperatorProcess {
    /// Start one with `kubeconfig`, its log in `dir`, and wait until `/readyz` answers 200
    /// (leading with caches synced, or standing by).
    pub async fn start(kubeconfig: &Path, dir: &Path, identity: &str) -> Result<OperatorProcess> {
        let admin = format!("127.0.0.1:{}", free_port()?);
        let log = dir.join(format!("operator-{identity}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_taxiway-operator"))
            .arg("run")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--admin-listen={admin}"))
            .arg("--lease-namespace=taxiway-system")
            .arg(format!("--lease-duration-seconds={LEASE_SECONDS}"))
            .arg("--lease-renew-seconds=1")
            .arg(format!("--identity={identity}"))
            .arg("--server-image=taxiway-server:test")
            .arg(format!(
                "--allowed-image-prefixes={}",
                crate::scenarios::ALLOWED_IMAGE_PREFIX
            ))
            .env("TAXIWAY_LOG", "info,taxiway_operator=debug")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting taxiway-operator")?;
        let mut operator = OperatorProcess {
            child,
            identity: identity.to_string(),
            admin,
            log,
        };
        let admin = operator.admin.clone();
        let ready = eventually("the operator's /readyz", Duration::from_secs(30), || {
            let admin = admin.clone();
            async move {
                let (status, body) = http_get(&admin, "/readyz").await?;
                anyhow::ensure!(status == 200, "{status} {body}");
                Ok(())
            }
        })
        .await;
        if let Err(e) = ready {
            operator.stop();
            return Err(e.context(format!("log: {}", operator.log.display())));
        }
        Ok(operator)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(http_get(&self.admin, "/metrics").await?.1)
    }

    /// The value of a metric line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> Result<f64> {
        let text = self.metrics().await?;
        Ok(text
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0))
    }

    /// The sum of every series of a metric family (e.g. all kinds of writes).
    pub async fn metric_sum(&self, family: &str) -> Result<f64> {
        let text = self.metrics().await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(family) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Kill it (SIGKILL: no Lease release, like a crashed node).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stop it with SIGTERM (graceful: the Lease is released) and wait.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
    }

    /// The last lines of its log.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
