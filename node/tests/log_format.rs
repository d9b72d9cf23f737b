//! `node --log-format json`: the node's log lines are JSON objects, as the gateway's are.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn a_node_logs_json_lines_when_asked() {
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
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
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
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("node listening")),
        "{seen:?}"
    );
}
