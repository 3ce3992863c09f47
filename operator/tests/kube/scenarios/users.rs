//! Users' Secrets: broken ones are reported without affecting the others; hashes stay
//! put while Secrets are unchanged; a deleted Secret removes its user.

use anyhow::{ensure, Context as _, Result};
use futures::future::BoxFuture;
use serde_json::json;
use taxiway_operator::credentials::CredentialsFile;
use taxiway_operator::credentials::{Argon2Hasher, SecretHasher};

use crate::support::{
    apply, basic_auth, delete, eventually, expect_condition, namespace, taxii_service, Ns, WAIT,
};
use crate::Env;

const NS: &str = "users";

fn hash_of(users: &CredentialsFile, name: &str) -> Option<String> {
    users.user(name)?.password_hash.clone()
}

fn names(users: &CredentialsFile) -> Vec<String> {
    users.users.iter().map(|u| u.name.clone()).collect()
}

/// See the module docs.
pub fn secrets(env: &Env) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let client = &env.client;
        namespace(client, NS).await?;
        apply(client, basic_auth(NS, "alice", "alice", "alice-pw", &[])).await?;
        apply(client, basic_auth(NS, "bob", "bob", "bob-pw", &[])).await?;
        apply(
            client,
            basic_auth(
                NS,
                "carol",
                "carol",
                "carol-pw",
                &[("api-key", "carol-key")],
            ),
        )
        .await?;
        // eve: wrong type; frank: no password; grace: the API key key is missing.
        apply(
            client,
            json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "eve", "namespace": NS},
                "type": "Opaque", "stringData": {"username": "eve", "password": "eve-pw"}
            }),
        )
        .await?;
        apply(client, json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "frank", "namespace": NS},
            "type": "kubernetes.io/basic-auth", "stringData": {"username": "frank"}
        }))
        .await?;
        apply(client, basic_auth(NS, "grace", "grace", "grace-pw", &[])).await?;
        apply(
            client,
            taxii_service(
                NS,
                "feeds",
                json!({
                    "title": "Users", "apiRoots": [{"path": "api", "title": "API"}],
                    "users": [
                        {"secretName": "alice"}, {"secretName": "bob"},
                        {"secretName": "carol", "apiKeyKey": "api-key"},
                        {"secretName": "dave"}, {"secretName": "eve"}, {"secretName": "frank"},
                        {"secretName": "grace", "apiKeyKey": "api-key"}
                    ]
                }),
            ),
        )
        .await?;
        let ns = Ns {
            client: client.clone(),
            name: NS.into(),
        };
        let service = ns
            .service_status_where("feeds", "users reported", |s| {
                let st = s.status.clone().unwrap_or_default();
                ensure!(st.problems.len() == 4, "problems {:?}", st.problems);
                Ok(())
            })
            .await?;
        let st = service.status.unwrap_or_default();
        expect_condition(&st.conditions, "Degraded", "True", "InvalidUserSecret")?;
        ensure!(st.users == 3, "{} users", st.users);
        let problems = st.problems.join("\n");
        for expected in [
            "Secret dave not found",
            "Secret eve has type Opaque, expected kubernetes.io/basic-auth",
            "Secret frank has no key password",
            "Secret grace has no key api-key",
        ] {
            ensure!(
                problems.contains(expected),
                "no {expected:?} in\n{problems}"
            );
        }
        let users = ns.credentials("feeds").await?;
        ensure!(
            names(&users) == ["alice", "bob", "carol"],
            "{:?}",
            names(&users)
        );
        let alice_hash = hash_of(&users, "alice").context("alice")?;
        let carol_hash = hash_of(&users, "carol").context("carol")?;

        // Deleting bob's Secret removes bob; alice's hash is kept.
        delete(client, "v1", "Secret", NS, "bob").await?;
        let users = eventually("bob to go", WAIT, || async {
            let users = ns.credentials("feeds").await?;
            ensure!(names(&users) == ["alice", "carol"], "{:?}", names(&users));
            Ok(users)
        })
        .await?;
        ensure!(
            hash_of(&users, "alice").as_ref() == Some(&alice_hash),
            "alice was re-hashed"
        );

        // A new password: a new hash for carol only.
        apply(
            client,
            basic_auth(
                NS,
                "carol",
                "carol",
                "carol-new",
                &[("api-key", "carol-key")],
            ),
        )
        .await?;
        let users = eventually("carol's new hash", WAIT, || async {
            let users = ns.credentials("feeds").await?;
            ensure!(
                hash_of(&users, "carol") != Some(carol_hash.clone()),
                "unchanged"
            );
            Ok(users)
        })
        .await?;
        let verifier = Argon2Hasher::default();
        ensure!(verifier.verify("carol-new", &hash_of(&users, "carol").context("carol")?));
        ensure!(
            hash_of(&users, "alice") == Some(alice_hash.clone()),
            "alice was re-hashed"
        );

        // A Secret created after the service is picked up.
        apply(client, basic_auth(NS, "dave", "dave", "dave-pw", &[])).await?;
        eventually("dave to appear", WAIT, || async {
            let users = ns.credentials("feeds").await?;
            ensure!(
                names(&users) == ["alice", "carol", "dave"],
                "{:?}",
                names(&users)
            );
            Ok(())
        })
        .await?;
        Ok(())
    })
}
