//! The leader's expiry ticker: proposes `Expire` when the earliest reservation deadline has
//! passed by the time its proposal would carry (`Clocks::proposal_ms`: the cluster clock run
//! on by monotonic time, or the wall clock when later), at most once per tick. Followers
//! never act on their own clocks. A leader whose wall clock runs ahead cannot expire
//! reservations early, nor one whose clock lags freeze them: the clock monitor keeps a
//! leader's wall clock within `max_offset_ms` of its peers', or it does not lead.

use crate::group_commit::{GroupCommit, ProposeError};
use crate::types::Raft;
use state_machine::{Command, Store};
use std::sync::Arc;
use std::time::Duration;

/// Reservations expire within one second of their deadline (API.md); a 200 ms tick leaves
/// room for a commit round.
pub const TICK: Duration = Duration::from_millis(200);

pub fn start(raft: Raft, store: Arc<Store>, proposer: GroupCommit) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if !raft.metrics().borrow().state.is_leader() {
                continue;
            }
            if let Err(e) = expire_if_due(&store, &proposer).await {
                tracing::debug!(?e, "expire proposal not committed; next tick retries");
            }
        }
    });
}

/// Proposes `Expire`, and waits until it applied, when the earliest deadline has passed by
/// the clock a proposal made now would carry. The ticker calls it every tick; a read calls
/// it before answering, so deadlines are exact for reads too, even on a new leader after an
/// outage, whose applied clock is as old as the outage until its first proposal.
pub async fn expire_if_due(store: &Store, proposer: &GroupCommit) -> Result<(), ProposeError> {
    let due = match store.earliest_deadline() {
        Ok(Some(deadline)) => deadline <= proposer.clocks().proposal_ms(),
        Ok(None) => false,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the deadline index");
            false
        }
    };
    if due {
        proposer.submit(vec![Command::Expire], 1).await?;
    }
    Ok(())
}
