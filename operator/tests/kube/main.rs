//! The operator against a real Kubernetes 1.20 control plane (kube-apiserver, etcd,
//! kube-controller-manager) started by this test, with the real operator binary running
//! as its own least-privilege ServiceAccount, and the real server binary for the data
//! path.
//!
//! Skipped unless `TAXIWAY_KUBE_TESTS=1` (it needs the binaries that
//! tests/k8s/provision.sh builds); `tests/run.d/20-operator-kube.sh` provisions and runs
//! it. Scenarios run in order, each in its own namespace; an argument runs only the
//! scenarios whose name contains it. `TAXIWAY_KEEP_TEST_DIR=1` keeps the work directory
//! (cluster and operator logs).

mod cluster;
mod operator;
mod scenarios;
mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::Client;

use cluster::Cluster;
use operator::OperatorProcess;

/// Everything a scenario can use.
pub struct Env {
    /// The repository root.
    pub repo: PathBuf,
    /// The work directory (logs, rendered files).
    pub dir: PathBuf,
    /// The control plane.
    pub cluster: Cluster,
    /// An admin client (the tests act as the cluster's users).
    pub client: Client,
    /// The operator's ServiceAccount kubeconfig.
    pub operator_kubeconfig: PathBuf,
    /// The running operator (scenarios may restart or replace it).
    pub operator: tokio::sync::Mutex<Option<OperatorProcess>>,
}

/// The whole run may not take longer than this.
const DEADLINE: Duration = Duration::from_secs(900);

fn main() -> ExitCode {
    if std::env::var("TAXIWAY_KUBE_TESTS").as_deref() != Ok("1") {
        eprintln!(
            "kube: skipped (set TAXIWAY_KUBE_TESTS=1; tests/run.d/20-operator-kube.sh provisions and runs it)"
        );
        return ExitCode::SUCCESS;
    }
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("kube: cannot install the rustls provider");
        return ExitCode::FAILURE;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kube: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A hung step must not hang CI.
    std::thread::spawn(|| {
        std::thread::sleep(DEADLINE);
        eprintln!("kube: the run exceeded {DEADLINE:?}; aborting");
        std::process::exit(2);
    });
    match runtime.block_on(run(&filter)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kube: setup failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(filter: &[String]) -> Result<bool> {
    let started = Instant::now();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()?;
    let keep = std::env::var("TAXIWAY_KEEP_TEST_DIR").as_deref() == Ok("1");
    let tmp = tempfile::Builder::new().prefix("taxiway-kube-").tempdir()?;
    let dir = tmp.path().to_path_buf();
    eprintln!("kube: work directory {}", dir.display());

    let t = Instant::now();
    let cluster = Cluster::start(&repo, &dir.join("cluster"), &[repo.join("crds")])?;
    eprintln!(
        "kube: control plane up in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let client = cluster.client().await?;
    let env = Env {
        operator_kubeconfig: dir.join("operator.kubeconfig"),
        repo,
        dir: dir.clone(),
        cluster,
        client,
        operator: tokio::sync::Mutex::new(None),
    };

    let mut failed = vec![];
    let mut ran = 0;
    for (name, scenario) in scenarios::all() {
        if !filter.is_empty()
            && !filter.iter().any(|f| name.contains(f.as_str()))
            && !name.starts_with("setup")
        {
            continue;
        }
        let t = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(180), scenario(&env))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after 180s")));
        ran += 1;
        match result {
            Ok(()) => eprintln!("kube: ok     {name} ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!(
                    "kube: FAILED {name} ({:.1}s): {e:#}",
                    t.elapsed().as_secs_f64()
                );
                if let Some(op) = env.operator.lock().await.as_ref() {
                    eprintln!(
                        "----- operator log (last 40 lines of {}) -----\n{}",
                        op.log.display(),
                        op.tail(40)
                    );
                }
                failed.push(name);
                if name.starts_with("setup") {
                    break;
                }
            }
        }
    }
    if let Some(mut op) = env.operator.lock().await.take() {
        op.stop();
    }
    drop(env);
    eprintln!(
        "kube: {} scenarios, {} failed, in {:.1}s{}",
        ran,
        failed.len(),
        started.elapsed().as_secs_f64(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        }
    );
    if keep || !failed.is_empty() {
        let kept = tmp.keep();
        eprintln!("kube: kept {}", kept.display());
    }
    Ok(failed.is_empty())
}

/// A token for the operator's ServiceAccount (TokenRequest API).
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let response: TokenRequest = api
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .context("TokenRequest")?;
    response
        .status
        .map(|s| s.token)
        .context("TokenRequest returned no token")
}
