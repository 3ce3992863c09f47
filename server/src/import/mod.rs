//! `taxiway-server import`: load STIX bundles or TAXII envelopes into a stored collection.
//!
//! A file named `-` is standard input (`kubectl exec -i … import … - < bundle.json`).
//! Each input is read as a stream ([`stream`]) on a blocking thread that hands
//! batches of validated objects through a short queue to the store, so reading the
//! next batch overlaps with committing the last one and memory holds a few batches,
//! never the whole input. An import records no TAXII status resources: nobody could
//! ask for them.

pub mod stream;

mod progress;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use tokio::sync::mpsc;

use crate::serve::open;
use crate::store::{AddObjects, StatusDetail, StatusResource};
use progress::Progress;
use stream::{read_objects, Batch, Stopped};

/// Objects committed per transaction while importing. Each transaction holds the
/// store's write lock, which a server running beside the import waits for (up to its
/// busy timeout) before it can answer a POST: small enough to hold the lock well under
/// a second even in a debug build on a loaded machine, large enough that the commits
/// cost little.
const BATCH: usize = 1_000;

/// Batches read ahead of the store: one being committed, these waiting.
const READ_AHEAD: usize = 2;

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

/// `file` opened for reading, or standard input for `-`.
fn open_input(file: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    if file == Path::new(STDIN) {
        return Ok(Box::new(std::io::stdin()));
    }
    let opened = File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(Box::new(opened))
}

/// Tell of the objects of `name` that were rejected.
fn tell_rejected(name: &str, failures: &[StatusDetail]) {
    for failure in failures {
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
    let mut progress = Progress::on_stderr(started);
    for file in files {
        let name = label(file);
        let input = open_input(file)?;
        let (batches, mut received) = mpsc::channel::<Batch>(READ_AHEAD);
        let reader = tokio::task::spawn_blocking(move || {
            read_objects(input, BATCH, |batch| {
                batches.blocking_send(batch).map_err(|_| Stopped)
            })
        });
        let mut read = 0u64;
        let rejected_before = report.rejected;
        let mut write_error = None;
        while let Some(batch) = received.recv().await {
            read += batch.len() as u64;
            if !batch.failures.is_empty() {
                progress.end_line();
                tell_rejected(&name, &batch.failures);
            }
            report.rejected += batch.failures.len() as u64;
            if batch.objects.is_empty() {
                continue;
            }
            let request = AddObjects {
                objects: batch.objects,
                failures: Vec::new(),
                owner: String::new(),
                status_resource: StatusResource::Omit,
            };
            match store.add_objects(&root, &id, request).await {
                Ok(status) => report.stored += status.success_count,
                Err(e) => {
                    write_error = Some(e);
                    break;
                }
            }
            progress.show(&name, read, report.stored);
        }
        // A reader still running sees the queue closed and stops.
        drop(received);
        let outcome = reader
            .await
            .with_context(|| format!("{name}: the reading thread failed"))?;
        let stored = report.stored;
        if let Some(e) = write_error {
            progress.end_line();
            return Err(anyhow::Error::new(e).context(format!(
                "{name}: store write failed; {stored} objects were stored before the error"
            )));
        }
        match outcome {
            Ok(_) => progress.input_done(&name, read, report.rejected - rejected_before),
            Err(e) => {
                progress.end_line();
                bail!("{name}: {e}; {stored} objects were stored before the error");
            }
        }
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
