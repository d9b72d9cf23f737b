//! `invctl restore`: a new cluster started from a backup snapshot serves exactly the
//! backed-up state with its own membership, and restore refuses what it must not touch.

mod common;

use common::*;
use node::cli::admin;
use proto::admin::StateDigestRequest;
use state_machine::{Command, OrderId, Outcome};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};
use std::time::Duration;

fn invctl(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_invctl"))
        .args(args)
        .output()
        .expect("run invctl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn restore(snapshot: &Path, config: &Path) -> Output {
    invctl(&[
        "restore",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--output",
        "json",
    ])
}

fn refused(out: &Output, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "restore should exit 1: {}",
        text(out)
    );
    assert!(
        text(out).contains(needle),
        "expected {needle:?} in: {}",
        text(out)
    );
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn digest(addr: &str) -> (u64, u64) {
    let mut client = admin::connect(addr, Duration::from_secs(5)).await.unwrap();
    let reply = client
        .state_digest(StateDigestRequest {})
        .await
        .unwrap()
        .into_inner();
    (reply.applied_index, reply.digest)
}

/// Node `id` of `cluster` exits with an error instead of serving.
fn node_refuses_to_start(cluster: &mut Cluster, id: u64, needle: &str) {
    cluster.restart(id);
    let Some(status) = cluster.wait_exit(id, Duration::from_secs(10)) else {
        cluster.kill(id);
        panic!("the node started on an unfinished restore");
    };
    assert!(!status.success());
    let log = cluster.log(id);
    assert!(log.contains(needle), "expected {needle:?} in: {log}");
}

/// The snapshot file node `id`'s `current.json` names.
fn current_snapshot(cluster: &Cluster, id: u64) -> PathBuf {
    let dir = cluster.configs[id as usize - 1].data_dir.join("snapshots");
    let current: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("current.json")).unwrap()).unwrap();
    dir.join(current["file"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_cluster_restored_from_a_snapshot_serves_the_old_state_with_its_own_members() {
    let mut old = Cluster::start(3, |_| {});
    let client = old.client();
    client
        .submit(&[create("A", 100), create("B", 3)])
        .await
        .unwrap();
    // A leader change first, so the snapshot's term is above a fresh node's: the restored
    // vote must carry it.
    let first = old.leader(&[1, 2, 3]).await;
    old.stop(first);
    old.restart(first);
    let mut order_ids = Vec::new();
    for i in 0..30 {
        let id = format!("o-{i}");
        let sku = if i % 3 == 0 { "B" } else { "A" };
        let (outcomes, _) = client
            .submit(&[order(&id, &format!("u-{i}"), sku, 1)])
            .await
            .unwrap();
        if matches!(outcomes[0], Outcome::Order { .. }) && i % 2 == 0 {
            let pay = Command::Pay {
                order_id: OrderId::new(id.as_str()).unwrap(),
                payment_ref: None,
                request_tag: 0,
            };
            client.submit(&[pay]).await.unwrap();
        }
        order_ids.push(id);
    }
    let leader = old.leader(&[1, 2, 3]).await;
    let out = old.invctl(&["snapshot", "--node", &leader.to_string()], &[1, 2, 3]);
    assert!(out.status.success(), "{}", text(&out));
    let backup = old.dir.path().join("backup.snap");
    std::fs::copy(current_snapshot(&old, leader), &backup).unwrap();
    let (old_index, old_digest) = digest(&old.addr(leader)).await;
    let old_status = admin::status(&old.addr(leader)).await.unwrap();
    let old_term = old_status.term;
    let old_cluster_id = old_status.cluster_id.clone();
    assert_eq!(old_cluster_id.len(), 32, "the old cluster has an id");
    assert!(old_term >= 2, "the old cluster never changed leader");
    let mut old_skus = Vec::new();
    for sku in ["A", "B"] {
        old_skus.push(client.get_sku(sku).await.unwrap().unwrap());
    }
    let mut old_orders = Vec::new();
    for id in &order_ids {
        old_orders.push(client.get_order(id).await.unwrap());
    }
    let old_addrs = old.addrs();
    old.stop_all();

    let mut new = Cluster::configure(3, |_| {});
    assert!(new.addrs().iter().all(|a| !old_addrs.contains(a)));

    // Refusals, each leaving the data dir as it was.
    let occupied = &new.configs[0].data_dir;
    std::fs::create_dir_all(occupied).unwrap();
    std::fs::write(occupied.join("something"), b"a node's state").unwrap();
    refused(&restore(&backup, &new.config_path(1)), "is not empty");
    assert_eq!(entries(occupied), ["something"]);
    std::fs::remove_file(occupied.join("something")).unwrap();

    let mut corrupt = std::fs::read(&backup).unwrap();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x40;
    let corrupt_path = new.dir.path().join("corrupt.snap");
    std::fs::write(&corrupt_path, corrupt).unwrap();
    refused(
        &restore(&corrupt_path, &new.config_path(1)),
        "is not a usable snapshot",
    );
    assert!(entries(occupied).is_empty());

    let bad_config = new.dir.path().join("bad.toml");
    let text_of_1 = std::fs::read_to_string(new.config_path(1)).unwrap();
    std::fs::write(&bad_config, text_of_1.replace("id = 1", "id = 0")).unwrap();
    refused(&restore(&backup, &bad_config), "is not a valid node config");
    let mut joiner = new.configs[0].clone();
    joiner.initial_members.clear();
    std::fs::write(&bad_config, joiner.to_toml_string()).unwrap();
    refused(&restore(&backup, &bad_config), "initial_members must list");
    assert!(entries(occupied).is_empty());

    // A restore that crashed midway: the node refuses the dir, a rerun starts over.
    let crashed = new.configs[2].data_dir.clone();
    std::fs::create_dir_all(crashed.join("db")).unwrap();
    std::fs::write(crashed.join("db").join("half"), b"half a restore").unwrap();
    std::fs::write(crashed.join("RESTORE-UNFINISHED"), b"").unwrap();
    node_refuses_to_start(&mut new, 3, "did not finish");

    let mut restored_ids = Vec::new();
    for id in 1..=3 {
        let out = restore(&backup, &new.config_path(id));
        assert!(out.status.success(), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["node_id"], id);
        restored_ids.push(report["cluster_id"].as_str().unwrap().to_string());
        assert_eq!(report["last_log_index"], old_index);
        assert!(report["records"].as_u64().unwrap() > 30, "{report}");
    }
    assert!(!crashed.join("db").join("half").exists());
    assert!(!crashed.join("RESTORE-UNFINISHED").exists());

    // Restored alike, the nodes agree on an id of their own without having talked.
    assert_eq!(restored_ids[0].len(), 32, "{restored_ids:?}");
    assert!(
        restored_ids.iter().all(|i| *i == restored_ids[0]),
        "{restored_ids:?}"
    );
    assert_ne!(
        restored_ids[0], old_cluster_id,
        "the backed-up cluster's id was reused"
    );

    new.spawn_all();
    let leader = new.leader(&[1, 2, 3]).await;
    let status = admin::status(&new.addr(leader)).await.unwrap();
    for id in 1..=3 {
        let member = admin::status(&new.addr(id)).await.unwrap();
        assert_eq!(member.cluster_id, restored_ids[0], "node {id}'s cluster id");
    }
    assert!(
        status.term > old_term,
        "the new cluster's term {} went back from the snapshot's {old_term}",
        status.term
    );
    let members: Vec<String> = status.members.iter().map(|m| m.addr.clone()).collect();
    let mut expected = new.addrs();
    expected.sort();
    let mut sorted = members.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "the membership is the new config's");
    assert!(members.iter().all(|a| !old_addrs.contains(a)));
    for id in 1..=3 {
        let (_, d) = digest(&new.addr(id)).await;
        assert_eq!(d, old_digest, "node {id}'s state is not the snapshot's");
    }
    let client = new.client();
    for (sku, before) in ["A", "B"].iter().zip(&old_skus) {
        assert_eq!(client.get_sku(sku).await.unwrap().as_ref(), Some(before));
    }
    for (id, before) in order_ids.iter().zip(&old_orders) {
        assert_eq!(&client.get_order(id).await.unwrap(), before, "order {id}");
    }

    let (outcomes, _) = client
        .submit(&[order("after-restore", "u-new", "A", 1)])
        .await
        .unwrap();
    assert!(matches!(outcomes[0], Outcome::Order { .. }), "{outcomes:?}");
    let after = client.get_sku("A").await.unwrap().unwrap();
    assert_eq!(after.reserved, old_skus[0].reserved + 1);
}
