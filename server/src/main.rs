//! The `taxiway-server` command.

use std::io::{IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use taxiway_server::{auth, config, import, serve, store};

#[derive(Parser)]
#[command(
    name = "taxiway-server",
    version,
    about = "Taxiway: a TAXII 2.1 threat-intelligence feed server"
)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "TAXIWAY_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve TAXII from the config, credentials and TLS directories and the data directory.
    Serve {
        /// Directory holding taxiway.toml (hot-reloaded).
        #[arg(long, env = "TAXIWAY_CONFIG_DIR")]
        config_dir: PathBuf,
        /// Directory of the embedded store (not used with `[store] backend = "postgres"`).
        #[arg(long, env = "TAXIWAY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Directory of user credentials (hot-reloaded). It must hold at least one user.
        #[arg(long, env = "TAXIWAY_CREDENTIALS_DIR")]
        credentials_dir: Option<PathBuf>,
        /// Serve every collection to everyone without authentication, on purpose: with a
        /// credentials directory holding no users, or with none on a non-loopback
        /// address. Without it both are refused.
        #[arg(long, env = "TAXIWAY_ALLOW_ANONYMOUS_OPEN")]
        allow_anonymous_open: bool,
        /// Directory with tls.crt, tls.key and optional ca.crt (hot-reloaded).
        #[arg(long, env = "TAXIWAY_TLS_DIR")]
        tls_dir: Option<PathBuf>,
        /// TAXII listen address.
        #[arg(long, env = "TAXIWAY_LISTEN", default_value = "127.0.0.1:9443")]
        listen: SocketAddr,
        /// Admin listen address (/healthz, /readyz, /metrics).
        #[arg(long, env = "TAXIWAY_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
        /// Read connections to the store.
        #[arg(long, env = "TAXIWAY_STORE_READERS", default_value_t = 8)]
        readers: u32,
    },
    /// Load STIX bundles or TAXII envelopes into a writable collection.
    Import {
        /// Directory holding taxiway.toml.
        #[arg(long, env = "TAXIWAY_CONFIG_DIR")]
        config_dir: PathBuf,
        /// Directory of the embedded store (not used with `[store] backend = "postgres"`).
        #[arg(long, env = "TAXIWAY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The target collection's id, alias or title.
        #[arg(long)]
        collection: String,
        /// Bundle or envelope files; `-` reads one from standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the argon2id hash (PHC string) of a password or API key, for
    /// `credentials/users.toml`. The secret is read from standard input (one line) or
    /// asked for twice on a terminal; never from the command line.
    HashPassword {
        /// The secret is an API key (at least 20 characters of random text): its hash
        /// carries a lookup tag, so the server finds its user without trying every key.
        #[arg(long)]
        api_key: bool,
    },
    /// Write a consistent snapshot of the store to a new file, or to standard output
    /// with `--output -`, while the server may be running (SQLite `VACUUM INTO`);
    /// refuses to overwrite an existing file.
    Backup {
        /// Directory of the embedded store.
        #[arg(long, env = "TAXIWAY_DATA_DIR")]
        data_dir: PathBuf,
        /// Directory holding taxiway.toml: when it selects PostgreSQL, `backup` refuses
        /// (back PostgreSQL up with pg_dump).
        #[arg(long, env = "TAXIWAY_CONFIG_DIR")]
        config_dir: Option<PathBuf>,
        /// The backup file to create, or `-` for standard output (the snapshot is
        /// then taken into a temporary file in `--temp-dir` first and streamed; only
        /// the database goes to standard output, messages go to standard error).
        #[arg(long)]
        output: PathBuf,
        /// Where `--output -` stages the snapshot: it needs room for the compacted
        /// store. Default: the data directory.
        #[arg(long)]
        temp_dir: Option<PathBuf>,
    },
    /// Replace the embedded store of a data directory with a backup (a file, or `-` for
    /// standard input). Stop the server first: a store in use is refused. The backup
    /// is checked before anything is replaced.
    Restore {
        /// Directory of the embedded store to replace (created if missing).
        #[arg(long, env = "TAXIWAY_DATA_DIR")]
        data_dir: PathBuf,
        /// The backup file written by `backup`, or `-` for standard input.
        #[arg(long)]
        input: PathBuf,
    },
    /// Copy the embedded store of a data directory into the (empty) PostgreSQL database
    /// the configuration names: every object version with its bytes, every view's
    /// entries with their date_added, collection views and status resources. Stop the
    /// server using the data directory first.
    Migrate {
        /// Data directory of the embedded store to copy.
        #[arg(long, value_name = "DATA_DIR")]
        from_sqlite: PathBuf,
        /// Directory holding taxiway.toml with `[store] backend = "postgres"`.
        #[arg(long, env = "TAXIWAY_CONFIG_DIR")]
        config_dir: PathBuf,
    },
    /// Validate a config directory; prints every problem and exits non-zero if any.
    CheckConfig {
        /// Directory holding taxiway.toml.
        #[arg(long, env = "TAXIWAY_CONFIG_DIR")]
        config_dir: PathBuf,
    },
}

/// One line per query collection: the writable collections it draws from.
/// For a query collection written in the XSOAR dialect: where, the query as written
/// and the native query it was translated to (what is evaluated).
fn describe_translation(c: &config::CollectionConfig) -> String {
    match (c.settings.dialect, &c.settings.query, c.native_query()) {
        (config::QueryDialect::Xsoar, Some(xsoar), Some(native)) => {
            format!(
                "    XSOAR query ({}): {xsoar}\n    translated: {native}\n",
                c.at
            )
        }
        _ => String::new(),
    }
}

fn describe_sources(config: &config::ServiceConfig) -> String {
    let title = |id: &String| {
        config
            .collections
            .iter()
            .find(|c| &c.settings.id == id)
            .map_or(id.clone(), |c| format!("{:?}", c.settings.title))
    };
    config
        .collections
        .iter()
        .filter(|c| !c.is_writable())
        .map(|c| {
            let sources: Vec<String> = c.sources.iter().map(title).collect();
            format!(
                "  {:?} draws from {}{}\n{}",
                c.settings.title,
                if sources.is_empty() {
                    "no writable collection".to_string()
                } else {
                    sources.join(", ")
                },
                if c.settings.sources.is_none() {
                    " (default: those its readers may read)"
                } else {
                    ""
                },
                describe_translation(c)
            )
        })
        .collect()
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAXIWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The secret to hash: one line from standard input, or typed twice at a prompt.
fn read_secret() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password or API key: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            anyhow::bail!("the two entries differ");
        }
        return Ok(first);
    }
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let line = input.lines().next().unwrap_or_default();
    Ok(line.to_string())
}

fn hash_password(api_key: bool) -> anyhow::Result<()> {
    let secret = read_secret()?;
    let phc = if api_key {
        auth::password::hash_api_key(secret.as_bytes())?
    } else {
        auth::password::hash(secret.as_bytes())?
    };
    println!("{phc}");
    Ok(())
}

fn backup(
    data_dir: &std::path::Path,
    output: &std::path::Path,
    temp_dir: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if output == std::path::Path::new("-") {
        return backup_to_stdout(data_dir, temp_dir.unwrap_or(data_dir));
    }
    let started = std::time::Instant::now();
    store::sqlite::backup(data_dir, output)?;
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up {} to {} ({bytes} bytes) in {:.1}s",
        data_dir.display(),
        output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `backup --output -`: the snapshot on standard output, the summary on standard error.
fn backup_to_stdout(data_dir: &std::path::Path, temp_dir: &std::path::Path) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        anyhow::bail!(
            "standard output is a terminal; redirect `backup --output -` to a file or a pipe"
        );
    }
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let bytes = store::sqlite::backup_to_writer(data_dir, temp_dir, &mut out)?;
    eprintln!(
        "backed up {} to standard output ({bytes} bytes) in {:.1}s",
        data_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `restore`: the backup in `input` (`-`: standard input) becomes the store.
fn restore(data_dir: &std::path::Path, input: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let bytes = if input == std::path::Path::new("-") {
        store::sqlite::restore(data_dir, &mut std::io::stdin().lock())?
    } else {
        let mut file = std::fs::File::open(input)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?;
        store::sqlite::restore(data_dir, &mut file)?
    };
    eprintln!(
        "restored {} ({bytes} bytes) in {:.1}s; start the server",
        data_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn refuse_postgres_backup(config_dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Some(dir) = config_dir else {
        return Ok(());
    };
    // An unreadable config says nothing about the backend: back the data directory up.
    let Ok(config) = config::load_dir(dir) else {
        return Ok(());
    };
    if config.config.store.backend == config::StoreBackend::Postgres {
        anyhow::bail!(
            "the store is PostgreSQL ([store] backend = \"postgres\"): `backup` only copies the \
             embedded SQLite store; back PostgreSQL up with pg_dump (see docs/scale-out.md)"
        );
    }
    Ok(())
}

async fn migrate(from: &std::path::Path, config_dir: &std::path::Path) -> anyhow::Result<()> {
    let config =
        config::load_dir(config_dir).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let Some(settings) = config
        .config
        .store
        .postgres
        .as_ref()
        .filter(|_| config.config.store.backend == config::StoreBackend::Postgres)
    else {
        anyhow::bail!(
            "{}: migrate copies into PostgreSQL; set [store] backend = \"postgres\" and [store.postgres]",
            config_dir.display()
        );
    };
    let started = std::time::Instant::now();
    let target = store::postgres::PostgresStore::connect(settings).await?;
    let report = store::postgres::copy_from_sqlite(from, &target).await?;
    store::Store::close(&target).await?;
    println!(
        "copied {} object versions, {} views ({} entries), {} statuses and {} feeds' state \
         from {} in {:.1}s; last date_added {}",
        report.object_versions,
        report.views,
        report.entries,
        report.statuses,
        report.feeds,
        from.display(),
        started.elapsed().as_secs_f64(),
        report.last_stamp
    );
    Ok(())
}

/// Two tunables of glibc's malloc, each left to the environment when it sets it
/// (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`). Called before any thread is started.
///
/// - **Arenas**: malloc gives each thread that contends for the heap an arena of its
///   own (up to eight per core), and memory freed into one arena serves only that
///   arena: the blocking threads that parse POSTed envelopes and read pages leave tens
///   of MiB spread over arenas. One arena per core keeps the heap compact (measured on
///   2 cores after page walks and 50,000 POSTed objects over 4 connections: peak RSS
///   177 → 149 MiB, ingest within noise).
/// - **Large blocks**: a block of at least the mmap threshold is mapped on its own and
///   unmapped when freed, but by default the threshold follows the largest such block
///   freed (up to 32 MiB), so once one page of `max_page_bytes` has been sent, the next
///   pages and request bodies of megabytes are carved from the arenas and their memory
///   stays there, scattered. A fixed threshold of [`MMAP_THRESHOLD`] gives every block
///   that large back when it is freed (the memory test's peak, three readers of 16 MiB
///   pages of 1 MiB objects while a writer posts: 170–207 → 135–156 MiB); a page of a
///   thousand typical objects is far smaller, and is allocated as before.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    /// Blocks from this size on are mapped on their own: above a typical page or
    /// envelope (a thousand objects of about a KiB), below the largest ones.
    const MMAP_THRESHOLD: libc::c_int = 4 * 1024 * 1024;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` sets a tunable of the allocator; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    init_logging(cli.log_json);
    // Exactly one rustls provider is compiled in; make it the process default before
    // anything builds a TLS configuration.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run one command of the command line.
async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            config_dir,
            data_dir,
            credentials_dir,
            allow_anonymous_open,
            tls_dir,
            listen,
            admin_listen,
            readers,
        } => {
            serve::serve(serve::ServeOptions {
                config_dir,
                data_dir: data_dir.unwrap_or_default(),
                credentials_dir,
                allow_anonymous_open,
                tls_dir,
                listen,
                admin_listen,
                readers,
            })
            .await
        }
        Command::Import {
            config_dir,
            data_dir,
            collection,
            files,
        } => import::import(
            &config_dir,
            &data_dir.unwrap_or_default(),
            &collection,
            &files,
        )
        .await
        .map(|_| ()),
        Command::HashPassword { api_key } => hash_password(api_key),
        Command::Backup {
            data_dir,
            output,
            temp_dir,
            config_dir,
        } => refuse_postgres_backup(config_dir.as_deref())
            .and_then(|()| backup(&data_dir, &output, temp_dir.as_deref())),
        Command::Restore { data_dir, input } => restore(&data_dir, &input),
        Command::Migrate {
            from_sqlite,
            config_dir,
        } => migrate(&from_sqlite, &config_dir).await,
        Command::CheckConfig { config_dir } => check_config(&config_dir),
    }
}

/// `check-config`: validate a configuration directory, list what each query
/// collection draws from (and the translation of an XSOAR query), and print warnings.
fn check_config(config_dir: &std::path::Path) -> anyhow::Result<()> {
    match config::load_dir(config_dir) {
        Ok(c) => {
            println!(
                "{}: valid ({} API roots, {} collections)",
                config_dir.display(),
                c.config.api_roots.len(),
                c.collections.len()
            );
            print!("{}", describe_sources(&c));
            for w in c.warnings() {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
        Err(config::ConfigError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            Err(anyhow::anyhow!(
                "{} problem(s) in {}",
                problems.len(),
                config_dir.display()
            ))
        }
        Err(e) => Err(e.into()),
    }
}
