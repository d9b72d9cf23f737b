//! The node turns transparent huge pages off for itself: with them, mimalloc's returned and
//! re-touched memory cost a 2 MiB zeroing each time (see `main.rs`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn a_running_node_has_transparent_huge_pages_off() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = &cluster_config::local_cluster(1, port, dir.path())[0];
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config.to_toml_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_node"))
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .take(50)
        .any(|line| line.unwrap().contains("node listening"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(started, "the node did not start");
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .map(str::trim);
    // Kernels before 6.x do not report the flag; there is nothing to check then.
    if let Some(thp) = thp {
        assert_eq!(thp, "0", "THP_enabled in /proc/<node>/status");
    }
}
