//! One node process on its own: what it does to itself at start (`--log-format json`,
//! transparent huge pages off, see `main.rs`) and what it logs as it becomes leader, checked
//! from outside.

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStderr, Command, Stdio};

/// A one-node cluster's node started with `args`, its stderr's lines, and the dir that must
/// outlive it.
fn start(args: &[&str]) -> (Child, Lines<BufReader<ChildStderr>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = &cluster_config::local_cluster(1, port, dir.path())[0];
    let path = dir.path().join("node.toml");
    std::fs::write(&path, config.to_toml_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flashstock-node"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines, dir)
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_node_logs_json_lines_when_asked() {
    let (child, lines, _dir) = start(&["--log-format", "json"]);
    let mut seen = Vec::new();
    for line in lines.take(20) {
        let line = line.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        let listening = v["fields"]["message"] == "node listening";
        seen.push(line);
        if listening {
            break;
        }
    }
    stop(child);
    assert!(
        seen.iter().any(|l| l.contains("node listening")),
        "{seen:?}"
    );
}

#[test]
fn a_running_node_has_transparent_huge_pages_off() {
    let (child, lines, _dir) = start(&[]);
    let started = lines
        .take(50)
        .any(|line| line.unwrap().contains("node listening"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    stop(child);
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

/// Elections are logged at `info` under the node's default filter (openraft at `warn`).
#[test]
fn a_node_logs_its_election_at_info() {
    let (child, lines, _dir) = start(&[]);
    let mut wanted = [
        "leader changed term=1 leader=1",
        "role changed term=1 role=Leader",
    ]
    .into_iter()
    .collect::<std::collections::BTreeSet<_>>();
    // Read on a thread of its own: a node that never logs the lines must fail the test, not
    // hang it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !wanted.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => wanted.retain(|w| !line.contains(w)),
            Err(_) => break,
        }
    }
    stop(child);
    assert!(wanted.is_empty(), "never logged: {wanted:?}");
}
