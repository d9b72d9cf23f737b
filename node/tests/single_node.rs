//! One node process on its own: what it does to itself at start (`--log-format json`,
//! transparent huge pages off, see `main.rs`) and what it logs as it becomes leader, checked
//! from outside.

use cluster_config::launch::{self, Layout, Nodes, Spawn};
use std::time::{Duration, Instant};

/// A one-node cluster's node started with `args`, and the dir that must outlive it.
fn start(args: &[&str]) -> (Nodes, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = launch::free_ports(1)[0];
    let configs = cluster_config::local_cluster(1, port, dir.path());
    let spawn = Spawn {
        extra_args: args.iter().map(Into::into).collect(),
        ..Spawn::default()
    }
    .env("RUST_LOG", "info");
    let binary = env!("CARGO_BIN_EXE_flashstock-node").into();
    let mut node = Nodes::new(dir.path(), configs, binary, spawn, Layout::Flat);
    node.start(1).unwrap();
    (node, dir)
}

/// The node's log lines up to the first that `last` accepts, or all of them if none does
/// within 30 s (a node that never logs it must fail the test, not hang it).
fn lines_until(node: &Nodes, mut last: impl FnMut(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = node.log(1);
        // Only complete lines: the node may be halfway through writing the next one.
        let complete = log.rfind('\n').map_or("", |end| &log[..end]);
        let lines: Vec<String> = complete.lines().map(str::to_owned).collect();
        if let Some(at) = lines.iter().position(|l| last(l)) {
            return lines[..=at].to_vec();
        }
        if Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_node_logs_json_lines_when_asked() {
    let (mut node, _dir) = start(&["--log-format", "json"]);
    let seen = lines_until(&node, |l| l.contains("node listening"));
    node.kill(1);
    for line in &seen {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(
        seen.iter().any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["fields"]["message"] == "node listening")
        }),
        "{seen:?}"
    );
}

#[test]
fn a_running_node_has_transparent_huge_pages_off() {
    let (mut node, _dir) = start(&[]);
    let started = lines_until(&node, |l| l.contains("node listening"))
        .iter()
        .any(|l| l.contains("node listening"));
    let pid = node.pid(1).expect("the node is running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    node.kill(1);
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
    let (mut node, _dir) = start(&[]);
    let wanted = [
        "leader changed term=1 leader=1",
        "role changed term=1 role=Leader",
    ];
    let mut missing: Vec<&str> = wanted.to_vec();
    lines_until(&node, |line| {
        missing.retain(|w| !line.contains(w));
        missing.is_empty()
    });
    node.kill(1);
    assert!(missing.is_empty(), "never logged: {missing:?}");
}

/// The config's `workers` sizes the runtime, as the runtime itself counts its workers
/// (`local_cluster` gives its nodes one each). Thread names cannot tell: tokio names its
/// blocking threads as it names its workers.
#[test]
fn a_node_runs_as_many_runtime_workers_as_its_config_says() {
    for workers in [1usize, 3] {
        let dir = tempfile::tempdir().unwrap();
        let port = launch::free_ports(1)[0];
        let mut configs = cluster_config::local_cluster(1, port, dir.path());
        configs[0].workers = Some(workers);
        let binary = env!("CARGO_BIN_EXE_flashstock-node").into();
        let spawn = Spawn::default().env("RUST_LOG", "info");
        let mut node = Nodes::new(dir.path(), configs, binary, spawn, Layout::Flat);
        node.start(1).unwrap();
        let seen = lines_until(&node, |l| l.contains("node listening"));
        node.kill(1);
        let listening = seen
            .iter()
            .find(|l| l.contains("node listening"))
            .unwrap_or_else(|| panic!("the node did not start: {seen:?}"));
        assert!(
            listening.contains(&format!("runtime_workers={workers}")),
            "workers = {workers}: {listening}"
        );
    }
}
