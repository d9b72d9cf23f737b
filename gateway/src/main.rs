//! The `gateway` binary: parses flags, sets up logging (`RUST_LOG`) and runs the library's
//! server until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use cluster_config::logging::LogFormat;
use gateway::GatewayConfig;

// The gateway allocates per request and per response on every worker; glibc's malloc was a
// large share of its cycles under load (perf), mimalloc a smaller one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The HTTP gateway in front of the inventory cluster.
#[derive(Debug, Parser)]
#[command(name = "flashstock-gateway", version)]
struct Args {
    /// Gateway TOML config (see cluster-config/samples/gateway.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Cluster nodes' gRPC addresses, `host:port,host:port`; overrides the config's list.
    #[arg(long, value_name = "ADDRS", value_delimiter = ',')]
    nodes: Option<Vec<String>>,
    /// HTTP listen address; overrides the config's.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The cluster CA (PEM); with --cert and --key, overrides the config's [tls].
    #[arg(long, value_name = "FILE", requires_all = ["cert", "key"])]
    ca: Option<PathBuf>,
    /// The gateway certificate (`invctl certs gateway`).
    #[arg(long, value_name = "FILE", requires_all = ["ca", "key"])]
    cert: Option<PathBuf>,
    /// Its private key.
    #[arg(long, value_name = "FILE", requires_all = ["ca", "cert"])]
    key: Option<PathBuf>,
    /// Serve the HTTP API over TLS with this certificate chain (PEM); overrides [https].
    #[arg(long, value_name = "FILE", requires = "https_key")]
    https_cert: Option<PathBuf>,
    /// The HTTPS certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "https_cert")]
    https_key: Option<PathBuf>,
    /// Threads that serve requests; overrides the config's `workers` (default: one per
    /// core).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Logs on stderr as `text` or `json` (one object per line); `RUST_LOG` filters both.
    #[arg(long, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn config(args: Args) -> anyhow::Result<GatewayConfig> {
    let mut config = match (&args.config, &args.nodes) {
        (Some(path), _) => {
            GatewayConfig::load(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(nodes)) => GatewayConfig::with_nodes(nodes.clone()),
        (None, None) => bail!("give --config FILE or --nodes host:port,host:port"),
    };
    if let Some(nodes) = args.nodes {
        config.nodes = nodes;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let (Some(ca), Some(cert), Some(key)) = (args.ca, args.cert, args.key) {
        config.tls = cluster_config::TlsSettings::files(cluster_config::TlsFiles { ca, cert, key });
    }
    if let (Some(cert), Some(key)) = (args.https_cert, args.https_key) {
        config.https = Some(cluster_config::HttpsSettings { cert, key });
    }
    if let Some(workers) = args.workers {
        config.workers = Some(workers);
    }
    config.validate()?;
    Ok(config)
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    cluster_config::logging::init(
        args.log_format,
        cluster_config::logging::GATEWAY_DEFAULT_FILTER,
    );
    let config = config(args)?;
    let workers = config.worker_threads();
    tracing::info!(nodes = ?config.nodes, listen = %config.listen, workers, "starting gateway");
    runtime(workers)?.block_on(gateway::serve(config, shutdown_signal()))
}

/// One worker runs every task on the main thread: nothing is woken or stolen across threads.
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}
