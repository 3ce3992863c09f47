//! The `taxiway-operator` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use taxiway_operator::controller::Options;
use taxiway_operator::lease::LeaseConfig;
use taxiway_operator::reconcile::service::inputs::{default_server_image, Settings};
use taxiway_operator::run::{run, RunOptions};

#[derive(Parser)]
#[command(
    name = "taxiway-operator",
    version,
    about = "Taxiway's Kubernetes operator: TaxiiService and TaxiiCollection resources to TAXII servers"
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
    /// Reconcile TaxiiServices and TaxiiCollections (in-cluster, or with a kubeconfig).
    Run(Box<RunArgs>),
    /// Print the CRDs as YAML, or write one file per CRD into a directory.
    Crds {
        /// Write `<crd name>.yaml` files here instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the TaxiiCollections equivalent to a Cortex XSOAR collections JSON
    /// (`{"name": "<query>"}` or `{"name": {"query": …, "description": …}}`), with the
    /// same collection ids `spec.collectionsFrom` derives; pipe to `kubectl apply -f -`.
    XsoarCollections(XsoarCollectionsArgs),
}

#[derive(clap::Args)]
struct XsoarCollectionsArgs {
    /// The collections JSON file (`-`: standard input).
    file: PathBuf,
    /// The TaxiiService serving the collections.
    #[arg(long)]
    service: String,
    /// The API root (path) the collections are served in; ids derive from it and the
    /// collection name, so give the one the service serves them in.
    #[arg(long)]
    api_root: String,
    /// The namespace written into the resources (default: none, kubectl's current).
    #[arg(long)]
    namespace: Option<String>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig file; default: in-cluster, else $KUBECONFIG or ~/.kube/config.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (a Role suffices); default: all namespaces.
    #[arg(long, env = "TAXIWAY_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Admin listener: /healthz, /readyz, /metrics.
    #[arg(long, env = "TAXIWAY_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    admin_listen: SocketAddr,
    /// The taxiway-server image for TaxiiServices that name none.
    #[arg(long, env = "TAXIWAY_SERVER_IMAGE", default_value_t = default_server_image())]
    server_image: String,
    /// The cluster's DNS domain, for in-cluster URLs.
    #[arg(long, env = "TAXIWAY_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
    /// Image prefixes (comma-separated) a TaxiiService's `spec.image` must start with,
    /// e.g. `ghcr.io/acme/`; a TaxiiService naming another image is rejected. Default:
    /// any image. `--server-image` is always allowed.
    #[arg(
        long,
        env = "TAXIWAY_ALLOWED_IMAGE_PREFIXES",
        value_delimiter = ',',
        value_name = "PREFIX,..."
    )]
    allowed_image_prefixes: Vec<String>,
    /// Leader election, so several replicas can run (disable for a single replica).
    #[arg(long, env = "TAXIWAY_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "taxiway-operator")]
    lease_name: String,
    /// Namespace of the leader Lease; default: $POD_NAMESPACE, else the service
    /// account's namespace, else `default`.
    #[arg(long)]
    lease_namespace: Option<String>,
    /// Seconds a Lease not renewed stays with its holder.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds between renewals.
    #[arg(long, default_value_t = 5)]
    lease_renew_seconds: u64,
    /// This replica's name in the Lease and in Events; default: $POD_NAME or the host name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAXIWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    // Exactly one rustls crypto provider is compiled in (ring); install it before any
    // TLS client exists.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("error: cannot install the rustls crypto provider");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { dir } => crds(dir),
        Command::XsoarCollections(args) => xsoar_collections(&args),
        Command::Run(args) => {
            init_logging(cli.log_json);
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
            match runtime.block_on(run(run_options(*args))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn crds(dir: Option<PathBuf>) -> ExitCode {
    let result = match dir {
        None => taxiway_operator::crd::all_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(|e| e.to_string()),
        Some(dir) => taxiway_operator::crd::definitions()
            .iter()
            .try_for_each(|crd| {
                let yaml = taxiway_operator::crd::to_yaml(crd).map_err(|e| e.to_string())?;
                let path = dir.join(taxiway_operator::crd::file_name(crd));
                std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn xsoar_collections(args: &XsoarCollectionsArgs) -> ExitCode {
    use std::io::Read;
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|e| format!("standard input: {e}"))
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))
    };
    let yaml = text.and_then(|text| {
        let entries = taxiway_operator::xsoar::parse(&text)
            .map_err(|e| format!("{}: {e}", args.file.display()))?;
        taxiway_operator::xsoar::collections_yaml(
            &entries,
            &args.service,
            args.namespace.as_deref(),
            &args.api_root,
        )
    });
    match yaml {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_options(args: RunArgs) -> RunOptions {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "taxiway-operator".into());
    let instance = args.identity.clone().unwrap_or(host);
    let lease = args.leader_elect.then(|| LeaseConfig {
        name: args.lease_name.clone(),
        namespace: args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .ok()
                    .map(|ns| ns.trim().to_string())
            })
            .unwrap_or_else(|| "default".into()),
        // Unique per process, so a restarted pod never mistakes the old holder for itself.
        identity: format!("{instance}_{}", std::process::id()),
        duration: Duration::from_secs(args.lease_duration_seconds.max(2)),
        renew_every: Duration::from_secs(args.lease_renew_seconds.max(1)),
    });
    RunOptions {
        kubeconfig: args.kubeconfig,
        admin_listen: args.admin_listen,
        lease,
        controller: Options {
            namespace: args.namespace,
            settings: Settings {
                server_image: args.server_image,
                cluster_domain: args.cluster_domain,
                allowed_image_prefixes: args
                    .allowed_image_prefixes
                    .iter()
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
                operator_namespace: std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty()),
            },
            instance,
        },
    }
}
