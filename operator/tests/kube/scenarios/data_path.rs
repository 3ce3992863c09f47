//! The data path end to end: the real `taxiway-server` binary runs on the files the
//! operator rendered, laid out as the kubelet mounts them (atomic-writer directories with
//! a `..data` symlink) and started with the Deployment's own arguments; the real
//! `taxii2-client` adds objects to the writable collection and reads them from the
//! query collection over HTTPS with the rendered certificate, authenticated against the
//! rendered `users.toml`. Then a new TaxiiCollection reaches the running server through a
//! `..data` swap, as a ConfigMap update reaches a pod, without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Volume};
use serde_json::{json, Value};

use super::{certificate, tls_secret};
use crate::support::{
    apply, basic_auth, eventually, expect_condition, free_port, http_get, namespace,
    taxii_collection, taxii_service, Ns, WAIT,
};
use crate::Env;

const NS: &str = "datapath";

/// See the module docs.
pub fn taxii2_client(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let python = python()?;
        let server_bin = server_binary()?;
        let client = &env.client;
        namespace(client, NS).await?;
        apply(client, basic_auth(NS, "reader", "reader", "reader-pw", &[])).await?;
        apply(client, tls_secret(env, NS, "feeds-tls")?).await?;
        apply(
            client,
            taxii_service(
                NS,
                "feeds",
                json!({
                    "title": "Data path feeds",
                    "apiRoots": [{"path": "feeds", "title": "Feeds"}],
                    "users": [{"secretName": "reader", "groups": ["soc"]}],
                    "tls": {"secretName": "feeds-tls"},
                }),
            ),
        )
        .await?;
        apply(client, taxii_collection(NS, "inbox", json!({
            "service": "feeds", "writable": true, "access": {"read": ["reader"], "write": ["reader"]}
        })))
        .await?;
        apply(
            client,
            taxii_collection(
                NS,
                "indicators",
                json!({
                    "service": "feeds", "query": "type:indicator", "sources": ["inbox"],
                    "access": {"read": ["group:soc"]}
                }),
            ),
        )
        .await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        let mut ids = BTreeMap::new();
        for name in ["inbox", "indicators"] {
            let c = ns
                .collection_status_where(name, "Accepted", |c| {
                    let st = c.status.clone().unwrap_or_default();
                    expect_condition(&st.conditions, "Accepted", "True", "Accepted")
                })
                .await?;
            ids.insert(name, c.status.and_then(|s| s.id).context("id")?);
        }

        // The pod's view of its volumes, and its command line.
        let root = env.dir.join("datapath-pod");
        let pod = PodFiles::render(&ns, &root).await?;
        let (port, admin) = (free_port()?, free_port()?);
        let args = pod.args(port, admin);
        let mut server =
            ServerProcess::start(&server_bin, &args, &env.dir.join("datapath-server.log"))?;
        let admin_addr = format!("127.0.0.1:{admin}");
        eventually("the server's /readyz", WAIT, || async {
            server.check_alive()?;
            let (status, body) = http_get(&admin_addr, "/readyz").await?;
            ensure!(status == 200, "{status} {body}");
            Ok(())
        })
        .await
        .map_err(|e| e.context(server.log_tail()))?;

        let (crt, _, _) = certificate(env)?;
        let base = format!("https://127.0.0.1:{port}");
        ensure!(
            speaks_tls(&base, &crt),
            "the server does not serve HTTPS with the rendered tls/ directory\n{}",
            server.log_tail()
        );
        // The rendered users.toml is in force: no credentials, no objects.
        let anonymous = status_code(
            &format!("{base}/feeds/collections/{}/objects/", ids["indicators"]),
            &crt,
        )?;
        ensure!(anonymous == 401, "an anonymous read answered {anonymous}");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube/taxii_fetch.py");
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args([
                "--base",
                &base,
                "--user",
                "reader",
                "--password",
                "reader-pw",
            ])
            .args(["--inbox", &ids["inbox"], "--view", &ids["indicators"]])
            .args(["--title", "Data path feeds"]);
        cmd.arg("--ca").arg(&crt);
        let output = cmd.output().context("running taxii_fetch.py")?;
        if !output.status.success() {
            bail!(
                "taxii2-client failed: {}{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                server.log_tail()
            );
        }
        let seen: Value = serde_json::from_slice(&output.stdout)?;
        ensure!(
            seen["view_ids"].as_array().map(Vec::len) == Some(2),
            "{seen}"
        );
        ensure!(
            seen["collections"][&ids["indicators"]] == "indicators",
            "{seen}"
        );

        // A new collection reaches the running server as a ConfigMap update reaches a pod.
        apply(
            client,
            taxii_collection(
                NS,
                "second-inbox",
                json!({"service": "feeds", "writable": true}),
            ),
        )
        .await?;
        let second = ns
            .collection_status_where("second-inbox", "Accepted", |c| {
                let st = c.status.clone().unwrap_or_default();
                expect_condition(&st.conditions, "Accepted", "True", "Accepted")
            })
            .await?
            .status
            .and_then(|s| s.id)
            .context("id")?;
        eventually("the ConfigMap to have the new collection", WAIT, || async {
            ensure!(ns.config_text("feeds").await?.contains(&second));
            Ok(())
        })
        .await?;
        PodFiles::render(&ns, &root).await?;
        eventually("the server to serve the new collection", WAIT, || async {
            server.check_alive()?;
            let body = curl(&format!("{base}/feeds/collections/"), &crt)?;
            ensure!(body.contains(&second), "not yet: {body}");
            Ok(())
        })
        .await
        .map_err(|e| e.context(server.log_tail()))?;
        server.stop();
        Ok(())
    })
}

fn python() -> Result<PathBuf> {
    let venv = std::env::var_os("TAXIWAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("TAXIWAY_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/taxiway")
                });
            cache.join("venv")
        });
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import taxii2client.v21"])
        .output()
        .is_ok_and(|o| o.status.success());
    ensure!(
        ok,
        "no taxii2-client in {}: run tests/interop/setup-venv.sh",
        venv.display()
    );
    Ok(python)
}

/// `$TAXIWAY_SERVER_BIN`, else `taxiway-server` next to this test's target directory.
fn server_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("TAXIWAY_SERVER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("target directory")?;
    let bin = profile_dir.join("taxiway-server");
    ensure!(
        bin.exists(),
        "{} missing: cargo build -p taxiway-server (or set TAXIWAY_SERVER_BIN)",
        bin.display()
    );
    Ok(bin)
}

/// Whether `url` completes a TLS handshake with a certificate `ca` vouches for.
fn speaks_tls(url: &str, ca: &Path) -> bool {
    Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg(format!("{url}/taxii2/"))
        .status()
        .is_ok_and(|s| s.success())
}

fn curl(url: &str, ca: &Path) -> Result<String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-u", "reader:reader-pw"])
        .args([
            "-H",
            "Accept: application/taxii+json;version=2.1",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()?;
    ensure!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The HTTP status of an unauthenticated GET.
fn status_code(url: &str, ca: &Path) -> Result<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .args([
            "-H",
            "Accept: application/taxii+json;version=2.1",
            "--cacert",
        ])
        .arg(ca)
        .arg(url)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// The server container's volumes as files under a root directory.
struct PodFiles {
    args: Vec<String>,
    mounts: Vec<(String, String)>,
}

impl PodFiles {
    /// Write (or, for updates, atomically swap) every mounted volume under `root`.
    async fn render(ns: &Ns, root: &Path) -> Result<PodFiles> {
        let d = ns.api::<Deployment>().get("feeds").await?;
        let pod = d.spec.and_then(|s| s.template.spec).context("pod spec")?;
        let container = pod.containers.first().context("container")?;
        let volumes = pod.volumes.clone().unwrap_or_default();
        let mut mounts = vec![];
        for mount in container.volume_mounts.clone().unwrap_or_default() {
            let volume = volumes
                .iter()
                .find(|v| v.name == mount.name)
                .with_context(|| format!("volume {}", mount.name))?;
            let dir = root.join(mount.mount_path.trim_start_matches('/'));
            match files_of(ns, volume).await? {
                Some(files) => atomic_write(&dir, &files)?,
                None => std::fs::create_dir_all(&dir)?,
            }
            mounts.push((mount.mount_path.clone(), dir.display().to_string()));
        }
        Ok(PodFiles {
            args: container.args.clone().unwrap_or_default(),
            mounts,
        })
    }

    /// The container's arguments with paths under `root` and loopback ports.
    fn args(&self, port: u16, admin: u16) -> Vec<String> {
        self.args
            .iter()
            .map(|arg| {
                if arg.starts_with("--listen=") {
                    return format!("--listen=127.0.0.1:{port}");
                }
                if arg.starts_with("--admin-listen=") {
                    return format!("--admin-listen=127.0.0.1:{admin}");
                }
                let Some((flag, path)) = arg.split_once('=') else {
                    return arg.clone();
                };
                self.mounts
                    .iter()
                    .find_map(|(mount, local)| {
                        let rest = path.strip_prefix(mount.as_str())?;
                        (rest.is_empty() || rest.starts_with('/'))
                            .then(|| format!("{flag}={local}{rest}"))
                    })
                    .unwrap_or_else(|| arg.clone())
            })
            .collect()
    }
}

/// The files a volume shows in the pod, or `None` for a plain directory (PVC, emptyDir).
async fn files_of(ns: &Ns, volume: &Volume) -> Result<Option<BTreeMap<String, Vec<u8>>>> {
    let secret = |name: String| async move {
        let s: Secret = ns.api::<Secret>().get(&name).await?;
        Ok::<_, anyhow::Error>(
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let config_map = |name: String| async move {
        let cm: ConfigMap = ns.api::<ConfigMap>().get(&name).await?;
        Ok::<_, anyhow::Error>(
            cm.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    let pick = |all: BTreeMap<String, Vec<u8>>,
                items: Option<Vec<k8s_openapi::api::core::v1::KeyToPath>>|
     -> Result<BTreeMap<String, Vec<u8>>> {
        match items {
            None => Ok(all),
            Some(items) => items
                .into_iter()
                .map(|i| {
                    let bytes = all
                        .get(&i.key)
                        .cloned()
                        .with_context(|| format!("key {}", i.key))?;
                    Ok((i.path, bytes))
                })
                .collect(),
        }
    };
    if let Some(cm) = &volume.config_map {
        return Ok(Some(pick(
            config_map(cm.name.clone()).await?,
            cm.items.clone(),
        )?));
    }
    if let Some(s) = &volume.secret {
        let name = s.secret_name.clone().context("secretName")?;
        return Ok(Some(pick(secret(name).await?, s.items.clone())?));
    }
    if let Some(projected) = &volume.projected {
        let mut files = BTreeMap::new();
        for source in projected.sources.clone().unwrap_or_default() {
            if let Some(s) = source.secret {
                files.extend(pick(secret(s.name).await?, s.items)?);
            }
            if let Some(c) = source.config_map {
                files.extend(pick(config_map(c.name).await?, c.items)?);
            }
        }
        return Ok(Some(files));
    }
    Ok(None)
}

/// The kubelet's atomic writer: files in a fresh timestamped directory, `..data`
/// swapped to it with a rename, and top-level symlinks through `..data`.
fn atomic_write(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(dir)?;
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let target = dir.join(&stamp);
    std::fs::create_dir_all(&target)?;
    for (name, bytes) in files {
        std::fs::write(target.join(name), bytes)?;
    }
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link)?;
    let old = std::fs::read_link(dir.join("..data")).ok();
    std::fs::rename(&tmp_link, dir.join("..data"))?;
    for name in files.keys() {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(name), &link)?;
        }
    }
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

/// The server binary as a child process, killed on drop.
struct ServerProcess {
    child: std::sync::Mutex<Child>,
    log: PathBuf,
}

impl ServerProcess {
    fn start(bin: &Path, args: &[String], log: &Path) -> Result<ServerProcess> {
        let out = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(ServerProcess {
            child: std::sync::Mutex::new(child),
            log: log.to_path_buf(),
        })
    }

    fn check_alive(&self) -> Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(status) = child.try_wait()? {
            bail!("taxiway-server exited ({status})");
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "server log ({}):\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    fn stop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
        std::thread::sleep(Duration::from_millis(10));
    }
}
