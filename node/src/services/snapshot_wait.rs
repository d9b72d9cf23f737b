//! `invctl snapshot`'s wait: asks again until a snapshot covers what was applied when the
//! operator asked. openraft ignores a request while a build runs, and a build that began
//! before the request (the node's own, by its size or count rules) ends below it; waiting
//! for the one request alone then timed out after two minutes under load, with no build
//! started for the operator at all.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How often the wait asks again: a build runs for seconds, so a second's delay is noise.
pub const ASK_AGAIN: Duration = Duration::from_secs(1);

/// Waits until a snapshot covers log index `target`, at most `limit`, calling `ask` every
/// `every` while none does (a request that finds a build running is dropped, so asking again
/// is harmless). `covered(d)` waits up to `d` for such a snapshot and returns its index, or
/// `None` when `d` passed first. Returns the covering snapshot's index.
pub async fn until_covered<A, AF, C, CF>(
    target: u64,
    limit: Duration,
    every: Duration,
    mut ask: A,
    mut covered: C,
) -> Result<u64, String>
where
    A: FnMut() -> AF,
    AF: Future<Output = Result<(), String>>,
    C: FnMut(Duration) -> CF,
    CF: Future<Output = Result<Option<u64>, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(index) = covered(left.min(every)).await? {
            return Ok(index);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no snapshot covers log index {target} after {} s",
                limit.as_secs()
            ));
        }
        ask().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A node's snapshots as openraft keeps them: one build at a time, requests dropped while
    /// one runs; a build covers what was applied when it began and ends at the next wait.
    #[derive(Default)]
    struct Node {
        applied: u64,
        snapshot: u64,
        building: Option<u64>,
        asked: usize,
    }

    fn ask(node: &Arc<Mutex<Node>>) -> impl FnMut() -> std::future::Ready<Result<(), String>> {
        let node = node.clone();
        move || {
            let mut n = node.lock().unwrap();
            n.asked += 1;
            if n.building.is_none() {
                n.building = Some(n.applied);
            }
            std::future::ready(Ok(()))
        }
    }

    fn covered(
        node: &Arc<Mutex<Node>>,
        target: u64,
    ) -> impl FnMut(Duration) -> std::future::Ready<Result<Option<u64>, String>> {
        let node = node.clone();
        move |_| {
            let mut n = node.lock().unwrap();
            if let Some(at) = n.building.take() {
                n.snapshot = n.snapshot.max(at);
            }
            std::future::ready(Ok((n.snapshot >= target).then_some(n.snapshot)))
        }
    }

    async fn wait_for(node: &Arc<Mutex<Node>>, target: u64) -> Result<u64, String> {
        until_covered(
            target,
            Duration::from_secs(5),
            Duration::from_millis(1),
            ask(node),
            covered(node, target),
        )
        .await
    }

    #[tokio::test]
    async fn a_build_begun_before_the_request_is_followed_by_one_that_covers_it() {
        // The node's own build began at 5; the operator asked once 12 entries were applied,
        // and that request was dropped.
        let node = Arc::new(Mutex::new(Node {
            applied: 12,
            building: Some(5),
            ..Node::default()
        }));
        assert_eq!(wait_for(&node, 12).await, Ok(12));
        assert_eq!(node.lock().unwrap().asked, 1);
    }

    #[tokio::test]
    async fn a_snapshot_that_already_covers_the_target_needs_no_new_request() {
        let node = Arc::new(Mutex::new(Node {
            applied: 12,
            snapshot: 20,
            ..Node::default()
        }));
        assert_eq!(wait_for(&node, 12).await, Ok(20));
        assert_eq!(node.lock().unwrap().asked, 0);
    }

    #[tokio::test]
    async fn no_covering_snapshot_within_the_limit_is_an_error_naming_the_index() {
        let never = |_: Duration| async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok(None)
        };
        let err = until_covered(
            7,
            Duration::from_millis(20),
            Duration::from_millis(5),
            || async { Ok(()) },
            never,
        )
        .await
        .unwrap_err();
        assert!(err.contains("log index 7"), "{err}");
    }
}
