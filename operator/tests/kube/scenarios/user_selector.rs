//! `spec.userSelector`: users added, locked and removed by creating, annotating,
//! unlabelling and deleting labelled `kubernetes.io/basic-auth` Secrets, without
//! editing the TaxiiService; a user name claimed twice is refused, never handed over;
//! an invalid selector selects nobody. Sign-ins are checked with the server's own
//! credentials model on the generated `users.toml`, the file the pod mounts.

use anyhow::{anyhow, ensure, Context as _, Result};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::ListParams;
use serde_json::{json, Value};
use taxiway_model::auth::Credentials;

use crate::support::{
    apply, basic_auth, delete, eventually, expect_condition, namespace, taxii_service, Ns, WAIT,
};
use crate::Env;

const NS: &str = "user-selector";
const LABEL: &str = "taxiway.dev/user";

/// A labelled `kubernetes.io/basic-auth` Secret, as `kubectl create secret generic
/// --type=kubernetes.io/basic-auth` and `kubectl label` make it.
fn user_secret(name: &str, username: &str, password: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": name, "namespace": NS,
            "labels": {LABEL: "true"},
            "annotations": annotations,
        },
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": username, "password": password},
    })
}

/// The generated `users.toml`, as the server loads it.
async fn users_toml(ns: &Ns) -> Result<String> {
    let secret = ns.api::<Secret>().get("feeds-credentials").await?;
    let bytes = secret
        .data
        .and_then(|d| d.get("users.toml").cloned())
        .ok_or_else(|| anyhow!("no users.toml"))?;
    Ok(String::from_utf8(bytes.0)?)
}

/// Whether `name` signs in with `password` against `text`, as the server decides: the
/// user exists, is neither disabled nor locked, and the password verifies.
fn signs_in(text: &str, name: &str, password: &str) -> Result<bool> {
    let credentials = Credentials::parse(text).map_err(|e| anyhow!("{e}"))?;
    Ok(credentials.user(name).is_some_and(|u| {
        u.enabled
            && u.password
                .as_ref()
                .is_some_and(|h| h.verify(password.as_bytes()))
    }))
}

fn listed(text: &str) -> Result<Vec<String>> {
    let credentials = Credentials::parse(text).map_err(|e| anyhow!("{e}"))?;
    let mut names: Vec<String> = ["alice", "carol", "dave"]
        .iter()
        .filter(|n| credentials.user(n).is_some())
        .map(|n| n.to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// Wait until the generated file satisfies `check`.
async fn credentials_where(
    ns: &Ns,
    what: &str,
    check: impl Fn(&str) -> Result<()>,
) -> Result<String> {
    eventually(what, WAIT, || async {
        let text = users_toml(ns).await?;
        check(&text)?;
        Ok(text)
    })
    .await
}

/// See the module docs.
pub fn labelled_secrets(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        apply(client, basic_auth(NS, "alice", "alice", "alice-pw", &[])).await?;
        apply(
            client,
            taxii_service(
                NS,
                "feeds",
                json!({
                    "title": "Selected users", "apiRoots": [{"path": "api", "title": "API"}],
                    "users": [{"secretName": "alice"}],
                    "userSelector": {"matchLabels": {LABEL: "true"}},
                }),
            ),
        )
        .await?;
        ns.service_status_where("feeds", "userSelector on status", |s| {
            let st = s.status.clone().unwrap_or_default();
            let selected = st.user_selector.clone().context("status.userSelector")?;
            ensure!(selected.users == 0 && st.users == 1, "{st:?}");
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;

        // A labelled Secret created after the service: carol signs in, with her groups.
        apply(
            client,
            user_secret(
                "carol",
                "carol",
                "carol-pw",
                json!({"taxiway.dev/groups": "soc,cti"}),
            ),
        )
        .await?;
        let text = credentials_where(&ns, "carol to appear", |text| {
            ensure!(signs_in(text, "carol", "carol-pw")?, "carol cannot sign in");
            Ok(())
        })
        .await?;
        ensure!(
            signs_in(&text, "alice", "alice-pw")?,
            "alice cannot sign in"
        );
        ensure!(
            !signs_in(&text, "carol", "wrong")?,
            "a wrong password signs in"
        );
        let credentials = Credentials::parse(&text).map_err(|e| anyhow!("{e}"))?;
        let groups = &credentials.user("carol").context("carol")?.identity.groups;
        ensure!(
            groups.iter().map(|g| g.as_str()).collect::<Vec<_>>() == ["soc", "cti"],
            "{groups:?}"
        );
        ns.service_status_where("feeds", "two users", |s| {
            let st = s.status.clone().unwrap_or_default();
            let selected = st.user_selector.clone().context("status.userSelector")?;
            ensure!(selected.users == 1 && st.users == 2, "{st:?}");
            Ok(())
        })
        .await?;

        // Annotated locked: carol is in the file, refused.
        apply(
            client,
            user_secret(
                "carol",
                "carol",
                "carol-pw",
                json!({"taxiway.dev/groups": "soc,cti", "taxiway.dev/locked": "true"}),
            ),
        )
        .await?;
        credentials_where(&ns, "carol to be locked", |text| {
            let credentials = Credentials::parse(text).map_err(|e| anyhow!("{e}"))?;
            let carol = credentials.record("carol").context("carol is gone")?;
            ensure!(carol.locked, "carol is not locked");
            ensure!(
                !signs_in(text, "carol", "carol-pw")?,
                "locked carol signs in"
            );
            Ok(())
        })
        .await?;
        ns.service_status_where("feeds", "carol not counted", |s| {
            ensure!(s.status.clone().unwrap_or_default().users == 1);
            Ok(())
        })
        .await?;

        // A labelled Secret of another type is ignored and counted.
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "notes", "namespace": NS, "labels": {LABEL: "true"}},
                "type": "Opaque", "stringData": {"username": "notes", "password": "notes-pw"}
            }),
        )
        .await?;
        ns.service_status_where("feeds", "the ignored Secret", |s| {
            let st = s.status.clone().unwrap_or_default();
            let selected = st.user_selector.clone().context("status.userSelector")?;
            ensure!(selected.ignored_secrets == 1, "{selected:?}");
            ensure!(
                st.warnings.iter().any(|w| w.contains("ignored: notes")),
                "{:?}",
                st.warnings
            );
            Ok(())
        })
        .await?;

        // dave, then a second Secret claiming dave: neither serves dave.
        apply(client, user_secret("dave", "dave", "dave-pw", json!({}))).await?;
        credentials_where(&ns, "dave to appear", |text| {
            ensure!(signs_in(text, "dave", "dave-pw")?, "dave cannot sign in");
            Ok(())
        })
        .await?;
        apply(
            client,
            user_secret("dave-2", "dave", "mallory-pw", json!({})),
        )
        .await?;
        credentials_where(&ns, "dave to be refused", |text| {
            ensure!(listed(text)? == ["alice", "carol"], "{:?}", listed(text)?);
            Ok(())
        })
        .await?;
        ns.service_status_where("feeds", "the conflict", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "True", "ConflictingUserSecrets")?;
            ensure!(
                st.problems
                    .iter()
                    .any(|p| p.contains("Secrets dave, dave-2 all claim the user name dave")),
                "{:?}",
                st.problems
            );
            Ok(())
        })
        .await?;
        // A labelled Secret claiming alice (spec.users): ignored, alice keeps her password.
        apply(
            client,
            user_secret("alice-takeover", "alice", "mallory-pw", json!({})),
        )
        .await?;
        ns.service_status_where("feeds", "the takeover refused", |s| {
            let st = s.status.clone().unwrap_or_default();
            ensure!(
                st.problems.iter().any(|p| p.contains(
                    "Secret alice-takeover claims the user name alice, which spec.users has"
                )),
                "{:?}",
                st.problems
            );
            Ok(())
        })
        .await?;
        let text = users_toml(&ns).await?;
        ensure!(
            signs_in(&text, "alice", "alice-pw")?,
            "alice lost her password"
        );
        ensure!(
            !signs_in(&text, "alice", "mallory-pw")?,
            "the labelled Secret took alice over"
        );
        // The second claim goes: dave is back, with his own password only.
        delete(client, "v1", "Secret", NS, "dave-2").await?;
        delete(client, "v1", "Secret", NS, "alice-takeover").await?;
        credentials_where(&ns, "dave to be back", |text| {
            ensure!(signs_in(text, "dave", "dave-pw")?, "dave cannot sign in");
            ensure!(!signs_in(text, "dave", "mallory-pw")?, "dave-2's password");
            Ok(())
        })
        .await?;
        ns.service_status_where("feeds", "no problems", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;

        // Unlabelled: carol goes at once (not at the next resync). Deleted: dave goes.
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "carol", "namespace": NS},
                "type": "kubernetes.io/basic-auth",
                "stringData": {"username": "carol", "password": "carol-pw"},
            }),
        )
        .await?;
        credentials_where(&ns, "carol to go", |text| {
            ensure!(listed(text)? == ["alice", "dave"], "{:?}", listed(text)?);
            Ok(())
        })
        .await?;
        delete(client, "v1", "Secret", NS, "dave").await?;
        credentials_where(&ns, "dave to go", |text| {
            ensure!(listed(text)? == ["alice"], "{:?}", listed(text)?);
            Ok(())
        })
        .await?;

        // An invalid selector selects nobody and says so; spec.users keeps working.
        apply(client, user_secret("dave", "dave", "dave-pw", json!({}))).await?;
        credentials_where(&ns, "dave again", |text| {
            ensure!(listed(text)? == ["alice", "dave"], "{:?}", listed(text)?);
            Ok(())
        })
        .await?;
        apply(
            client,
            taxii_service(
                NS,
                "feeds",
                json!({
                    "title": "Selected users", "apiRoots": [{"path": "api", "title": "API"}],
                    "users": [{"secretName": "alice"}],
                    "userSelector": {"matchExpressions": [{"key": LABEL, "operator": "Equals", "values": ["true"]}]},
                }),
            ),
        )
        .await?;
        ns.service_status_where("feeds", "InvalidUserSelector", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "True", "InvalidUserSelector")
        })
        .await?;
        let text = users_toml(&ns).await?;
        ensure!(listed(&text)? == ["alice"], "{:?}", listed(&text)?);
        ensure!(
            signs_in(&text, "alice", "alice-pw")?,
            "alice cannot sign in"
        );

        // Fixed: dave is back (and stays put across an operator restart, see
        // availability).
        apply(
            client,
            taxii_service(
                NS,
                "feeds",
                json!({
                    "title": "Selected users", "apiRoots": [{"path": "api", "title": "API"}],
                    "users": [{"secretName": "alice"}],
                    "userSelector": {"matchExpressions": [{"key": LABEL, "operator": "In", "values": ["true"]}]},
                }),
            ),
        )
        .await?;
        credentials_where(&ns, "dave back", |text| {
            ensure!(signs_in(text, "dave", "dave-pw")?, "dave cannot sign in");
            Ok(())
        })
        .await?;
        ns.service_status_where("feeds", "a valid selector again", |s| {
            let st = s.status.clone().unwrap_or_default();
            expect_condition(&st.conditions, "Degraded", "False", "AsExpected")
        })
        .await?;

        // No secret value anywhere but the users' own Secrets.
        let config = ns.api::<ConfigMap>().get("feeds-config").await?;
        let service = ns.service("feeds").await?;
        let events =
            kube::api::Api::<k8s_openapi::api::events::v1::Event>::namespaced(client.clone(), NS)
                .list(&ListParams::default())
                .await?;
        let shown = format!(
            "{}\n{}\n{}",
            serde_json::to_string(&config)?,
            serde_json::to_string(&service.status)?,
            serde_json::to_string(&events.items)?
        );
        for plain in ["alice-pw", "carol-pw", "dave-pw", "mallory-pw", "notes-pw"] {
            ensure!(!shown.contains(plain), "{plain} is shown");
        }
        let log = std::fs::read_to_string(
            &env.operator
                .lock()
                .await
                .as_ref()
                .context("no operator")?
                .log,
        )?;
        for plain in ["alice-pw", "carol-pw", "dave-pw", "mallory-pw", "notes-pw"] {
            ensure!(!log.contains(plain), "{plain} is in the operator's log");
        }
        Ok(())
    })
}
