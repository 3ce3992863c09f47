//! A real kube-apiserver + etcd + kube-controller-manager, started with
//! tests/k8s/apiserver.sh and stopped on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

/// A running control plane.
pub struct Cluster {
    dir: PathBuf,
    script: PathBuf,
    /// `KEY=VALUE` lines of `DIR/env` (KUBE_APISERVER_URL, KUBE_CA_FILE, ...).
    pub env: HashMap<String, String>,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// Start one in `dir`, preloading `manifests` (the CRDs, so the garbage collector
    /// knows their kinds from the start).
    pub fn start(repo: &Path, dir: &Path, manifests: &[PathBuf]) -> Result<Cluster> {
        let script = repo.join("tests/k8s/apiserver.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(dir)
            .args(manifests)
            .output()
            .context("running tests/k8s/apiserver.sh")?;
        if !output.status.success() {
            bail!(
                "apiserver.sh start failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let cluster_dir = dir.canonicalize()?;
        let env_text = std::fs::read_to_string(cluster_dir.join("env"))?;
        let env = env_text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(Cluster {
            kubeconfig: cluster_dir.join("kubeconfig"),
            dir: cluster_dir,
            script,
            env,
        })
    }

    /// An admin client.
    pub async fn client(&self) -> Result<Client> {
        client_for(&self.kubeconfig).await
    }

    /// Write a kubeconfig authenticating with `token` (e.g. a ServiceAccount's).
    pub fn kubeconfig_for_token(&self, path: &Path, token: &str) -> Result<()> {
        let server = &self.env["KUBE_APISERVER_URL"];
        let ca = &self.env["KUBE_CA_FILE"];
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context:\n    cluster: test\n    user: sa\ncurrent-context: sa\n"
        );
        std::fs::write(path, text)?;
        Ok(())
    }

    /// Where component logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// A client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> Result<Client> {
    let file = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}
