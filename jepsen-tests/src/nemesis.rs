//! The nemesis: a seeded schedule of faults, one at a time, each logged with its start and end
//! on the history's clock.
//!
//! Faults (names as on the command line):
//! - partitions, as nftables DROP rules on each namespace's input from the peers it must not
//!   hear: `partition-one` (a random node alone), `partition-leader` (the current leader
//!   alone), `partition-halves` (a random minority | majority), `partition-bridge` (two
//!   halves that both see one bridge node), `majorities-ring` (five nodes: everyone sees its
//!   two ring neighbours, a majority, and no two see the same one);
//! - `loss`: every namespace drops a random share (5–25 %) of packets from its peers;
//! - `delay`: every delay proxy holds data 20–150 ms plus jitter;
//! - `pause-one`, `pause-leader`: SIGSTOP, then SIGCONT at the end;
//! - `kill-one`, `kill-leader`, `kill-majority`, `kill-all`: SIGKILL, restart at the end on the
//!   same data dir.
//! - `kill-lose-unsynced`: a power cut. SIGKILL every node; each restarts having lost every
//!   Raft-log byte written after its last completed `fdatasync` (the nodes run in the test
//!   mode that makes this so, and then every kill of the run loses that tail).
//! - `member-remove-one`, `member-remove-leader`: the node is taken out of the membership
//!   under load (the leader through joint consensus, so it steps down), keeps running, and at
//!   the end is added back as a learner, waits to catch up, and is promoted to voter again.
//! - `member-replace`: a random node is taken out of the membership, killed, its data dir
//!   wiped, and started again empty as a joiner (no `initial_members`: README, "Recovering a
//!   wiped node"), so it waits, knowing no cluster, until at the end it is added back as a
//!   learner, catches up from nothing (a snapshot or the whole log) and is promoted.
//! - `clock-skew`, `clock-skew-leader`: the node (a random one, or the leader) is restarted
//!   at once with its wall clock skewed (`[clock] test_offset_ms`) by an amount drawn from
//!   [`Schedule::clock_skews_ms`] (±1 h, ±2 s); at the end it is restarted without. Both
//!   are far beyond the nodes' default `max_offset_ms` of 500 ms: the node must not lead.
//!
//! Families: `partition`, `pause`, `kill`, `power`, `loss`, `delay`, `membership`, `clock`,
//! `all`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

use crate::cluster::{Cluster, MembershipChange};
use crate::rng::Rng;
use crate::topology::node_ip;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    PartitionOne,
    PartitionLeader,
    PartitionHalves,
    PartitionBridge,
    MajoritiesRing,
    Loss,
    Delay,
    PauseOne,
    PauseLeader,
    KillOne,
    KillLeader,
    KillMajority,
    KillAll,
    KillLoseUnsynced,
    MemberRemoveOne,
    MemberRemoveLeader,
    MemberReplace,
    ClockSkew,
    ClockSkewLeader,
}

impl Fault {
    pub const ALL: [Fault; 19] = [
        Fault::PartitionOne,
        Fault::PartitionLeader,
        Fault::PartitionHalves,
        Fault::PartitionBridge,
        Fault::MajoritiesRing,
        Fault::Loss,
        Fault::Delay,
        Fault::PauseOne,
        Fault::PauseLeader,
        Fault::KillOne,
        Fault::KillLeader,
        Fault::KillMajority,
        Fault::KillAll,
        Fault::KillLoseUnsynced,
        Fault::MemberRemoveOne,
        Fault::MemberRemoveLeader,
        Fault::MemberReplace,
        Fault::ClockSkew,
        Fault::ClockSkewLeader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::PartitionOne => "partition-one",
            Fault::PartitionLeader => "partition-leader",
            Fault::PartitionHalves => "partition-halves",
            Fault::PartitionBridge => "partition-bridge",
            Fault::MajoritiesRing => "majorities-ring",
            Fault::Loss => "loss",
            Fault::Delay => "delay",
            Fault::PauseOne => "pause-one",
            Fault::PauseLeader => "pause-leader",
            Fault::KillOne => "kill-one",
            Fault::KillLeader => "kill-leader",
            Fault::KillMajority => "kill-majority",
            Fault::KillAll => "kill-all",
            Fault::KillLoseUnsynced => "kill-lose-unsynced",
            Fault::MemberRemoveOne => "member-remove-one",
            Fault::MemberRemoveLeader => "member-remove-leader",
            Fault::MemberReplace => "member-replace",
            Fault::ClockSkew => "clock-skew",
            Fault::ClockSkewLeader => "clock-skew-leader",
        }
    }

    fn family(self) -> &'static str {
        match self {
            Fault::PartitionOne
            | Fault::PartitionLeader
            | Fault::PartitionHalves
            | Fault::PartitionBridge
            | Fault::MajoritiesRing => "partition",
            Fault::Loss => "loss",
            Fault::Delay => "delay",
            Fault::PauseOne | Fault::PauseLeader => "pause",
            Fault::KillLoseUnsynced => "power",
            Fault::MemberRemoveOne | Fault::MemberRemoveLeader | Fault::MemberReplace => {
                "membership"
            }
            Fault::ClockSkew | Fault::ClockSkewLeader => "clock",
            _ => "kill",
        }
    }

    /// Whether the fault makes sense on a cluster of `nodes`.
    fn fits(self, nodes: u32) -> bool {
        match self {
            // On three nodes the ring degenerates to one-way cuts (jepsen.md §1).
            Fault::MajoritiesRing => nodes >= 5,
            Fault::PartitionBridge | Fault::PartitionHalves => nodes >= 3,
            _ => true,
        }
    }

    /// Parses `--faults`: comma-separated families and fault names.
    pub fn parse_list(spec: &str, nodes: u32) -> anyhow::Result<Vec<Fault>> {
        let mut faults = BTreeSet::new();
        for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let matched: Vec<Fault> = if word == "all" {
                Fault::ALL
                    .iter()
                    .copied()
                    .filter(|f| f.fits(nodes))
                    .collect()
            } else if let Some(fault) = Fault::ALL.iter().find(|f| f.name() == word) {
                if !fault.fits(nodes) {
                    bail!("fault {word} needs a larger cluster than {nodes} nodes");
                }
                vec![*fault]
            } else {
                Fault::ALL
                    .iter()
                    .copied()
                    .filter(|f| f.family() == word && f.fits(nodes))
                    .collect()
            };
            if matched.is_empty() {
                bail!(
                    "unknown fault {word:?}; use partition, pause, kill, power, loss, delay, membership, clock, all, or one of: {}",
                    Fault::ALL.map(Fault::name).join(", ")
                );
            }
            faults.extend(matched);
        }
        if faults.is_empty() {
            bail!("--faults is empty");
        }
        Ok(faults.into_iter().collect())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Node -> the peers whose packets it drops.
pub type Grudge = BTreeMap<u32, BTreeSet<u32>>;

/// Cuts every link between `a` and `b` (both ways).
fn cut(grudge: &mut Grudge, a: &[u32], b: &[u32]) {
    for &x in a {
        for &y in b {
            grudge.entry(x).or_default().insert(y);
            grudge.entry(y).or_default().insert(x);
        }
    }
}

/// Isolates `node` from everyone else.
pub fn isolate(nodes: &[u32], node: u32) -> Grudge {
    let others: Vec<u32> = nodes.iter().copied().filter(|&n| n != node).collect();
    let mut grudge = Grudge::new();
    cut(&mut grudge, &[node], &others);
    grudge
}

/// A random minority | majority split: (minority, majority).
pub fn halves(nodes: &[u32], rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
    let mut shuffled = nodes.to_vec();
    rng.shuffle(&mut shuffled);
    let minority = shuffled.split_off(shuffled.len() - nodes.len() / 2);
    (minority, shuffled)
}

/// Two halves that cannot see each other but both see the bridge node: (a, b, bridge).
pub fn bridge(nodes: &[u32], rng: &mut Rng) -> (Vec<u32>, Vec<u32>, u32) {
    let mut shuffled = nodes.to_vec();
    rng.shuffle(&mut shuffled);
    let bridge = shuffled.remove(0);
    let b = shuffled.split_off(shuffled.len() / 2);
    (shuffled, b, bridge)
}

/// A ring in random order; each node sees itself and its two neighbours.
pub fn majorities_ring(nodes: &[u32], rng: &mut Rng) -> (Vec<u32>, Grudge) {
    let mut ring = nodes.to_vec();
    rng.shuffle(&mut ring);
    let n = ring.len();
    let mut grudge = Grudge::new();
    for (i, &node) in ring.iter().enumerate() {
        let visible = [ring[(i + 1) % n], ring[(i + n - 1) % n], node];
        let drops = ring.iter().copied().filter(|p| !visible.contains(p));
        grudge.entry(node).or_default().extend(drops);
    }
    (ring, grudge)
}

fn peers_set(peers: &BTreeSet<u32>) -> String {
    let ips: Vec<String> = peers.iter().map(|&p| node_ip(p).to_string()).collect();
    format!("{{ {} }}", ips.join(", "))
}

/// The nft input rules of one node for a grudge.
pub fn grudge_rules(grudge: &Grudge, node: u32) -> Vec<String> {
    match grudge.get(&node) {
        Some(peers) if !peers.is_empty() => vec![format!("ip saddr {} drop", peers_set(peers))],
        _ => Vec::new(),
    }
}

/// Random loss of `percent` of the packets from all peers.
pub fn loss_rules(nodes: &[u32], node: u32, percent: u64) -> Vec<String> {
    let peers: BTreeSet<u32> = nodes.iter().copied().filter(|&p| p != node).collect();
    if peers.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "ip saddr {} numgen random mod 100 < {percent} drop",
        peers_set(&peers)
    )]
}

fn names(nodes: &[u32]) -> String {
    nodes
        .iter()
        .map(|n| format!("n{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One fault of the timeline.
#[derive(Clone, Debug)]
pub struct Event {
    pub fault: Fault,
    pub detail: String,
    /// On the history's clock (ns since the run started).
    pub start_ns: u64,
    pub end_ns: Option<u64>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |ns: u64| ns as f64 / 1e9;
        match self.end_ns {
            Some(end) => write!(
                f,
                "{:>7.2}s .. {:>7.2}s  {:<17} {}",
                secs(self.start_ns),
                secs(end),
                self.fault.name(),
                self.detail
            ),
            None => write!(
                f,
                "{:>7.2}s .. (open)    {:<17} {}",
                secs(self.start_ns),
                self.fault.name(),
                self.detail
            ),
        }
    }
}

/// What must be undone at the end of a fault.
enum Undo {
    Rules,
    Delay,
    Resume(Vec<u32>),
    Restart(Vec<u32>),
    /// Add the node back as a learner, then make it a voter.
    Readd(u32),
    /// Restart the node on the machine's clock.
    Unskew(u32),
}

/// How long one membership step may take, retries included: a learner catching up after a
/// fault may need a snapshot.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

/// Timing of the schedule.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Quiet time before the first fault.
    pub initial: Duration,
    /// A fault lasts between these.
    pub hold: (Duration, Duration),
    /// Quiet time between faults.
    pub quiet: (Duration, Duration),
    /// The skews (ms, + ahead) a clock fault draws from.
    pub clock_skews_ms: &'static [i64],
}

/// An hour and two seconds, each way: the two cases, one absurd and one a plausible
/// NTP failure, both beyond the default `max_offset_ms` (500 ms) by far more than a round
/// trip between namespaces, so the clock monitor's verdict on them is never in doubt.
pub const CLOCK_SKEWS_MS: [i64; 4] = [3_600_000, -3_600_000, 2_000, -2_000];

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            initial: Duration::from_secs(3),
            hold: (Duration::from_secs(3), Duration::from_secs(8)),
            quiet: (Duration::from_secs(2), Duration::from_secs(5)),
            clock_skews_ms: &CLOCK_SKEWS_MS,
        }
    }
}

pub struct Nemesis {
    faults: Vec<Fault>,
    rng: Rng,
    schedule: Schedule,
    /// The history clock's origin.
    origin: std::time::Instant,
    pub events: Vec<Event>,
    /// Print each start and end as it happens.
    pub verbose: bool,
    /// Nodes taken out of the membership and not yet back: `heal_all` re-adds them.
    removed: BTreeSet<u32>,
}

fn duration_between(rng: &mut Rng, (lo, hi): (Duration, Duration)) -> Duration {
    Duration::from_millis(rng.range(lo.as_millis() as u64, hi.as_millis() as u64))
}

impl Nemesis {
    pub fn new(
        faults: Vec<Fault>,
        seed: u64,
        schedule: Schedule,
        origin: std::time::Instant,
    ) -> Nemesis {
        Nemesis {
            faults,
            rng: Rng::fork(seed, 0x6e65_6d65),
            schedule,
            origin,
            events: Vec::new(),
            verbose: true,
            removed: BTreeSet::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Injects faults until `end`, then heals everything.
    pub async fn run(&mut self, cluster: &mut Cluster, end: Instant) -> anyhow::Result<()> {
        let result = self.schedule_until(cluster, end).await;
        let healed = self.heal_all(cluster).await;
        result.and(healed)
    }

    async fn schedule_until(&mut self, cluster: &mut Cluster, end: Instant) -> anyhow::Result<()> {
        self.sleep(cluster, Instant::now() + self.schedule.initial, end)
            .await;
        loop {
            let now = Instant::now();
            // Leave at least a short fault and a second of calm before the end.
            if now + self.schedule.hold.0 + Duration::from_secs(1) > end {
                return Ok(());
            }
            let fault = *self.rng.pick(&self.faults);
            let hold = duration_between(&mut self.rng, self.schedule.hold);
            let quiet = duration_between(&mut self.rng, self.schedule.quiet);
            let (detail, undo) = self.start(cluster, fault).await?;
            let event = Event {
                fault,
                detail,
                start_ns: self.now_ns(),
                end_ns: None,
            };
            if self.verbose {
                println!(
                    "  nemesis {:>7.2}s start {fault}: {}",
                    secs(event.start_ns),
                    event.detail
                );
            }
            self.events.push(event);
            let fault_end = (Instant::now() + hold).min(end - Duration::from_secs(1));
            self.sleep(cluster, fault_end, end).await;
            self.finish(cluster, undo).await?;
            let end_ns = self.now_ns();
            if let Some(event) = self.events.last_mut() {
                event.end_ns = Some(end_ns);
            }
            if self.verbose {
                println!("  nemesis {:>7.2}s end   {fault}", secs(end_ns));
            }
            self.sleep(cluster, Instant::now() + quiet, end).await;
        }
    }

    /// Sleeps until `until` (or `end`), noticing crashed processes.
    async fn sleep(&mut self, cluster: &mut Cluster, until: Instant, end: Instant) {
        let until = until.min(end);
        while Instant::now() < until {
            tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(250))).await;
            for crash in cluster.check_crashes() {
                println!(
                    "  nemesis {:>7.2}s !! {} exited on its own ({}); see {}",
                    secs(self.now_ns()),
                    crash.what,
                    crash.status,
                    crash.log.display()
                );
            }
        }
    }

    async fn target_leader(&mut self, cluster: &Cluster) -> (u32, &'static str) {
        match cluster.leader().await {
            Some(leader) => (leader, "leader"),
            None => {
                let ids = cluster.ids();
                (*self.rng.pick(&ids), "no leader known, random")
            }
        }
    }

    async fn partition(&self, cluster: &Cluster, grudge: &Grudge) -> anyhow::Result<()> {
        for id in cluster.ids() {
            cluster
                .topology
                .set_rules(id, &grudge_rules(grudge, id))
                .await?;
        }
        Ok(())
    }

    async fn start(
        &mut self,
        cluster: &mut Cluster,
        fault: Fault,
    ) -> anyhow::Result<(String, Undo)> {
        let ids = cluster.ids();
        Ok(match fault {
            Fault::PartitionOne | Fault::PartitionLeader => {
                let (node, why) = if fault == Fault::PartitionLeader {
                    self.target_leader(cluster).await
                } else {
                    (*self.rng.pick(&ids), "random")
                };
                self.partition(cluster, &isolate(&ids, node)).await?;
                let rest: Vec<u32> = ids.iter().copied().filter(|&n| n != node).collect();
                (format!("n{node} ({why}) | {}", names(&rest)), Undo::Rules)
            }
            Fault::PartitionHalves => {
                let (minority, majority) = halves(&ids, &mut self.rng);
                let mut grudge = Grudge::new();
                cut(&mut grudge, &minority, &majority);
                self.partition(cluster, &grudge).await?;
                (
                    format!("{} | {}", names(&minority), names(&majority)),
                    Undo::Rules,
                )
            }
            Fault::PartitionBridge => {
                let (a, b, bridge) = bridge(&ids, &mut self.rng);
                let mut grudge = Grudge::new();
                cut(&mut grudge, &a, &b);
                self.partition(cluster, &grudge).await?;
                (
                    format!("{} | {} with n{bridge} seeing both", names(&a), names(&b)),
                    Undo::Rules,
                )
            }
            Fault::MajoritiesRing => {
                let (ring, grudge) = majorities_ring(&ids, &mut self.rng);
                self.partition(cluster, &grudge).await?;
                (
                    format!("ring {} (each sees its two neighbours)", names(&ring)),
                    Undo::Rules,
                )
            }
            Fault::Loss => {
                let percent = self.rng.range(5, 25);
                for &id in &ids {
                    cluster
                        .topology
                        .set_rules(id, &loss_rules(&ids, id, percent))
                        .await?;
                }
                (
                    format!("{percent}% of packets between nodes dropped"),
                    Undo::Rules,
                )
            }
            Fault::Delay => {
                if !cluster.has_proxies() {
                    bail!("the delay fault needs the proxies, which this run did not start");
                }
                let ms = self.rng.range(20, 150);
                let jitter = self.rng.range(0, ms);
                cluster.set_delay(Some((ms, jitter)))?;
                (
                    format!("{ms} ms + 0..{jitter} ms on every link into a node"),
                    Undo::Delay,
                )
            }
            Fault::PauseOne | Fault::PauseLeader => {
                let (node, why) = if fault == Fault::PauseLeader {
                    self.target_leader(cluster).await
                } else {
                    (*self.rng.pick(&ids), "random")
                };
                cluster.pause(node);
                (format!("SIGSTOP n{node} ({why})"), Undo::Resume(vec![node]))
            }
            Fault::KillOne
            | Fault::KillLeader
            | Fault::KillMajority
            | Fault::KillAll
            | Fault::KillLoseUnsynced => {
                let victims: Vec<u32> = match fault {
                    Fault::KillOne => vec![*self.rng.pick(&ids)],
                    Fault::KillLeader => vec![self.target_leader(cluster).await.0],
                    Fault::KillMajority => {
                        let mut shuffled = ids.clone();
                        self.rng.shuffle(&mut shuffled);
                        shuffled.truncate(ids.len() / 2 + 1);
                        shuffled.sort_unstable();
                        shuffled
                    }
                    _ => ids.clone(),
                };
                for &v in &victims {
                    cluster.kill(v);
                }
                (
                    format!("SIGKILL {}", names(&victims)),
                    Undo::Restart(victims),
                )
            }
            Fault::MemberRemoveOne | Fault::MemberRemoveLeader => {
                let (node, why) = if fault == Fault::MemberRemoveLeader {
                    self.target_leader(cluster).await
                } else {
                    (*self.rng.pick(&ids), "random")
                };
                self.removed.insert(node);
                let ok = cluster
                    .change_membership(MembershipChange::Remove(node), MEMBERSHIP_TIMEOUT)
                    .await?;
                (
                    format!("n{node} ({why}) out of the membership: {ok}"),
                    Undo::Readd(node),
                )
            }
            Fault::MemberReplace => {
                let node = *self.rng.pick(&ids);
                self.removed.insert(node);
                // Out of the membership before the wipe (the runbook's order): a wiped voter
                // still listed could vote with a log missing entries it had acknowledged.
                let ok = cluster
                    .change_membership(MembershipChange::Remove(node), MEMBERSHIP_TIMEOUT)
                    .await?;
                cluster.restart_wiped(node)?;
                (
                    format!(
                        "n{node} (random) out of the membership ({ok}), data dir wiped, \
                         restarted empty as a joiner"
                    ),
                    Undo::Readd(node),
                )
            }
            Fault::ClockSkew | Fault::ClockSkewLeader => {
                let (node, why) = if fault == Fault::ClockSkewLeader {
                    self.target_leader(cluster).await
                } else {
                    (*self.rng.pick(&ids), "random")
                };
                let offset_ms = *self.rng.pick(self.schedule.clock_skews_ms);
                cluster.restart_with_clock_offset(node, offset_ms)?;
                (
                    format!("n{node} ({why}) restarted with its clock {offset_ms:+} ms"),
                    Undo::Unskew(node),
                )
            }
        })
    }

    async fn finish(&mut self, cluster: &mut Cluster, undo: Undo) -> anyhow::Result<()> {
        match undo {
            Undo::Rules => cluster.topology.clear_rules().await,
            Undo::Delay => cluster.set_delay(None),
            Undo::Resume(nodes) => {
                for n in nodes {
                    cluster.resume(n);
                }
                Ok(())
            }
            Undo::Restart(nodes) => {
                for n in nodes {
                    cluster.restart(n)?;
                }
                Ok(())
            }
            Undo::Readd(node) => self.readd(cluster, node).await,
            Undo::Unskew(node) => cluster.restart_with_clock_offset(node, 0),
        }
    }

    async fn readd(&mut self, cluster: &Cluster, node: u32) -> anyhow::Result<()> {
        for step in [
            MembershipChange::AddLearner(node),
            MembershipChange::Promote(node),
        ] {
            cluster.change_membership(step, MEMBERSHIP_TIMEOUT).await?;
        }
        self.removed.remove(&node);
        Ok(())
    }

    /// Undoes everything: rules, delays, pauses, skewed clocks; restarts every node that is
    /// down (killed, or crashed on its own).
    pub async fn heal_all(&mut self, cluster: &mut Cluster) -> anyhow::Result<()> {
        cluster.check_crashes();
        cluster.topology.clear_rules().await?;
        if cluster.has_proxies() {
            cluster.set_delay(None)?;
        }
        for id in cluster.skewed() {
            cluster.restart_with_clock_offset(id, 0)?;
        }
        for id in cluster.ids() {
            cluster.resume(id);
            if !cluster.is_running(id) {
                cluster.restart(id)?;
            }
        }
        for node in std::mem::take(&mut self.removed) {
            self.readd(cluster, node).await?;
        }
        let now = self.now_ns();
        for event in &mut self.events {
            event.end_ns.get_or_insert(now);
        }
        Ok(())
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_expand_and_ring_needs_five() {
        let partition = Fault::parse_list("partition", 3).unwrap();
        assert!(!partition.contains(&Fault::MajoritiesRing));
        assert_eq!(partition.len(), 4);
        assert!(Fault::parse_list("partition", 5)
            .unwrap()
            .contains(&Fault::MajoritiesRing));
        assert!(Fault::parse_list("majorities-ring", 3).is_err());
        assert_eq!(Fault::parse_list("all", 3).unwrap().len(), 18);
        assert_eq!(
            Fault::parse_list("clock", 3).unwrap(),
            vec![Fault::ClockSkew, Fault::ClockSkewLeader]
        );
        assert_eq!(
            Fault::parse_list("membership", 3).unwrap(),
            vec![
                Fault::MemberRemoveOne,
                Fault::MemberRemoveLeader,
                Fault::MemberReplace
            ]
        );
        assert_eq!(
            Fault::parse_list("power", 3).unwrap(),
            vec![Fault::KillLoseUnsynced]
        );
        assert!(!Fault::parse_list("kill", 3)
            .unwrap()
            .contains(&Fault::KillLoseUnsynced));
        assert_eq!(
            Fault::parse_list("pause,kill-all", 3).unwrap(),
            vec![Fault::PauseOne, Fault::PauseLeader, Fault::KillAll]
        );
        assert!(Fault::parse_list("flood", 3).is_err());
        assert!(Fault::parse_list("", 3).is_err());
    }

    #[test]
    fn ring_gives_everyone_a_distinct_majority() {
        let nodes = [1, 2, 3, 4, 5];
        let (_, grudge) = majorities_ring(&nodes, &mut Rng::new(3));
        let mut views = BTreeSet::new();
        for &n in &nodes {
            let drops = grudge.get(&n).cloned().unwrap_or_default();
            assert_eq!(drops.len(), 2, "node {n} drops {drops:?}");
            assert!(!drops.contains(&n));
            // Symmetric: if n drops p then p drops n.
            for p in &drops {
                assert!(grudge[p].contains(&n));
            }
            let view: BTreeSet<u32> = nodes
                .iter()
                .copied()
                .filter(|p| !drops.contains(p))
                .collect();
            assert!(views.insert(view));
        }
    }

    #[test]
    fn halves_and_bridge_split_as_documented() {
        let nodes = [1, 2, 3, 4, 5];
        let (minority, majority) = halves(&nodes, &mut Rng::new(9));
        assert_eq!((minority.len(), majority.len()), (2, 3));
        let (a, b, bridge_node) = bridge(&[1, 2, 3], &mut Rng::new(4));
        assert_eq!((a.len(), b.len()), (1, 1));
        assert!(!a.contains(&bridge_node) && !b.contains(&bridge_node));
        let g = isolate(&[1, 2, 3], 2);
        assert_eq!(
            grudge_rules(&g, 2),
            vec!["ip saddr { 10.77.0.1, 10.77.0.3 } drop"]
        );
        assert_eq!(grudge_rules(&g, 1), vec!["ip saddr { 10.77.0.2 } drop"]);
        assert_eq!(
            loss_rules(&[1, 2, 3], 1, 10),
            vec!["ip saddr { 10.77.0.2, 10.77.0.3 } numgen random mod 100 < 10 drop"]
        );
    }
}
