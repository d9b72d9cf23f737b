//! `invctl demo`: a local three-node cluster and a gateway, as separate processes with data in
//! a fresh temporary directory; optionally the flash-sale scenario; stops everything on
//! Ctrl-C.

use super::status;
use crate::launcher::{sibling, LocalCluster};
use anyhow::{bail, Context};
use std::time::{Duration, Instant};

pub struct DemoOptions {
    pub gateway: String,
    pub base_port: u16,
    pub flash_sale: bool,
    /// Stop after the flash sale instead of waiting for Ctrl-C (for scripts).
    pub exit: bool,
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("flashstock-demo-")
        .tempdir()?;
    println!(
        "starting 3 nodes (127.0.0.1:{}..{}) and a gateway on {}; data in {}",
        opts.base_port,
        opts.base_port + 2,
        opts.gateway,
        dir.path().display()
    );
    let mut cluster = LocalCluster::start(3, opts.base_port, dir.path(), "info,openraft=warn")?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    cluster.start_gateway(&opts.gateway)?;
    wait_for_port(&opts.gateway, Duration::from_secs(15)).await?;
    cluster.check_alive()?;

    println!();
    status::print(&status::collect(&cluster.addrs()).await?);
    let gw = &opts.gateway;
    println!(
        "\nTry it:\n  curl -s -XPOST {gw}/v1/skus -H 'content-type: application/json' -d '{{\"sku\":\"phone\",\"stock\":10}}'\n  \
         curl -s -XPOST {gw}/v1/orders -H 'content-type: application/json' -d '{{\"order_id\":\"o-1\",\"user_id\":\"u-1\",\"items\":[{{\"sku\":\"phone\",\"qty\":1}}]}}'\n  \
         curl -s -XPOST {gw}/v1/orders/o-1/pay\n  \
         curl -s {gw}/v1/skus/phone\n  \
         curl -s {gw}/v1/cluster\n  \
         cargo run --release --bin invctl -- status --nodes {}\n",
        cluster.addrs().join(",")
    );

    let mut failed = false;
    if opts.flash_sale {
        println!("flash sale: 10 units, 10,000 concurrent buyers");
        let loadgen = sibling("loadgen")?;
        let status = tokio::process::Command::new(loadgen)
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
        println!("running; press Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    println!("stopping");
    cluster.stop();
    if failed {
        bail!("the flash sale did not sell exactly its stock");
    }
    Ok(())
}

async fn wait_for_port(addr: &str, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the gateway did not listen on {addr} within {timeout:?}")
}
