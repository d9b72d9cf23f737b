//! The node binary: `node --config FILE`, or `node --check-config FILE` to validate a config
//! without starting.

use clap::{ArgGroup, Parser};
use std::path::PathBuf;
use std::process::ExitCode;

// Under load a node allocates and frees per command and per message on several threads;
// glibc's malloc spent about a fifth of the machine's cycles on it (perf), mimalloc less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "A flashstock Raft node",
    after_help = "Examples:\n  node --config cluster-config/samples/three-node/node1.toml\n  \
                  node --check-config cluster-config/samples/three-node/node1.toml\n\n\
                  Exit codes of --check-config: 0 valid, 1 not (the message names the field).",
    group(ArgGroup::new("mode").required(true).args(["config", "check_config"]))
)]
struct Args {
    /// The node's TOML config.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate FILE as --config would, print the settings the node would use (defaults
    /// included) and exit without starting.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if let Some(path) = args.check_config {
        return Ok(check_config(&path));
    }
    let Some(path) = args.config else {
        unreachable!("clap requires --config or --check-config");
    };
    serve(&path)?;
    Ok(ExitCode::SUCCESS)
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match cluster_config::NodeConfig::load(path) {
        Ok(config) => {
            print!("{}", node::config_summary::summary(&config));
            println!("{}: valid", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    // Logs go to stderr, in colour only on a terminal, so redirected logs stay readable.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .init();
    let config = cluster_config::NodeConfig::load(path)?;
    node::server::run(config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
