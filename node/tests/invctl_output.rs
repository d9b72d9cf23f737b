//! `--output json` on every `invctl` command: stdout is exactly one JSON document (progress
//! goes to stderr), with the fields a script needs.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "invctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Three consecutive loopback ports that are free right now, for commands that take a base
/// port.
fn consecutive_free_ports() -> u16 {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        if base > u16::MAX - 3 {
            continue;
        }
        let rest: Vec<_> = (1..3)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)))
            .collect();
        if rest.iter().all(|r| r.is_ok()) {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_commands_print_one_json_document_each() {
    let mut cluster = Cluster::start(3, |_| {});
    cluster.leader(&[1, 2, 3]).await;

    let status = json(&cluster.invctl(&["status", "--output", "json"], &[1]));
    assert_eq!(status["healthy"], true);
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3);
    // The old spelling still works.
    assert_eq!(
        json(&cluster.invctl(&["status", "--json"], &[1]))["voters"],
        3
    );
    // Table is the default.
    let table = cluster.invctl(&["status"], &[1]);
    assert!(String::from_utf8_lossy(&table.stdout).starts_with("leader: "));

    let n4 = cluster.spawn_extra(|_| {});
    let addr4 = cluster.addr(n4);
    let id4 = n4.to_string();
    let add = cluster.invctl(
        &[
            "add-node", "--id", &id4, "--addr", &addr4, "--output", "json",
        ],
        &[1],
    );
    assert!(String::from_utf8_lossy(&add.stderr).contains("caught up"));
    let added = json(&add);
    assert_eq!(added["id"], n4);
    assert_eq!(added["addr"], addr4.as_str());
    assert_eq!(added["changed"], true);
    // Right after the promotion the new voter is a follower (or leads), never a learner,
    // even before it has applied the change that promoted it.
    let after = json(&cluster.invctl(&["status", "--output", "json"], &[1]));
    let row = after["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == n4)
        .unwrap_or_else(|| panic!("node {n4} missing: {after}"))
        .clone();
    assert_eq!(row["voter"], true, "{after}");
    assert!(
        row["role"] == "follower" || row["role"] == "leader",
        "{after}"
    );
    let again = json(&cluster.invctl(
        &[
            "add-node", "--id", &id4, "--addr", &addr4, "--output", "json",
        ],
        &[1],
    ));
    assert_eq!(again["changed"], false);

    let built = json(&cluster.invctl(&["snapshot", "--output", "json"], &[1]));
    assert!(built["snapshot_index"].as_u64().unwrap() > 0, "{built}");
    assert!(built["node_id"].as_u64().is_some(), "{built}");

    let removed = json(&cluster.invctl(&["remove-node", "--id", &id4, "--output", "json"], &[1]));
    assert_eq!(removed["id"], n4);
    assert_eq!(removed["was_voter"], true);
}

#[test]
fn bench_prints_its_rows_as_json() {
    let base = consecutive_free_ports().to_string();
    let out = Process::new(env!("CARGO_BIN_EXE_invctl"))
        .args([
            "bench",
            "--seconds",
            "1",
            "--base-port",
            &base,
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert!(row["orders"].as_u64().unwrap() > 0, "{row}");
        assert!(row["p99_ms"].as_f64().unwrap() >= row["p50_ms"].as_f64().unwrap());
    }
}

/// `invctl demo --exit --output json` with `extra` flags: the Ready document.
fn demo_ready(extra: &[&str]) -> (String, Value) {
    let base = consecutive_free_ports();
    let gateway = format!("127.0.0.1:{}", free_port_outside(base));
    let out = Process::new(env!("CARGO_BIN_EXE_invctl"))
        .args(["demo", "--exit", "--gateway", &gateway, "--output", "json"])
        .args(["--base-port", &base.to_string()])
        .args(extra)
        .output()
        .unwrap();
    (gateway, json(&out))
}

#[test]
fn demo_prints_where_it_serves_as_json() {
    let (gateway, ready) = demo_ready(&[]);
    assert_eq!(ready["gateway"], gateway.as_str());
    assert_eq!(ready["status_page"], format!("http://{gateway}/ui/"));
    assert_eq!(ready["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(ready["status"]["healthy"], true);
    assert!(ready["data_dir"].as_str().is_some());
    assert!(
        ready["admin_tls"]["ca"].is_string(),
        "mTLS by default: {ready}"
    );
}

/// `kill <demo>` (SIGTERM) stops the demo as Ctrl-C does: its nodes and gateway exit and its
/// data dir is gone.
#[test]
fn demo_stops_its_processes_and_removes_its_data_on_sigterm() {
    let base = consecutive_free_ports();
    let gateway = format!("127.0.0.1:{}", free_port_outside(base));
    let mut demo = Process::new(env!("CARGO_BIN_EXE_invctl"))
        .args(["demo", "--gateway", &gateway, "--output", "json"])
        .args(["--base-port", &base.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let ready: Value = serde_json::Deserializer::from_reader(stdout)
        .into_iter()
        .next()
        .expect("a ready document")
        .expect("JSON");
    let data_dir = std::path::PathBuf::from(ready["data_dir"].as_str().unwrap());
    assert!(data_dir.is_dir(), "{ready}");
    let running_from_it = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|cmd| String::from_utf8_lossy(cmd).contains(data_dir.to_str().unwrap()))
            .count()
    };
    assert_eq!(running_from_it(), 4, "three nodes and a gateway");
    {
        // A failed check must not leave the demo's nodes running: SIGTERM stops them all.
        let term_on_panic = TermOnPanic(demo.id());
        demo_logs_no_line_per_request(&gateway, &data_dir);
        demo_runs_one_runtime_thread_per_process(&data_dir);
        std::mem::forget(term_on_panic);
    }

    let killed = Process::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert_eq!(running_from_it(), 0, "processes left running");
    assert!(!data_dir.exists(), "{} left behind", data_dir.display());
}

/// The demo is what newcomers benchmark, so its processes log with the default filters: a
/// line per request costs the hot path (an A/B once found the demo's nodes logging each
/// submit, with a seventh more leader CPU per order). Takes an order through the running
/// demo, then reads every log in its data dir.
fn demo_logs_no_line_per_request(gateway: &str, data_dir: &std::path::Path) {
    let sku = r#"{"sku":"log-filter","stock":5}"#;
    let order = r#"{"order_id":"lf-1","user_id":"u-1","items":[{"sku":"log-filter","qty":1}]}"#;
    assert!(http_post(gateway, "/v1/skus", sku).starts_with("HTTP/1.1 201"));
    assert!(http_post(gateway, "/v1/orders", order).starts_with("HTTP/1.1 201"));
    let per_request = format!(" {}:", cluster_config::logging::REQUESTS);
    let logs: Vec<_> = std::fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    assert_eq!(logs.len(), 4, "three node logs and the gateway's: {logs:?}");
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap();
        let line = text.lines().find(|l| l.contains(&per_request));
        assert!(line.is_none(), "{}: {line:?}", log.display());
    }
}

/// The demo's four processes share the machine's cores, so each runs one runtime thread: a
/// gateway at one per core served fewer orders at a worse p99 (README, "One gateway thread in
/// the demo").
/// Read from the line each process logs as it starts.
fn demo_runs_one_runtime_thread_per_process(data_dir: &std::path::Path) {
    let log = |name: &str| std::fs::read_to_string(data_dir.join(name)).unwrap();
    let gateway = log("gateway.log");
    let starting = gateway.lines().find(|l| l.contains("starting gateway"));
    assert!(
        starting.is_some_and(|l| l.contains(" workers=1")),
        "gateway: {starting:?}"
    );
    for id in 1..=3 {
        let node = log(&format!("node{id}.log"));
        let listening = node.lines().find(|l| l.contains("runtime_workers="));
        assert!(
            listening.is_some_and(|l| l.contains("runtime_workers=1")),
            "node {id}: {listening:?}"
        );
    }
}

struct TermOnPanic(u32);

impl Drop for TermOnPanic {
    fn drop(&mut self) {
        let _ = Process::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

/// One HTTP/1.1 POST of a JSON body, answered and closed: the status line and the rest.
fn http_post(addr: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}

/// The demo reports ready only once its gateway answered `/healthz` over TLS with the
/// certificate it made, checked against its CA: a ready document is that check passing.
#[test]
fn demo_https_serves_the_api_over_tls() {
    let (gateway, ready) = demo_ready(&["--https"]);
    assert_eq!(ready["url"], format!("https://{gateway}"), "{ready}");
    assert_eq!(ready["status_page"], format!("https://{gateway}/ui/"));
    assert!(
        ready["https_ca"].as_str().unwrap().ends_with("ca.pem"),
        "{ready}"
    );
    assert_eq!(ready["status"]["healthy"], true, "{ready}");
}

#[test]
fn demo_https_needs_the_certificates_insecure_leaves_out() {
    let out = Process::new(env!("CARGO_BIN_EXE_invctl"))
        .args(["demo", "--exit", "--https", "--insecure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--insecure"), "{stderr}");
}

#[test]
fn demo_insecure_runs_without_certificates() {
    let (_, ready) = demo_ready(&["--insecure"]);
    assert_eq!(ready["status"]["healthy"], true, "{ready}");
    assert!(ready["admin_tls"].is_null(), "no certificates: {ready}");
}

fn free_port_outside(base: u16) -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !(base..base + 3).contains(&port) {
            return port;
        }
    }
}
