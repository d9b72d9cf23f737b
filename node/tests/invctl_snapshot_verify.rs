//! `invctl snapshot verify FILE` on a file a node really wrote, and on damaged copies of it.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};

fn verify(path: &Path, json: bool) -> Output {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_invctl"));
    cmd.args(["snapshot", "verify"]).arg(path);
    if json {
        cmd.args(["--output", "json"]);
    }
    cmd.output().unwrap()
}

/// The snapshot file `current.json` in a node's snapshot dir names.
fn current_snapshot(data_dir: &Path) -> PathBuf {
    let dir = data_dir.join("snapshots");
    let current: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("current.json")).unwrap()).unwrap();
    dir.join(current["file"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_written_snapshot_verifies_and_damaged_copies_do_not() {
    let cluster = Cluster::start(3, |_| {});
    cluster.leader(&[1, 2, 3]).await;
    let client = cluster.client();
    client.submit(&[create("A", 1_000)]).await.unwrap();
    for i in 0..50 {
        client
            .submit(&[order(&format!("o{i}"), "u", "A", 1)])
            .await
            .unwrap();
    }
    let built = cluster.invctl(&["snapshot", "--node", "1", "--output", "json"], &[1]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let built: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
    let file = current_snapshot(&cluster.configs[0].data_dir);

    let out = verify(&file, true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], state_machine::SNAPSHOT_VERSION);
    // One SKU, 50 orders, their holds, deadlines and user index, the clock and the marker.
    assert!(v["records"].as_u64().unwrap() > 100, "{v}");
    assert_eq!(v["bytes"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(v["last_applied_index"], built["snapshot_index"]);
    let table = verify(&file, false);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&format!(
        ": valid (format version {}",
        state_machine::SNAPSHOT_VERSION
    )));

    let bytes = std::fs::read(&file).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    let damaged = [
        ("flipped", flipped),
        ("truncated", bytes[..bytes.len() - 3].to_vec()),
        ("empty", Vec::new()),
    ];
    for (name, content) in damaged {
        let path = cluster.dir.path().join(format!("{name}.snap"));
        std::fs::write(&path, content).unwrap();
        let out = verify(&path, false);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains("is not a usable snapshot"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
    }
    let out = verify(&cluster.dir.path().join("missing.snap"), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
}
