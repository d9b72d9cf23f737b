//! `invctl demo`: a local three-node cluster and a gateway, as separate processes with data in
//! a fresh temporary directory; optionally the flash-sale scenario; stops everything on
//! Ctrl-C. The nodes' ports speak mTLS only, with a CA and certificates made in the data
//! dir; the gateway's HTTP side stays plain so the README's `curl` lines work.

use super::gateway_http::GatewayAddr;
use super::output::Format;
use super::status::{self, ClusterStatus};
use crate::launcher::LocalCluster;
use anyhow::{bail, Context};
use cluster_config::launch;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct DemoOptions {
    pub gateway: String,
    pub base_port: u16,
    /// Bearer tokens on the HTTP API: one with every scope, printed once.
    pub tokens: bool,
    /// HTTPS on the API with the gateway certificate (issued for 127.0.0.1 and localhost).
    pub https: bool,
    /// Plaintext node ports: only to measure what TLS costs.
    pub insecure: bool,
    pub flash_sale: bool,
    /// Stop after the flash sale instead of waiting for Ctrl-C (for scripts).
    pub exit: bool,
    pub out: Format,
}

/// What `demo` prints once the cluster and the gateway serve: in JSON mode a script waits for
/// this document, then talks to the addresses in it.
#[derive(Debug, Serialize)]
pub struct Ready {
    pub gateway: String,
    /// The API's base URL: `http://` or, with `--https`, `https://`.
    pub url: String,
    /// With `--https`: the CA that signed the API's certificate (curl --cacert).
    pub https_ca: Option<PathBuf>,
    /// The gateway's status page (cluster, live stock, sales, events), for a browser.
    pub status_page: String,
    pub nodes: Vec<String>,
    pub data_dir: PathBuf,
    /// The operator identity to pass to invctl (`--ca --cert --key`).
    pub admin_tls: Option<AdminTls>,
    /// With `--tokens`: the bearer token (every scope) the HTTP API requires.
    pub token: Option<String>,
    pub status: ClusterStatus,
}

#[derive(Debug, Serialize)]
pub struct AdminTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("flashstock-demo-")
        .tempdir()?;
    let out = opts.out;
    out.progress(format_args!(
        "starting 3 nodes (127.0.0.1:{}..{}) and a gateway on {}; data in {}",
        opts.base_port,
        opts.base_port + 2,
        opts.gateway,
        dir.path().display()
    ));
    // The nodes' default, per-request lines off: the demo is what newcomers benchmark.
    let log_level = cluster_config::logging::NODE_DEFAULT_FILTER;
    let mut cluster = if opts.insecure {
        out.progress(
            "warning: --insecure: the node ports speak plaintext gRPC, without certificates",
        );
        LocalCluster::start(3, opts.base_port, dir.path(), log_level)?
    } else {
        LocalCluster::start_secure(3, opts.base_port, dir.path(), log_level)?
    };
    super::admin::use_dialer(cluster.admin_dialer()?);
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let token = if opts.tokens {
        Some(cluster_config::mtls::token::generate()?)
    } else {
        None
    };
    let mut gateway_flags = Vec::new();
    let mut https_ca = None;
    if opts.https {
        let certs = cluster
            .certs
            .as_ref()
            .context("--https needs the demo's certificates, which --insecure leaves out")?;
        for (flag, path) in [
            ("--https-cert", &certs.gateway.cert),
            ("--https-key", &certs.gateway.key),
        ] {
            gateway_flags.push(flag.to_string());
            gateway_flags.push(path.display().to_string());
        }
        https_ca = Some(certs.gateway.ca.clone());
    }
    if let Some(token) = &token {
        let mut config = cluster_config::GatewayConfig::with_nodes(cluster.addrs());
        config.tokens = vec![cluster_config::ApiToken {
            name: Some("demo".into()),
            sha256: cluster_config::mtls::token::hash_hex(token),
            scopes: cluster_config::ApiToken::SCOPES.map(String::from).to_vec(),
        }];
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config.to_toml_string())?;
        gateway_flags.extend(["--config".to_string(), path.display().to_string()]);
    }
    cluster.start_gateway(&opts.gateway, &gateway_flags)?;
    let gateway = GatewayAddr {
        addr: opts.gateway.clone(),
        https_ca: https_ca.clone(),
    };
    wait_for_gateway(&gateway, Duration::from_secs(15)).await?;
    cluster.check_alive()?;

    let url = gateway.url();
    let ready = Ready {
        gateway: opts.gateway.clone(),
        status_page: format!("{url}/ui/"),
        url,
        https_ca,
        nodes: cluster.addrs(),
        data_dir: dir.path().to_path_buf(),
        admin_tls: cluster.certs.as_ref().map(|c| AdminTls {
            ca: c.admin.ca.clone(),
            cert: c.admin.cert.clone(),
            key: c.admin.key.clone(),
        }),
        token,
        status: status::collect(&cluster.addrs()).await?,
    };
    out.emit(&ready, print_ready)?;
    let gw = &opts.gateway;

    let mut failed = false;
    if opts.flash_sale {
        out.progress("flash sale: 10 units, 10,000 concurrent buyers");
        let loadgen = launch::sibling("gateway", "loadgen")?;
        let mut loadgen = tokio::process::Command::new(loadgen);
        if out == Format::Json {
            // stdout carries only the Ready document.
            loadgen.stdout(std::io::stderr());
        }
        let status = loadgen
            .args([
                "flash-sale",
                "--url",
                &format!("http://{gw}"),
                "--stock",
                "10",
                "--buyers",
                "10000",
            ])
            .status()
            .await
            .context("cannot run loadgen")?;
        failed = !status.success();
    }
    if !opts.exit {
        out.progress("running; press Ctrl-C to stop");
        stop_requested().await?;
    }
    out.progress("stopping");
    cluster.stop();
    if failed {
        bail!("the flash sale did not sell exactly its stock");
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM from `kill` or a service manager: either stops the processes and
/// removes the data dir. Without the SIGTERM arm, `kill <demo>` left three nodes and a
/// gateway running, orphaned, and the data dir behind.
async fn stop_requested() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = term.recv() => Ok(()),
    }
}

fn print_ready(ready: &Ready) {
    println!();
    status::print(&ready.status);
    println!("\nStatus page: {}", ready.status_page);
    let gw = &ready.url;
    let curl = match &ready.https_ca {
        Some(ca) => format!("curl --cacert {}", ca.display()),
        None => "curl".to_string(),
    };
    println!(
        "\nTry it:\n  {curl} -s -XPOST {gw}/v1/skus -H 'content-type: application/json' -d '{{\"sku\":\"phone\",\"stock\":10}}'\n  \
         {curl} -s -XPOST {gw}/v1/orders -H 'content-type: application/json' -d '{{\"order_id\":\"o-1\",\"user_id\":\"u-1\",\"items\":[{{\"sku\":\"phone\",\"qty\":1}}]}}'\n  \
         {curl} -s -XPOST {gw}/v1/orders/o-1/pay\n  \
         {curl} -s {gw}/v1/skus/phone\n  \
         {curl} -s {gw}/v1/cluster\n  \
         cargo run --release --bin invctl -- status --nodes {}{}\n",
        ready.nodes.join(","),
        ready
            .admin_tls
            .as_ref()
            .map(|t| format!(
                " --ca {} --cert {} --key {}",
                t.ca.display(),
                t.cert.display(),
                t.key.display()
            ))
            .unwrap_or_default()
    );
    if let Some(token) = &ready.token {
        println!(
            "The HTTP API requires a bearer token; add to every curl line above:\n  \
             -H 'authorization: Bearer {token}'\n"
        );
    }
    if let Some(t) = &ready.admin_tls {
        println!(
            "The nodes speak mTLS only. For invctl in another shell:\n  \
             export FLASHSTOCK_CA={} FLASHSTOCK_CERT={} FLASHSTOCK_KEY={}\n",
            t.ca.display(),
            t.cert.display(),
            t.key.display()
        );
    }
}

/// Waits until the gateway answers `GET /healthz` with 200, over TLS when it serves HTTPS: the
/// demo shows the addresses it prints working, not just a port open.
async fn wait_for_gateway(gateway: &GatewayAddr, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < timeout {
        match gateway.send(hyper::Request::get("/healthz")).await {
            Ok(answer) if answer.status() == hyper::StatusCode::OK => return Ok(()),
            Ok(answer) => last = format!("answered {}", answer.status()),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the gateway at {} did not answer /healthz within {timeout:?}: {last}",
        gateway.url()
    )
}
