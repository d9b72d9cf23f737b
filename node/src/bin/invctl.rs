//! `invctl`: run a local demo, benchmark the Raft layer, and inspect and change a running
//! cluster (status, add-node, remove-node, snapshot).

use clap::{CommandFactory, Parser, Subcommand};
use node::bench::{self, Workload};
use node::cli::output::{Format, OutputArg};
use node::cli::{
    admin, certs, demo, events, exit_code, membership, restore, snapshot_file, status,
};
use node::launcher::LocalCluster;
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_NODES: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

#[derive(Parser)]
#[command(
    name = "invctl",
    version,
    about = "Run and operate a flashstock cluster",
    after_help = node::exit_codes_help!()
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    #[command(flatten)]
    tls: certs::TlsArgs,
}

#[derive(clap::Args)]
struct Nodes {
    /// Any node(s) of the cluster, comma-separated.
    #[arg(
        long,
        env = "FLASHSTOCK_NODES",
        default_value = DEFAULT_NODES,
        value_delimiter = ',',
        value_name = "HOST:PORT,..."
    )]
    nodes: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a local 3-node cluster and a gateway on 127.0.0.1:8080; Ctrl-C stops them.
    #[command(
        after_help = "Examples:\n  cargo run --release --bin invctl -- demo\n  cargo run --release --bin invctl -- demo --flash-sale"
    )]
    Demo {
        /// Also run the flash sale: 10 units, 10,000 concurrent buyers.
        #[arg(long)]
        flash_sale: bool,
        /// Stop right after the flash sale instead of waiting for Ctrl-C.
        #[arg(long)]
        exit: bool,
        #[arg(long, default_value = "127.0.0.1:8080")]
        gateway: String,
        /// First of three consecutive ports for the nodes.
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
        /// Require a bearer token on the HTTP API; one with every scope is made and printed.
        #[arg(long, conflicts_with = "flash_sale")]
        tokens: bool,
        /// Serve the HTTP API over TLS, with the gateway's certificate from the demo's CA
        /// (curl --cacert); the flash sale's load generator speaks plain HTTP only.
        #[arg(long, conflicts_with_all = ["flash_sale", "insecure"])]
        https: bool,
        /// Plaintext gRPC between the processes, no certificates: only to measure what TLS
        /// costs (`loadgen bench` against both).
        #[arg(long)]
        insecure: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Every member and learner with its role, log position and lag. Exit code 0 only
    /// when a leader is known and a quorum of voters answers, 3 when not.
    #[command(after_help = concat!(
        "Examples:\n  invctl status\n  invctl status --nodes 10.0.0.1:7001 --output json\n\n",
        node::exit_codes_help!()
    ))]
    Status {
        #[command(flatten)]
        nodes: Nodes,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Add a running node: as a learner first, then, once caught up, as a voter.
    #[command(after_help = "Example:\n  invctl add-node --id 4 --addr 127.0.0.1:7004")]
    AddNode {
        #[arg(long)]
        id: u64,
        #[arg(long)]
        addr: String,
        #[command(flatten)]
        nodes: Nodes,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Remove a voter or learner (the leader too) through joint consensus.
    #[command(after_help = "Example:\n  invctl remove-node --id 2")]
    RemoveNode {
        #[arg(long)]
        id: u64,
        /// Remove even if the remaining voters that answer now are not a quorum.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        nodes: Nodes,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Build a snapshot on the leader (or --node) and wait until it is done; or, with
    /// `verify FILE`, check a snapshot file offline.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = concat!(
            "Examples:\n  invctl snapshot --node 2\n  \
             invctl snapshot verify data/node1/snapshots/snapshot-3.snap\n\n",
            node::exit_codes_help!()
        )
    )]
    Snapshot {
        #[command(subcommand)]
        offline: Option<SnapshotCmd>,
        /// The node to build it on (default: the leader).
        #[arg(long)]
        node: Option<u64>,
        #[command(flatten)]
        nodes: Nodes,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Prepare an empty data dir from a backup snapshot, for a node of a new cluster: run it
    /// on every machine of the new cluster with the same snapshot file and that node's
    /// config, then start the nodes as usual.
    #[command(after_help = concat!(
        "Example:\n  invctl restore --snapshot backup/snapshot-3.snap --config node1.toml\n\n",
        node::exit_codes_help!()
    ))]
    Restore {
        /// The snapshot file (`snapshot-N.snap` from a node's `snapshots/` dir).
        #[arg(long, value_name = "FILE")]
        snapshot: std::path::PathBuf,
        /// The new node's config: its id, data_dir (must be empty or missing) and the new
        /// cluster's initial_members.
        #[arg(long, value_name = "FILE")]
        config: std::path::PathBuf,
        /// The new cluster's id (32 hex digits). Default: derived from the snapshot's bytes
        /// and the config's initial_members, so nodes restored alike agree without it.
        #[arg(long, value_name = "HEX", value_parser = node::cluster_id::ClusterId::parse)]
        cluster_id: Option<node::cluster_id::ClusterId>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Print the event feed through a gateway: the backlog after --after, or with --follow
    /// every new event as it commits (reconnecting by the last id; Ctrl-C stops).
    #[command(after_help = "Examples:\n  invctl events --after 0\n  \
        invctl events --follow\n  \
        invctl events --follow --after 41 --output json | jq .type")]
    Events {
        /// Start after this event id (0: from the first kept).
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Keep printing new events as they commit.
        #[arg(long)]
        follow: bool,
        /// The gateway to read from.
        #[arg(
            long,
            env = "FLASHSTOCK_GATEWAY",
            default_value = "127.0.0.1:8080",
            value_name = "HOST:PORT"
        )]
        gateway: String,
        /// The CA of the gateway's HTTPS certificate: speak TLS to it (`demo --https` prints
        /// it).
        #[arg(long, env = "FLASHSTOCK_HTTPS_CA", value_name = "FILE")]
        https_ca: Option<std::path::PathBuf>,
        /// Bearer token with the `read` scope, when the gateway requires tokens.
        #[arg(long, env = "FLASHSTOCK_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Benchmark Submit over gRPC against a fresh local 3-node cluster (fsync on).
    #[command(after_help = "Example:\n  cargo run --release --bin invctl -- bench --seconds 10")]
    Bench {
        /// Seconds per workload.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// First of three consecutive loopback ports for the nodes.
        #[arg(long, default_value_t = 17101)]
        base_port: u16,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Make the cluster CA and the certificates it signs (all files in one directory).
    #[command(after_help = "Examples:\n  \
        invctl certs init --dir certs\n  \
        invctl certs node --dir certs --id 1 --addr 10.0.0.1:7001\n  \
        invctl certs gateway --dir certs\n  \
        invctl certs admin --dir certs --name alice")]
    Certs {
        #[command(subcommand)]
        cmd: CertsCmd,
    },
    /// Make a bearer token for the gateway's HTTP API: the token is printed once, with the
    /// `[[tokens]]` entry (its SHA-256) to paste into the gateway's config.
    #[command(after_help = "Example:\n  invctl tokens new --scopes orders,read --name checkout")]
    Tokens {
        #[command(subcommand)]
        cmd: TokensCmd,
    },
    /// Print a shell completion script to stdout.
    #[command(after_help = "Examples:\n  \
        invctl completions bash > /etc/bash_completion.d/invctl\n  \
        invctl completions zsh > \"${fpath[1]}/_invctl\"\n  \
        invctl completions fish > ~/.config/fish/completions/invctl.fish")]
    Completions { shell: clap_complete::Shell },
}

#[derive(clap::Args)]
struct CertsDir {
    /// Where the CA and the certificates live (created with mode 0700).
    #[arg(long, env = "FLASHSTOCK_CERTS_DIR", default_value = "certs")]
    dir: std::path::PathBuf,
    /// Validity in days.
    #[arg(long)]
    days: Option<i64>,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Subcommand)]
enum CertsCmd {
    /// A new cluster CA: ca.pem and ca.key (mode 0600).
    Init {
        #[command(flatten)]
        dir: CertsDir,
    },
    /// A node certificate: role flashstock://node/ID, names flashstock-node and ADDR's host.
    Node {
        #[arg(long)]
        id: u64,
        /// The node's advertised host:port.
        #[arg(long)]
        addr: String,
        #[command(flatten)]
        dir: CertsDir,
    },
    /// The gateways' certificate (flashstock://gateway); --host for each name it serves
    /// HTTPS under.
    Gateway {
        #[arg(long, value_delimiter = ',')]
        host: Vec<String>,
        #[command(flatten)]
        dir: CertsDir,
    },
    /// An operator's certificate (flashstock://admin/NAME) for invctl --cert.
    Admin {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        dir: CertsDir,
    },
}

#[derive(Subcommand)]
enum TokensCmd {
    /// A fresh random token with the given scopes.
    New {
        /// Of orders, catalog, read.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Who holds it (a comment in the config).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Check a snapshot file: magic, format version, every record, record count and CRC.
    /// Exit 0 when a node could install it, 1 when not.
    Verify {
        file: std::path::PathBuf,
        #[command(flatten)]
        output: OutputArg,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Cmd::Demo { .. } | Cmd::Restore { .. }) {
        match cli.tls.dialer() {
            Ok(dialer) => admin::use_dialer(dialer),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(exit_code::ERROR);
            }
        }
    }
    let result = match cli.command {
        Cmd::Demo {
            flash_sale,
            exit,
            gateway,
            base_port,
            tokens,
            https,
            insecure,
            output,
        } => demo::run(demo::DemoOptions {
            gateway,
            base_port,
            tokens,
            https,
            insecure,
            flash_sale,
            exit,
            out: output.format(),
        })
        .await
        .map(|()| exit_code::OK),
        Cmd::Status { nodes, output } => run_status(&nodes.nodes, output.format()).await,
        Cmd::AddNode {
            id,
            addr,
            nodes,
            output,
        } => {
            let out = output.format();
            match membership::add_node(&nodes.nodes, id, &addr, out).await {
                Ok(added) => out.emit(&added, membership::print_added),
                Err(e) => Err(e),
            }
            .map(|()| exit_code::OK)
        }
        Cmd::RemoveNode {
            id,
            force,
            nodes,
            output,
        } => {
            let out = output.format();
            match membership::remove_node(&nodes.nodes, id, force, out).await {
                Ok(removed) => out.emit(&removed, membership::print_removed),
                Err(e) => Err(e),
            }
            .map(|()| exit_code::OK)
        }
        Cmd::Snapshot {
            offline: Some(SnapshotCmd::Verify { file, output }),
            ..
        } => snapshot_file::verify(&file)
            .and_then(|v| output.format().emit(&v, snapshot_file::print))
            .map(|()| exit_code::OK),
        Cmd::Snapshot {
            offline: None,
            node,
            nodes,
            output,
        } => {
            let out = output.format();
            match membership::snapshot(&nodes.nodes, node, out).await {
                Ok(built) => out.emit(&built, membership::print_snapshot),
                Err(e) => Err(e),
            }
            .map(|()| exit_code::OK)
        }
        Cmd::Restore {
            snapshot,
            config,
            cluster_id,
            output,
        } => restore::run(&snapshot, &config, cluster_id)
            .await
            .and_then(|r| output.format().emit(&r, restore::print))
            .map(|()| exit_code::OK),
        Cmd::Bench {
            seconds,
            base_port,
            output,
        } => run_bench(seconds, base_port, output.format())
            .await
            .map(|()| exit_code::OK),
        Cmd::Events {
            after,
            follow,
            gateway,
            https_ca,
            token,
            output,
        } => events::run(
            events::EventsOptions {
                gateway: node::cli::gateway_http::GatewayAddr {
                    addr: gateway,
                    https_ca,
                },
                after,
                follow,
                token,
            },
            output.format(),
        )
        .await
        .map(|()| exit_code::OK),
        Cmd::Certs { cmd } => run_certs(cmd).map(|()| exit_code::OK),
        Cmd::Tokens {
            cmd: TokensCmd::New { scopes, name },
        } => new_token(&scopes, name.as_deref()).map(|()| exit_code::OK),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "invctl", &mut std::io::stdout());
            Ok(exit_code::OK)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code::ERROR)
        }
    }
}

fn run_certs(cmd: CertsCmd) -> anyhow::Result<()> {
    use cluster_config::mtls::certs::{host_of, CA_DAYS, LEAF_DAYS};
    use cluster_config::mtls::Role;
    let (written, dir) = match cmd {
        CertsCmd::Init { dir } => (certs::init(&dir.dir, dir.days.unwrap_or(CA_DAYS))?, dir),
        CertsCmd::Node { id, addr, dir } => {
            anyhow::ensure!(id > 0, "node ids start at 1");
            let hosts = vec![host_of(&addr)?];
            let days = dir.days.unwrap_or(LEAF_DAYS);
            (certs::issue(&dir.dir, Role::Node(id), hosts, days)?, dir)
        }
        CertsCmd::Gateway { host, dir } => {
            let days = dir.days.unwrap_or(LEAF_DAYS);
            (certs::issue(&dir.dir, Role::Gateway, host, days)?, dir)
        }
        CertsCmd::Admin { name, dir } => {
            anyhow::ensure!(
                cluster_config::mtls::role::valid_admin_name(&name),
                "--name must be 1-64 characters from A-Z a-z 0-9 . _ -"
            );
            let days = dir.days.unwrap_or(LEAF_DAYS);
            (
                certs::issue(&dir.dir, Role::Admin(name), vec![], days)?,
                dir,
            )
        }
    };
    dir.output.format().emit(&written, certs::print)
}

fn new_token(scopes: &[String], name: Option<&str>) -> anyhow::Result<()> {
    const SCOPES: [&str; 3] = ["orders", "catalog", "read"];
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        anyhow::bail!("{bad:?} is not a scope; use orders, catalog or read");
    }
    let token = cluster_config::mtls::token::generate()?;
    println!("token (shown only now; give it to the client): {token}");
    println!("\nfor the gateway's config:\n[[tokens]]");
    if let Some(name) = name {
        println!("name = {name:?}");
    }
    println!(
        "sha256 = \"{}\"",
        cluster_config::mtls::token::hash_hex(&token)
    );
    println!("scopes = {scopes:?}");
    Ok(())
}

async fn run_status(nodes: &[String], out: Format) -> anyhow::Result<u8> {
    let s = status::collect(nodes).await?;
    out.emit(&s, status::print)?;
    Ok(if s.healthy {
        exit_code::OK
    } else {
        exit_code::UNHEALTHY
    })
}

async fn run_bench(seconds: u64, base_port: u16, out: Format) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cluster = LocalCluster::start(3, base_port, dir.path(), "warn")?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let client = bench::arc_client(cluster.addrs());
    out.progress(format_args!(
        "raft bench: 3 nodes on 127.0.0.1, log fdatasynced per entry, data in {}",
        dir.path().display()
    ));
    bench::prepare(&client, 10_000).await?;
    out.progress(bench::header());
    let mut rows = Vec::new();
    let duration = Duration::from_secs(seconds);
    for (name, skus, callers) in [
        ("hot sku", 1, 64),
        ("hot sku", 1, 256),
        ("10,000 skus", 10_000, 256),
    ] {
        let w = Workload {
            name: name.to_string(),
            skus,
            callers,
            duration,
        };
        let run_id = format!("{}-{callers}", name.replace([' ', ','], ""));
        let figures = bench::run(&client, &w, &run_id).await;
        let row = bench::Row::new(&w, &figures);
        out.progress(bench::line(&row));
        rows.push(row);
    }
    cluster.stop();
    // The table was printed row by row as each workload finished.
    out.emit(&rows, |_| {})
}
