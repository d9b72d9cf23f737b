//! `invctl`'s exit codes, which rollout gates branch on: 0 healthy, 3 unhealthy, 1 error,
//! and 2 only for clap's usage errors.

mod common;

use common::*;
use std::process::{Command as Process, Output};

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or_else(|| {
        panic!(
            "invctl died by a signal: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn invctl_bare(args: &[&str]) -> Output {
    Process::new(env!("CARGO_BIN_EXE_invctl"))
        .args(args)
        .env_remove("FLASHSTOCK_NODES")
        .output()
        .expect("run invctl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_is_0_quorum_lost_is_3() {
    let mut cluster = Cluster::start(3, |_| {});
    let leader = cluster.leader(&[1, 2, 3]).await;
    let out = cluster.invctl(&["status"], &[1, 2, 3]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));

    // FLASHSTOCK_NODES stands in for --nodes, and --nodes wins over it.
    let with_env = |env: &str, args: &[&str]| {
        Process::new(env!("CARGO_BIN_EXE_invctl"))
            .args(args)
            .env("FLASHSTOCK_NODES", env)
            .output()
            .unwrap()
    };
    let all = cluster.addrs().join(",");
    assert_eq!(code(&with_env(&all, &["status"])), 0);
    let nobody = format!("127.0.0.1:{}", free_port());
    assert_eq!(code(&with_env(&nobody, &["status"])), 1);
    assert_eq!(code(&with_env(&nobody, &["status", "--nodes", &all])), 0);

    // One node down: still a quorum.
    let follower = if leader == 1 { 2 } else { 1 };
    cluster.kill(follower);
    cluster
        .leader(&(1..=3).filter(|i| *i != follower).collect::<Vec<_>>())
        .await;
    let out = cluster.invctl(&["status"], &[1, 2, 3]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));

    // Two of three down: the survivor answers, but no quorum does.
    let survivor = (1..=3).find(|i| *i != follower && *i != leader).unwrap();
    cluster.kill(leader);
    let out = cluster.invctl(&["status"], &[1, 2, 3]);
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT HEALTHY"), "{text}");
    let out = cluster.invctl(&["status", "--json"], &[survivor]);
    assert_eq!(code(&out), 3);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["voters_answering"], 1);

    // A command that needs a leader fails as an error, not as "unhealthy".
    let out = cluster.invctl(&["remove-node", "--id", "3", "--force"], &[survivor]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
}

/// A port nothing listens on (until some other process takes it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn no_node_answering_is_an_error_not_unhealthy() {
    let out = invctl_bare(&["status", "--nodes", &format!("127.0.0.1:{}", free_port())]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node answered"));
}

#[test]
fn usage_errors_are_2_and_help_lists_the_codes() {
    for args in [
        &["status", "--no-such-flag"][..],
        &["no-such-command"],
        &["add-node", "--id", "4"],
        &["remove-node", "--id", "four"],
    ] {
        let out = invctl_bare(args);
        assert_eq!(
            code(&out),
            2,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for args in [&["--help"][..], &["status", "--help"]] {
        let out = invctl_bare(args);
        assert_eq!(code(&out), 0);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Exit codes:"), "{args:?}: {help}");
        assert!(help.contains("3  unhealthy"), "{args:?}: {help}");
    }
    let help = String::from_utf8_lossy(&invctl_bare(&["status", "--help"]).stdout).to_string();
    assert!(help.contains("[env: FLASHSTOCK_NODES"), "{help}");
}
