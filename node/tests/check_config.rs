//! `flashstock-node --check-config FILE`: 0 and a summary for a valid config, 1 and the reason for an
//! invalid one, without starting a node.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashstock-node"))
        .arg("--check-config")
        .arg(path)
        .output()
        .expect("run node")
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cluster-config/samples")
        .join(name)
}

#[test]
fn a_valid_config_prints_its_summary_and_exits_0() {
    let out = check(&sample("three-node/node2.toml"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("node 2\n"), "{text}");
    assert!(text.contains("advertise  127.0.0.1:7002"), "{text}");
    assert!(text.contains("waits for the lowest id"), "{text}");
    assert!(
        text.contains("runtime    1 threads (set by workers)"),
        "{text}"
    );
    assert!(text.contains("node2.toml: valid"), "{text}");

    let out = check(&sample("join/node4.toml"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("waits to be added"), "{text}");
}

#[test]
fn an_invalid_config_names_the_problem_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let valid = std::fs::read_to_string(sample("three-node/node1.toml")).unwrap();
    let cases = [
        (
            valid.replace(
                "election_timeout_min_ms = 600",
                "election_timeout_min_ms = 5000",
            ),
            "raft.election_timeout",
        ),
        (valid.replace("id = 1", "id = 0"), "id: is 0"),
        (valid.replace("workers = 1", "workers = 0"), "workers: is 0"),
        (format!("{valid}\nbogus = 1\n"), "bogus"),
        (
            valid.replace(
                "advertise = \"127.0.0.1:7001\"",
                "advertise = \"127.0.0.1:7009\"",
            ),
            "initial_members.1",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = check(&path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {i}: {err}");
        assert!(
            err.contains(needle),
            "case {i}: expected {needle:?} in {err}"
        );
        assert!(out.stdout.is_empty(), "case {i} printed a summary");
    }
    let out = check(&dir.path().join("missing.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config file"));
}

#[test]
fn config_and_check_config_are_exclusive_and_one_is_required() {
    let node = env!("CARGO_BIN_EXE_flashstock-node");
    let file = sample("three-node/node1.toml");
    let both = Command::new(node)
        .arg("--config")
        .arg(&file)
        .arg("--check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    let neither = Command::new(node).output().unwrap();
    assert_eq!(neither.status.code(), Some(2));
}
