//! `--log-format json`: every line the gateway logs is one JSON object a log shipper can read,
//! with level, target and message; the default stays text for people.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The first `n` lines the gateway logs at start-up with `format`, then it is stopped.
fn first_lines(format: &str, n: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flashstock-gateway"))
        .args(["--log-format", format, "--nodes", "127.0.0.1:1"])
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .take(n)
        .map(Result::unwrap)
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

#[test]
fn json_logs_are_one_object_per_line() {
    let lines = first_lines("json", 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["target"].is_string(), "{line}");
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("starting gateway")),
        "{lines:?}"
    );
}

#[test]
fn text_is_the_default_and_unknown_formats_are_refused() {
    let line = &first_lines("text", 1)[0];
    assert!(
        serde_json::from_str::<serde_json::Value>(line).is_err(),
        "{line}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_flashstock-gateway"))
        .args(["--log-format", "yaml", "--nodes", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("use text or json"));
}
