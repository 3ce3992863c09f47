//! `taxiway-server import`: load STIX bundles or TAXII envelopes into a stored collection.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::serve::open;
use crate::store::AddObjects;
use crate::taxii::envelope::parse_envelope;

/// Objects committed per transaction while importing.
const BATCH: usize = 5_000;

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Objects stored (or already present).
    pub stored: u64,
    /// Objects rejected by validation.
    pub rejected: u64,
}

/// Import `files` into the stored collection named by id, alias or title.
pub async fn import(
    config_dir: &Path,
    data_dir: &Path,
    collection: &str,
    files: &[PathBuf],
) -> anyhow::Result<ImportReport> {
    let (config, store) = open(config_dir, data_dir, 2).await?;
    let Some(target) = config.find_collection(collection) else {
        bail!("no collection with id, alias or title {collection:?} in the configuration");
    };
    if !target.is_writable() {
        bail!(
            "collection {:?} is a query collection; import into a writable collection",
            target.settings.title
        );
    }
    let root = target.settings.api_root.clone();
    let id = target.id().to_string();
    let mut report = ImportReport::default();
    let started = Instant::now();
    for file in files {
        let body =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let parsed =
            parse_envelope(&body, None).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        drop(body);
        for failure in &parsed.failures {
            eprintln!(
                "{}: rejected {}: {}",
                file.display(),
                if failure.id.is_empty() {
                    "<no id>"
                } else {
                    &failure.id
                },
                failure.message.as_deref().unwrap_or("invalid")
            );
        }
        report.rejected += parsed.failures.len() as u64;
        let total = parsed.objects.len();
        let mut done = 0;
        let mut objects = parsed.objects.into_iter();
        loop {
            let batch: Vec<_> = objects.by_ref().take(BATCH).collect();
            if batch.is_empty() {
                break;
            }
            done += batch.len();
            let status = store
                .add_objects(
                    &root,
                    &id,
                    AddObjects {
                        objects: batch,
                        failures: Vec::new(),
                        owner: String::new(),
                    },
                )
                .await
                .context("store write failed")?;
            report.stored += status.success_count;
            let rate = report.stored as f64 / started.elapsed().as_secs_f64().max(0.001);
            eprint!("\r{}: {done}/{total} objects ({rate:.0}/s)", file.display());
            let _ = std::io::stderr().flush();
        }
        eprintln!();
    }
    eprintln!(
        "imported {} objects into {:?} ({} rejected) in {:.1}s",
        report.stored,
        target.settings.title,
        report.rejected,
        started.elapsed().as_secs_f64()
    );
    Ok(report)
}
