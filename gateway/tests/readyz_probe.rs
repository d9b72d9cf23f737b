//! `/readyz` on an idle gateway probes the leader, but concurrent calls share one probe: a
//! crowd of health checkers cannot start a read-index round each.

mod support;

use support::{config, get, FakeNode};

#[tokio::test]
async fn concurrent_readyz_calls_share_one_probe() {
    let node = FakeNode::start(1).await;
    let app = gateway::app(&config(vec![node.addr.clone()])).unwrap();
    node.close_gate().await;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { get(&app, "/readyz").await.status })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    node.open_gate();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert!(
        node.reads() <= 2,
        "{} probes reached the node",
        node.reads()
    );
}
