//! Paced watching of openraft's metrics. openraft republishes them after every append, flush,
//! replication answer and apply (hundreds of times a second under load) and wakes every task
//! that awaits a change, each time. In a `perf` profile of the leader under W2, those wake-ups
//! of the node's long-lived watchers and the tasks' runs came to about 4 % of its CPU. A
//! watcher that looks at most once per `PACE` sees the same states, later changes folded into
//! one, and while it sleeps no waiter is registered, so openraft's send wakes nobody.

use std::time::Duration;
use tokio::sync::watch;

/// Long enough to fold a busy node's reports into a few, short enough for gauges, readiness
/// and a fatal stop to follow promptly.
pub const PACE: Duration = Duration::from_millis(50);

/// The next change after at least `PACE`; `Err` once the sender is gone (Raft has stopped).
pub async fn next_change<T>(rx: &mut watch::Receiver<T>) -> Result<(), watch::error::RecvError> {
    tokio::time::sleep(PACE).await;
    rx.changed().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_change_is_seen_no_sooner_than_the_pace_and_changes_fold() {
        let (tx, mut rx) = watch::channel(0u32);
        let started = Instant::now();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        next_change(&mut rx).await.unwrap();
        assert!(started.elapsed() >= PACE);
        assert_eq!(*rx.borrow_and_update(), 2);

        // Nothing pending: the wait lasts until the next send.
        let sender = tokio::spawn(async move {
            tokio::time::sleep(PACE * 3).await;
            tx.send(3).unwrap();
        });
        let started = Instant::now();
        next_change(&mut rx).await.unwrap();
        assert!(started.elapsed() >= PACE * 3);
        assert_eq!(*rx.borrow_and_update(), 3);
        sender.await.unwrap();

        // The sender gone (tx moved into the finished task): the watcher hears it.
        assert!(next_change(&mut rx).await.is_err());
    }
}
