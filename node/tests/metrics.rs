//! The metrics address of real nodes: every family of `/metrics` with plausible values after
//! some writes, `/healthz`, and `/readyz` both ways (ready while healthy, 503 once the node
//! has lost its leader).

mod common;

use common::scrape::*;
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_export_every_family_and_answer_health_checks() {
    let mut cluster = Cluster::start(3, |c| {
        c.metrics_addr = Some(free_metrics_addr());
        // Snapshots after a few entries, so the build histogram has something in it.
        c.raft.snapshot_logs_since_last = 10;
        c.raft.max_in_snapshot_log_to_keep = 5;
    });
    let addrs: Vec<SocketAddr> = cluster
        .configs
        .iter()
        .map(|c| c.metrics_addr.unwrap())
        .collect();
    let metrics_addr = |id: u64| addrs[id as usize - 1];
    let client = cluster.client();
    let leader = cluster.leader(&[1, 2, 3]).await;
    client.submit(&[create("A", 1_000)]).await.unwrap();
    let mut last_index = 0;
    for i in 0..30 {
        let (_, index) = client
            .submit(&[order(&format!("o-{i}"), "u", "A", 1)])
            .await
            .unwrap();
        last_index = index;
    }
    // Several commands in one submit travel in one entry.
    let batch: Vec<_> = (0..5)
        .map(|i| order(&format!("b-{i}"), "u", "A", 1))
        .collect();
    let (_, index) = client.submit(&batch).await.unwrap();
    last_index = last_index.max(index);
    cluster.wait_applied(&[1, 2, 3], last_index).await;

    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let on_leader = scrape_until(metrics_addr(leader), "a full leader scrape", |s| {
        s.get("flashstock_node_snapshot_build_duration_seconds_count")
            .is_some_and(|n| *n >= 1.0)
            && s.get("flashstock_node_applied_index")
                .is_some_and(|i| *i >= last_index as f64)
            // The SKU's event and the 35 orders', once a checkpoint has run after them.
            && s.get("flashstock_node_events_in_memory")
                .is_some_and(|n| *n >= 36.0)
            && followers.iter().all(|f| {
                s.contains_key(&format!(
                    "flashstock_node_clock_offset_seconds{{peer=\"{f}\"}}"
                )) && s
                    .get(&format!(
                        "flashstock_node_follower_lag_entries{{follower=\"{f}\"}}"
                    ))
                    .is_some_and(|lag| *lag <= 2.0)
            })
    })
    .await;
    let s = &on_leader;
    assert!(value(s, "flashstock_node_term") >= 1.0);
    assert_eq!(value(s, "flashstock_node_leader_id"), leader as f64);
    assert_eq!(value(s, "flashstock_node_role{role=\"leader\"}"), 1.0);
    assert_eq!(value(s, "flashstock_node_role{role=\"follower\"}"), 0.0);
    assert!(
        value(s, "flashstock_node_last_log_index") >= value(s, "flashstock_node_applied_index")
    );
    assert!(value(s, "flashstock_node_snapshot_index") > 0.0);
    assert!(value(s, "flashstock_node_leader_changes_seen_total") >= 1.0);
    assert_eq!(value(s, "flashstock_node_proposals_pending"), 0.0);
    // Every submit above was one entry of its own (each waited for the previous one).
    assert!(value(s, "flashstock_node_commands_per_entry_count") >= 32.0);
    assert!(value(s, "flashstock_node_commands_per_entry_sum") >= 36.0);
    assert!(value(s, "flashstock_node_commands_per_entry_bucket{le=\"+Inf\"}") >= 32.0);
    assert!(
        value(s, "flashstock_node_commands_per_entry_bucket{le=\"4.0\"}")
            < value(s, "flashstock_node_commands_per_entry_count")
    );
    assert!(value(s, "flashstock_node_wal_fsync_duration_seconds_count") >= 32.0);
    assert!(value(s, "flashstock_node_wal_fsync_duration_seconds_sum") > 0.0);
    // A few dozen small entries fit the default cache: none was read back from disk.
    assert!(value(s, "flashstock_node_log_cached_bytes") > 0.0);
    assert_eq!(value(s, "flashstock_node_log_entries_read_back_total"), 0.0);
    // Far fewer events than a node holds: none has left memory.
    assert_eq!(value(s, "flashstock_node_events_on_disk_only"), 0.0);
    assert!(value(s, "flashstock_node_apply_duration_seconds_count") >= 1.0);
    assert!(value(s, "flashstock_node_snapshot_install_duration_seconds_count") >= 0.0);
    for f in &followers {
        let offset = value(
            s,
            &format!("flashstock_node_clock_offset_seconds{{peer=\"{f}\"}}"),
        );
        assert!(
            offset.abs() < 1.0,
            "one machine, yet an offset of {offset} s"
        );
    }

    for f in &followers {
        let s = scrape_until(metrics_addr(*f), "a follower caught up", |s| {
            s.get("flashstock_node_applied_index")
                .is_some_and(|i| *i >= last_index as f64)
        })
        .await;
        assert_eq!(value(&s, "flashstock_node_leader_id"), leader as f64);
        assert_eq!(value(&s, "flashstock_node_role{role=\"follower\"}"), 1.0);
        assert!(value(&s, "flashstock_node_wal_fsync_duration_seconds_count") >= 1.0);
        assert!(
            !s.keys()
                .any(|k| k.starts_with("flashstock_node_follower_lag_entries")),
            "a follower exports no lag"
        );
    }

    for id in 1..=3 {
        let health = get(metrics_addr(id), "/healthz").unwrap();
        assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
        let ready = get(metrics_addr(id), "/readyz").unwrap();
        assert_eq!(ready.status, 200, "node {id}: {}", ready.body);
    }
    assert_eq!(get(metrics_addr(1), "/nothing").unwrap().status, 404);

    // Alone, the last follower loses its leader: still alive, no longer ready.
    let kept = followers[0];
    for id in (1..=3).filter(|id| *id != kept) {
        cluster.stop(id);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let ready = loop {
        let ready = get(metrics_addr(kept), "/readyz").unwrap();
        if ready.status != 200 || Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.starts_with("not ready: "), "{}", ready.body);
    assert_eq!(get(metrics_addr(kept), "/healthz").unwrap().status, 200);
}

#[test]
fn a_metrics_address_in_use_stops_the_node_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cluster = Cluster::configure(1, |c| {
        c.metrics_addr = Some(taken.local_addr().unwrap());
    });
    cluster.spawn_all();
    let Some(status) = cluster.wait_exit(1, Duration::from_secs(20)) else {
        cluster.kill(1);
        panic!("the node kept running with its metrics address taken");
    };
    let log = cluster.log(1);
    assert!(!status.success());
    assert!(
        log.contains(&format!(
            "cannot listen for metrics on {} (metrics_addr)",
            taken.local_addr().unwrap()
        )),
        "{log}"
    );
}
