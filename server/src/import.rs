//! `taxiway-server import`: load STIX bundles or TAXII envelopes into a stored collection.
//!
//! A file named `-` is standard input (`kubectl exec -i … import … - < bundle.json`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::serve::open;
use crate::store::AddObjects;
use crate::taxii::envelope::parse_envelope;

/// Objects committed per transaction while importing. Each transaction holds the
/// store's write lock, which a server running beside the import waits for (up to its
/// busy timeout) before it can answer a POST: small enough to hold the lock well under
/// a second even in a debug build on a loaded machine, large enough that the commits
/// cost little.
const BATCH: usize = 1_000;

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Objects stored (or already present).
    pub stored: u64,
    /// Objects rejected by validation.
    pub rejected: u64,
}

/// The file name that stands for standard input.
pub const STDIN: &str = "-";

/// How `file` is named in messages.
fn label(file: &Path) -> String {
    if file == Path::new(STDIN) {
        "standard input".to_string()
    } else {
        file.display().to_string()
    }
}

/// The whole of `file`, or of standard input for `-`.
fn read_body(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new(STDIN) {
        let mut body = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut body)
            .context("cannot read standard input")?;
        return Ok(body);
    }
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Import `files` into the stored collection named by id, alias or title; `-` reads
/// standard input (once).
pub async fn import(
    config_dir: &Path,
    data_dir: &Path,
    collection: &str,
    files: &[PathBuf],
) -> anyhow::Result<ImportReport> {
    if files
        .iter()
        .filter(|f| f.as_path() == Path::new(STDIN))
        .count()
        > 1
    {
        bail!("standard input (`-`) can be imported once per run");
    }
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
        let name = label(file);
        let body = read_body(file)?;
        let parsed = parse_envelope(&body, None).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        drop(body);
        for failure in &parsed.failures {
            eprintln!(
                "{name}: rejected {}: {}",
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
            eprint!("\r{name}: {done}/{total} objects ({rate:.0}/s)");
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
