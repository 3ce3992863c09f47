//! Helpers: waiting, applying manifests, reading what the operator wrote.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{pinned_kind, Scope};
use kube::{Client, ResourceExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use taxiway_operator::crd::{TaxiiCollection, TaxiiService};
use taxiway_operator::credentials::CredentialsFile;

/// How long any single wait may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// Field manager of what the tests apply (as a user would, with kubectl).
const TEST_MANAGER: &str = "taxiway-tests";

/// Poll `check` every 200 ms until it succeeds; fail after `timeout` with its last error.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("timed out after {timeout:?} waiting for {what}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A free loopback TCP port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `GET path` over plain HTTP/1.0: status and body.
pub async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Create a namespace (idempotent).
pub async fn namespace(client: &Client, name: &str) -> Result<()> {
    apply(
        client,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await?;
    // Objects can be created once the namespace is Active.
    let api: Api<Namespace> = Api::all(client.clone());
    eventually("the namespace", WAIT, || async {
        let ns = api.get(name).await?;
        let phase = ns.status.and_then(|s| s.phase).unwrap_or_default();
        anyhow::ensure!(phase == "Active", "phase {phase}");
        Ok(())
    })
    .await
}

fn gvk_of(object: &Value) -> Result<GroupVersionKind> {
    let api_version = object["apiVersion"].as_str().context("apiVersion")?;
    let kind = object["kind"].as_str().context("kind")?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

/// Server-side apply any object given as JSON, as a user would.
pub async fn apply(client: &Client, object: Value) -> Result<DynamicObject> {
    let gvk = gvk_of(&object)?;
    let (resource, caps) = pinned_kind(client, &gvk).await?;
    let name = object["metadata"]["name"]
        .as_str()
        .context("metadata.name")?
        .to_string();
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = object["metadata"]["namespace"]
                .as_str()
                .context("metadata.namespace")?;
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams::apply(TEST_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(&object))
        .await
        .with_context(|| format!("applying {} {name}", gvk.kind))
}

/// Apply every document of a YAML file.
pub async fn apply_file(client: &Client, path: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text)?;
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        apply(client, doc).await?;
    }
    Ok(())
}

/// Delete an object given by kind/name (404 is fine).
pub async fn delete(
    client: &Client,
    api_version: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<()> {
    let gvk = gvk_of(&json!({"apiVersion": api_version, "kind": kind}))?;
    let (resource, _) = pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A `kubernetes.io/basic-auth` Secret.
pub fn basic_auth(
    namespace: &str,
    name: &str,
    username: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Value {
    let mut data = json!({"username": username, "password": password});
    for (k, v) in extra {
        data[*k] = json!(v);
    }
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/basic-auth",
        "stringData": data,
    })
}

/// A TaxiiService.
pub fn taxii_service(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// A TaxiiCollection.
pub fn taxii_collection(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "taxiway.dev/v1alpha1", "kind": "TaxiiCollection",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// Typed read access to one namespace.
pub struct Ns {
    /// The client.
    pub client: Client,
    /// The namespace.
    pub name: String,
}

impl Ns {
    /// An API for `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// A TaxiiService.
    pub async fn service(&self, name: &str) -> Result<TaxiiService> {
        Ok(self.api::<TaxiiService>().get(name).await?)
    }

    /// A TaxiiCollection.
    pub async fn collection(&self, name: &str) -> Result<TaxiiCollection> {
        Ok(self.api::<TaxiiCollection>().get(name).await?)
    }

    /// The rendered `taxiway.toml`.
    pub async fn config_text(&self, service: &str) -> Result<String> {
        let cm = self
            .api::<ConfigMap>()
            .get(&format!("{service}-config"))
            .await?;
        cm.data
            .and_then(|d| d.get("taxiway.toml").cloned())
            .ok_or_else(|| anyhow!("no taxiway.toml"))
    }

    /// The generated credentials file (`users.toml`).
    pub async fn credentials(&self, service: &str) -> Result<CredentialsFile> {
        let secret = self
            .api::<Secret>()
            .get(&format!("{service}-credentials"))
            .await?;
        let bytes = secret
            .data
            .and_then(|d| d.get("users.toml").cloned())
            .ok_or_else(|| anyhow!("no users.toml"))?;
        // The server itself must accept it.
        let text = String::from_utf8(bytes.0.clone())?;
        taxiway_model::auth::Credentials::parse(&text).map_err(|e| anyhow!("{e}"))?;
        CredentialsFile::parse(&bytes.0).map_err(|e| anyhow!(e))
    }

    /// Wait until a TaxiiService's status describes its current generation and `check` holds.
    pub async fn service_status_where(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&TaxiiService) -> Result<()>,
    ) -> Result<TaxiiService> {
        eventually(what, WAIT, || async {
            let s = self.service(name).await?;
            let status = s.status.clone().unwrap_or_default();
            anyhow::ensure!(
                status.observed_generation == s.metadata.generation,
                "status describes generation {:?}, object is at {:?}",
                status.observed_generation,
                s.metadata.generation
            );
            check(&s)?;
            Ok(s)
        })
        .await
    }

    /// Wait until a TaxiiCollection's status describes its current generation and `check` holds.
    pub async fn collection_status_where(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&TaxiiCollection) -> Result<()>,
    ) -> Result<TaxiiCollection> {
        eventually(what, WAIT, || async {
            let c = self.collection(name).await?;
            let status = c.status.clone().unwrap_or_default();
            anyhow::ensure!(
                status.observed_generation == c.metadata.generation,
                "status describes generation {:?}, object is at {:?}",
                status.observed_generation,
                c.metadata.generation
            );
            check(&c)?;
            Ok(c)
        })
        .await
    }

    /// [`Ns::versions`] once they stop changing (the controller-manager updates a new
    /// Deployment's status a few times).
    pub async fn settled_versions(&self, service: &str) -> Result<BTreeMap<String, String>> {
        let mut last = self.versions(service).await?;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let now = self.versions(service).await?;
            if now == last {
                return Ok(now);
            }
            last = now;
        }
        bail!("the objects of {service} keep changing: {last:?}")
    }

    /// resourceVersions of everything a service renders and of the custom resources.
    pub async fn versions(&self, service: &str) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut put = |kind: &str, name: String, rv: Option<String>| {
            out.insert(format!("{kind}/{name}"), rv.unwrap_or_default());
        };
        let cm = self
            .api::<ConfigMap>()
            .get(&format!("{service}-config"))
            .await?;
        put("ConfigMap", cm.name_any(), cm.resource_version());
        let s = self
            .api::<Secret>()
            .get(&format!("{service}-credentials"))
            .await?;
        put("Secret", s.name_any(), s.resource_version());
        let d = self.api::<Deployment>().get(service).await?;
        put("Deployment", d.name_any(), d.resource_version());
        let svc = self.api::<Service>().get(service).await?;
        put("Service", svc.name_any(), svc.resource_version());
        let pvc = self
            .api::<PersistentVolumeClaim>()
            .get(&format!("{service}-data"))
            .await?;
        put(
            "PersistentVolumeClaim",
            pvc.name_any(),
            pvc.resource_version(),
        );
        if let Some(i) = self.api::<Ingress>().get_opt(service).await? {
            put("Ingress", i.name_any(), i.resource_version());
        }
        let ts = self.service(service).await?;
        put("TaxiiService", ts.name_any(), ts.resource_version());
        for c in self
            .api::<TaxiiCollection>()
            .list(&Default::default())
            .await?
        {
            if c.spec.service == service {
                put("TaxiiCollection", c.name_any(), c.resource_version());
            }
        }
        Ok(out)
    }
}

/// The condition of this type.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Result<&'a Condition> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .ok_or_else(|| anyhow!("no {type_} condition"))
}

/// Fail unless the condition has this status and reason.
pub fn expect_condition(
    conditions: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
) -> Result<()> {
    let c = condition(conditions, type_)?;
    if c.status != status || c.reason != reason {
        bail!(
            "{type_} is {}/{} ({}), expected {status}/{reason}",
            c.status,
            c.reason,
            c.message
        );
    }
    Ok(())
}

/// The keys whose values differ between two snapshots.
pub fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
