//! One run, in phases: set up the namespaces and processes; clients and nemesis for the time
//! limit; heal; wait for a leader and equal `last_applied` everywhere; final reads of every
//! SKU and every order id seen; stop the cluster; check; report into the run directory
//! (`history.jsonl`, `history.txt`, `nemesis.txt`, `report.txt`, and per node `nI/` with
//! `node.log`, `gateway.log`, `proxy.log`, configs; data dirs are kept only on failure).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use cluster_config::RaftTiming;
use tokio::time::Instant;

use crate::clients::{run_client, Client, Recorder};
use crate::cluster::{all_voters, leader_of, Cluster, ClusterSpec};
use crate::feed::{Feed, FeedLog};
use crate::feed_check;
use crate::history::{Completion, History, Input};
use crate::invariants::{self, NodeFinal};
use crate::nemesis::{Event, Fault, Nemesis, Schedule};
use crate::report::{CheckerResult, RunReport};
use crate::rng::Rng;
use crate::workload::{Shared, Workload, SHORT_TTL_MS};
use crate::Verdict;

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub name: String,
    pub nodes: u32,
    pub workload: Workload,
    pub faults: Vec<Fault>,
    pub time_limit: Duration,
    pub seed: u64,
    pub run_dir: PathBuf,
    pub node_bin: PathBuf,
    pub gateway_bin: PathBuf,
    /// This binary, for `jepsen proxy`.
    pub self_bin: PathBuf,
    /// The gateway's request deadline; the client timeout is this plus a second.
    pub request_deadline: Duration,
    /// Time budget of the linearizability search (exhausted = failure).
    pub check_budget: Duration,
    /// Fewer `ok` ops than this fails the run.
    pub min_ok_ops: usize,
    pub schedule: Schedule,
}

impl RunOptions {
    pub fn client_timeout(&self) -> Duration {
        self.request_deadline + Duration::from_secs(1)
    }

    /// The default floor of ok ops: 10 per second of the time limit, at least 50.
    pub fn default_min_ok(time_limit: Duration) -> usize {
        (time_limit.as_secs() as usize * 10).max(50)
    }

    pub fn faults_text(&self) -> String {
        self.faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The result of one run, for the summary.
pub struct RunOutcome {
    pub report: RunReport,
    pub seed: u64,
    pub run_dir: PathBuf,
    /// Checkers whose verdict was `Fail` (not `Unknown`): what caught a bug.
    pub failed_checks: Vec<String>,
    /// Failures that only a wrong read explains: linearizability counterexamples whose
    /// culprit is a read, revisions going backwards, acknowledged orders read as missing.
    /// The broken-node run must produce some.
    pub read_anomalies: Vec<String>,
    /// Orders whose deadline or stamp disagrees with the harness's wall clock
    /// ([`crate::deadlines`]); the wall-clock-deadlines node's run must produce some.
    pub deadline_anomalies: Vec<String>,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.report.passed()
    }
}

fn ns(d: u64) -> String {
    format!("{:.2}s", d as f64 / 1e9)
}

/// Runs the whole thing, printing as it goes; never panics on cluster misbehaviour.
pub async fn run(options: &RunOptions) -> RunOutcome {
    println!("jepsen: seed {}", options.seed);
    println!(
        "cluster: {} nodes, workload {}, faults {}, time limit {}s",
        options.nodes,
        options.workload,
        options.faults_text(),
        options.time_limit.as_secs()
    );
    println!("run dir: {}", options.run_dir.display());
    let mut header = String::new();
    let _ = writeln!(
        header,
        "seed {}\ncluster: {} nodes, workload {}, faults {}, time limit {}s",
        options.seed,
        options.nodes,
        options.workload,
        options.faults_text(),
        options.time_limit.as_secs()
    );
    let (report, read_anomalies, deadline_anomalies) = match execute(options).await {
        Ok(executed) => check(options, executed, header).await,
        Err(e) => {
            let report = RunReport::errored(&options.name, &format!("{e:#}"));
            println!("{report}");
            println!("run dir: {}", options.run_dir.display());
            (report, Vec::new(), Vec::new())
        }
    };
    let failed_checks = report
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.name.clone())
        .collect();
    if report.passed() {
        Cluster::remove_data(&options.run_dir, options.nodes);
    }
    RunOutcome {
        report,
        seed: options.seed,
        run_dir: options.run_dir.clone(),
        failed_checks,
        read_anomalies,
        deadline_anomalies,
    }
}

/// A reused run dir must not hand the new cluster an old one's data (or mix the logs):
/// removes what an earlier run wrote there.
fn clear_run_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let node_dir = name
            .strip_prefix('n')
            .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()));
        let ours = matches!(
            name.as_str(),
            "history.jsonl" | "history.txt" | "nemesis.txt" | "report.txt"
        );
        if node_dir && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path())
                .with_context(|| format!("cannot clear {}", entry.path().display()))?;
            removed += 1;
        } else if ours {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        println!(
            "setup: cleared an earlier run's files from {}",
            dir.display()
        );
    }
    Ok(())
}

/// What the cluster phase produced.
struct Executed {
    history: History,
    /// The wall clock (ms since the Unix epoch) at the history's zero.
    origin_wall_ms: u64,
    events: Vec<Event>,
    finals: Vec<NodeFinal>,
    recovery: Result<String, String>,
    crashes: Vec<String>,
    final_reads: Result<String, String>,
    /// The feed consumer's record and the head it had to reach (`Err`: no head was read).
    feed: Result<(FeedLog, u64), String>,
}

async fn execute(options: &RunOptions) -> anyhow::Result<Executed> {
    clear_run_dir(&options.run_dir)?;
    std::fs::create_dir_all(&options.run_dir)
        .with_context(|| format!("cannot create {}", options.run_dir.display()))?;
    for (what, path) in [
        ("--node-bin", &options.node_bin),
        ("--gateway-bin", &options.gateway_bin),
    ] {
        if !path.is_file() {
            anyhow::bail!(
                "{what} {} does not exist; build it with `cargo build --release -p node -p gateway`",
                path.display()
            );
        }
    }
    let proxies = options.faults.contains(&Fault::Delay);
    let spec = ClusterSpec {
        nodes: options.nodes,
        node_bin: options.node_bin.clone(),
        gateway_bin: options.gateway_bin.clone(),
        proxy_bin: proxies.then(|| options.self_bin.clone()),
        dir: options.run_dir.clone(),
        request_deadline_ms: options.request_deadline.as_millis() as u64,
        raft: RaftTiming::default(),
        lose_unsynced_on_restart: options.faults.contains(&Fault::KillLoseUnsynced),
    };
    println!(
        "setup: namespaces, {} nodes and gateways{}",
        options.nodes,
        if proxies { ", delay proxies" } else { "" }
    );
    let mut cluster = Cluster::start(spec)?;
    let started = Instant::now();
    let leader = cluster.wait_ready(Duration::from_secs(30)).await?;
    println!(
        "setup: ready in {:.1}s, leader n{leader}",
        started.elapsed().as_secs_f64()
    );

    // The feed consumer starts before any write, so it must see every event from the first.
    let gateways: Vec<_> = cluster
        .ids()
        .into_iter()
        .map(Cluster::gateway_addr)
        .collect();
    let feed = Feed::start(gateways.clone());

    // Clients and nemesis on one clock.
    let origin = std::time::Instant::now();
    let origin_wall_ms = wall_ms_now();
    let recorder = Arc::new(Recorder::new(origin));
    let shared = Arc::new(Mutex::new(Shared::new(options.workload, options.seed)));
    let end = Instant::now() + options.time_limit;
    let mut clients = tokio::task::JoinSet::new();
    for index in 0..options.nodes * 2 {
        let gateway = index / 2 + 1;
        let client = Client::new(
            gateway,
            Cluster::gateway_addr(gateway),
            options.client_timeout(),
            recorder.clone(),
        );
        clients.spawn(run_client(
            client,
            index,
            options.workload,
            shared.clone(),
            Rng::fork(options.seed, 1000 + u64::from(index)),
            end,
        ));
    }
    println!("clients: {} (2 per gateway), nemesis:", options.nodes * 2);
    let mut nemesis = Nemesis::new(
        options.faults.clone(),
        options.seed,
        options.schedule,
        origin,
    );
    let nemesis_result = nemesis.run(&mut cluster, end).await;
    while let Some(joined) = clients.join_next().await {
        if let Err(e) = joined {
            anyhow::bail!("a client task failed: {e}");
        }
    }
    nemesis_result.context("nemesis")?;
    println!(
        "clients: stopped after {} ops; healed, waiting for recovery",
        recorder.len()
    );

    let recovery = wait_recovery(&mut cluster, Duration::from_secs(60)).await;
    match &recovery {
        Ok(text) => println!("recovery: {text}"),
        Err(text) => println!("recovery: FAILED: {text}"),
    }
    if options.workload == Workload::ShortTtl {
        // The final reads of orders and of SKUs are compared as one state, so it must no
        // longer change on its own: every reservation expired (within a second of its
        // deadline, and the last ones were made as the clients stopped).
        let settle = Duration::from_millis(SHORT_TTL_MS.1) + Duration::from_secs(2);
        println!("final reads: waiting {settle:?} for the last reservations to expire");
        tokio::time::sleep(settle).await;
    }
    let final_reads = final_reads(options, &recorder).await;
    match &final_reads {
        Ok(text) => println!("final reads: {text}"),
        Err(text) => println!("final reads: FAILED: {text}"),
    }
    // Convergence after the final reads: the state every node ends with.
    let settled = wait_recovery(&mut cluster, Duration::from_secs(15)).await;
    let mut finals: Vec<NodeFinal> = Vec::new();
    for (id, status) in cluster.statuses().await {
        finals.push(NodeFinal {
            node: u64::from(id),
            last_applied: status.map(|s| s.last_applied),
            digest: Cluster::state_digest(id)
                .await
                .map(|d| format!("{:016x} at {}", d.digest, d.applied_index)),
        });
    }
    if let Err(text) = &settled {
        println!("convergence: {text}");
    }
    println!(
        "state digests: {}",
        finals
            .iter()
            .map(|f| format!("n{}={}", f.node, f.digest.as_deref().unwrap_or("none")))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let feed = match events_head(&gateways).await {
        Ok(head) => Ok((feed.finish(head, Duration::from_secs(60)).await, head)),
        Err(e) => Err(e),
    };
    match &feed {
        Ok((log, head)) => println!(
            "event feed: {} events received over {} connections, head {head}",
            log.events.len(),
            log.connections
        ),
        Err(e) => println!("event feed: FAILED: {e}"),
    }
    let metrics = gateway_metrics(&cluster).await;
    println!("gateways: {metrics}");
    cluster.check_crashes();
    let crashes = cluster
        .crashes
        .iter()
        .map(|c| format!("{} exited ({}); see {}", c.what, c.status, c.log.display()))
        .collect();
    cluster.stop_all();
    drop(cluster);
    Ok(Executed {
        history: recorder.take(),
        origin_wall_ms,
        events: nemesis.events,
        finals,
        recovery,
        crashes,
        final_reads,
        feed,
    })
}

/// The newest event id, read through any gateway that answers (after recovery, all should).
async fn events_head(gateways: &[std::net::SocketAddr]) -> Result<u64, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_error = String::from("no gateway");
    for addr in gateways.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let mut conn = crate::http::HttpConn::new(*addr);
        match conn
            .request(
                hyper::Method::GET,
                "/v1/events?limit=1",
                None,
                Duration::from_secs(5),
            )
            .await
        {
            Ok((200, body)) => {
                let page: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("{addr}: {e}"))?;
                return page["head"]
                    .as_u64()
                    .ok_or_else(|| format!("{addr}: a page without head"));
            }
            Ok((status, body)) => {
                last_error = format!("{addr}: {status} {}", String::from_utf8_lossy(&body))
            }
            Err(e) => last_error = format!("{addr}: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("no gateway answered the events head: {last_error}"))
}

/// Saves each gateway's `/metrics` into its node dir and sums its retries and leader
/// changes, which explain most slow or replayed answers.
async fn gateway_metrics(cluster: &Cluster) -> String {
    let mut parts = Vec::new();
    for id in cluster.ids() {
        let mut conn = crate::http::HttpConn::new(Cluster::gateway_addr(id));
        let answer = conn
            .request(hyper::Method::GET, "/metrics", None, Duration::from_secs(2))
            .await;
        let Ok((200, body)) = answer else {
            parts.push(format!("n{id} no metrics"));
            continue;
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        let _ = std::fs::write(cluster.node_dir(id).join("gateway-metrics.txt"), &text);
        let sum = |name: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(name))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        parts.push(format!(
            "n{id} {} retries, {} leader changes",
            sum("gateway_retries_total"),
            sum("gateway_leader_changes_total")
        ));
    }
    parts.join("; ")
}

/// Waits until every node answers, one leader is known to all, every node is a voter again
/// (membership faults heal by re-adding), and all have applied the same index (seen twice in
/// a row). `Ok` describes the state, `Err` why it never got there.
async fn wait_recovery(cluster: &mut Cluster, timeout: Duration) -> Result<String, String> {
    let started = Instant::now();
    let mut previous: Option<u64> = None;
    let mut last = String::from("no status polled");
    while started.elapsed() < timeout {
        let statuses = cluster.statuses().await;
        let leader = leader_of(&statuses);
        let applied: Vec<Option<u64>> = statuses
            .iter()
            .map(|(_, s)| s.as_ref().map(|s| s.last_applied))
            .collect();
        let all_follow = leader.is_some_and(|l| {
            statuses.iter().all(|(_, s)| {
                s.as_ref()
                    .is_some_and(|s| s.leader_id == Some(u64::from(l)))
            })
        });
        let first = applied[0];
        let equal = first.is_some() && applied.iter().all(|a| *a == first);
        let ids = cluster.ids();
        let voters = leader
            .and_then(|l| statuses.iter().find(|(id, _)| *id == l))
            .and_then(|(_, s)| s.as_ref())
            .is_some_and(|s| all_voters(s, &ids));
        last = format!(
            "leader {}{}, last_applied {}",
            leader.map_or("none".to_owned(), |l| format!("n{l}")),
            if voters {
                ""
            } else {
                " (not every node a voter)"
            },
            statuses
                .iter()
                .map(|(id, s)| format!(
                    "n{id}={}",
                    s.as_ref()
                        .map_or("no answer".to_owned(), |s| s.last_applied.to_string())
                ))
                .collect::<Vec<_>>()
                .join(" ")
        );
        if all_follow && equal && voters {
            if previous == first {
                return Ok(format!(
                    "{last} (equal on all nodes) after {:.1}s",
                    started.elapsed().as_secs_f64()
                ));
            }
            previous = first;
        } else {
            previous = None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(format!("not recovered within {timeout:?}: {last}"))
}

/// Reads every SKU and every order id the history mentions, through all gateways, retrying
/// each until an `ok` answer (as a new process each time).
async fn final_reads(options: &RunOptions, recorder: &Arc<Recorder>) -> Result<String, String> {
    let mut reads: Vec<Input> = Vec::new();
    let (skus, orders) = recorder.visit(|history| {
        let mut skus: BTreeMap<String, ()> = BTreeMap::new();
        let mut orders: BTreeMap<String, String> = BTreeMap::new();
        for op in history.ops() {
            for sku in op.input.skus() {
                skus.insert(sku.to_owned(), ());
            }
            if let Input::Order {
                order_id, items, ..
            } = &op.input
            {
                orders
                    .entry(order_id.clone())
                    .or_insert_with(|| items[0].sku.clone());
            }
        }
        (skus, orders)
    });
    reads.extend(skus.keys().map(|sku| Input::read_sku(sku)));
    reads.extend(
        orders
            .iter()
            .map(|(order, sku)| Input::read_order(sku, order)),
    );
    let total = reads.len();
    let queue = Arc::new(Mutex::new(reads));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..options.nodes * 2 {
        let gateway = worker % options.nodes + 1;
        let queue = queue.clone();
        let recorder = recorder.clone();
        let timeout = options.client_timeout();
        workers.spawn(async move {
            let mut client =
                Client::new(gateway, Cluster::gateway_addr(gateway), timeout, recorder);
            let mut missed = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some(input) = next else { break };
                let mut done = false;
                while !done && Instant::now() < deadline {
                    let op = client.invoke(input.clone()).await;
                    done = op.completion == Completion::Ok;
                    if !done {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                if !done {
                    missed.push(input.to_string());
                }
            }
            missed
        });
    }
    let mut missed = Vec::new();
    while let Some(result) = workers.join_next().await {
        missed.extend(result.unwrap_or_default());
    }
    if missed.is_empty() {
        Ok(format!(
            "{} SKUs and {} orders read",
            skus.len(),
            orders.len()
        ))
    } else {
        Err(format!(
            "{} of {total} final reads got no ok answer within 60s (e.g. {})",
            missed.len(),
            missed.first().cloned().unwrap_or_default()
        ))
    }
}

fn wall_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn check(
    options: &RunOptions,
    executed: Executed,
    header: String,
) -> (RunReport, Vec<String>, Vec<String>) {
    let Executed {
        history,
        origin_wall_ms,
        events,
        finals,
        recovery,
        crashes,
        final_reads,
        feed,
    } = executed;
    let dir = &options.run_dir;
    let mut files_error = None;
    if let Err(e) = write_history(dir, &history, &events) {
        files_error = Some(format!("cannot write the history: {e:#}"));
    }
    println!("checking {} ops...", history.len());
    let history = Arc::new(history);
    let single_sku = options.workload.single_sku();
    let modelled = options.workload.modelled();
    let budget = options.check_budget;
    let min_ok = options.min_ok_ops;
    let checked = {
        let history = history.clone();
        // CPU-bound: off the runtime thread, so Ctrl-C stays responsive.
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let linear =
                modelled.then(|| crate::check_on_wall_clock(&history, origin_wall_ms, budget));
            let linear_time = started.elapsed();
            let invariants = invariants::check_all(&history, &finals, min_ok);
            let atomicity = (!single_sku).then(|| crate::atomicity::check(&history));
            (linear, linear_time, invariants, atomicity)
        })
        .await
    };
    let mut report = RunReport::new(&options.name, &history);
    report.error = files_error;
    let mut read_anomalies = Vec::new();
    match checked {
        Err(e) => report.error = Some(format!("the checkers panicked: {e}")),
        Ok((linear, linear_time, invariants, atomicity)) => {
            read_anomalies = read_anomalies_of(linear.as_ref(), &invariants);
            match &linear {
                Some(result) => {
                    report.add_linearizability(result);
                    if let Some(check) = report.checks.last_mut() {
                        check.summary.push_str(&format!(
                            "; searched in {:.2}s of a {}s budget",
                            linear_time.as_secs_f64(),
                            budget.as_secs()
                        ));
                    }
                }
                None => println!(
                    "linearizability: not applicable (the model has no expiry; the deadline \
                     checks, the invariants and the final reads judge this workload)"
                ),
            }
            report.add_invariants(&invariants);
            if let Some(violations) = atomicity {
                report.checks.push(result(
                    "multi-item atomicity",
                    &violations,
                    "every order answer shows all its items",
                ));
            }
        }
    }
    let deadline_anomalies = crate::deadlines::check(&history, origin_wall_ms);
    report.checks.push(result(
        "deadlines",
        &deadline_anomalies,
        &format!(
            "every order's deadline and stamp agree with the harness's wall clock within {} ms",
            crate::clock_tolerance::TOLERANCE_MS
        ),
    ));
    report.checks.push(result(
        "processes",
        &crashes,
        "no node, gateway or proxy exited on its own",
    ));
    report.checks.push(match &recovery {
        Ok(text) => pass("recovery", text),
        Err(text) => fail("recovery", text),
    });
    report.checks.push(match &final_reads {
        Ok(text) => pass("final reads", text),
        Err(text) => fail("final reads", text),
    });
    report.checks.push(match &feed {
        Ok((log, head)) => result(
            "event feed",
            &feed_check::check(log, *head, &history),
            &format!(
                "a consumer following the stream through the faults got events 1..={head} once \
                 each ({} connections), every acknowledged change among them at its revision, \
                 orders in real-time order",
                log.connections
            ),
        ),
        Err(text) => fail("event feed", text),
    });

    let mut text = String::new();
    let _ = writeln!(text, "nemesis timeline ({} faults):", events.len());
    for event in &events {
        let _ = writeln!(text, "  {event}");
    }
    if events.is_empty() {
        let _ = writeln!(text, "  (none: the time limit was too short for a fault)");
    }
    let ok = history
        .ops()
        .iter()
        .filter(|o| o.completion == Completion::Ok)
        .count();
    let info = history
        .ops()
        .iter()
        .filter(|o| o.completion == Completion::Info)
        .count();
    let fail_count = history.len() - ok - info;
    let last_ns = history
        .ops()
        .iter()
        .map(|o| o.complete_ns)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        text,
        "ops: {} in {} ({ok} ok, {fail_count} fail, {info} info)",
        history.len(),
        ns(last_ns)
    );
    let _ = write!(text, "{report}");
    let _ = writeln!(text, "run dir: {}", dir.display());
    // The header was printed when the run started; the file gets it too.
    println!("{text}");
    let _ = std::fs::write(dir.join("report.txt"), format!("{header}{text}"));
    (report, read_anomalies, deadline_anomalies)
}

/// The failures a wrong read (and nothing else) explains; see [`RunOutcome::read_anomalies`].
fn read_anomalies_of(
    linear: Option<&Result<crate::LinearizabilityReport, crate::CheckError>>,
    invariants: &invariants::InvariantReport,
) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(Ok(report)) = linear {
        for sku in &report.skus {
            let culprit = sku
                .counterexample
                .as_ref()
                .and_then(|c| c.window.last())
                .filter(|op| op.kind().is_read());
            if let Some(op) = culprit {
                // The history's column padding, squeezed for a one-line summary.
                let op = op
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                found.push(format!("non-linearizable read on {}: {op}", sku.sku));
            }
        }
    }
    for (invariant, violations) in &invariants.results {
        if matches!(
            invariant,
            invariants::Invariant::RevisionsMonotonic | invariants::Invariant::AckedOrdersSurvive
        ) {
            found.extend(
                violations
                    .iter()
                    .map(|v| format!("[{}] {}", invariant.name(), v.text)),
            );
        }
    }
    found
}

fn result(name: &str, violations: &[String], what: &str) -> CheckerResult {
    if violations.is_empty() {
        pass(name, what)
    } else {
        CheckerResult {
            name: name.to_owned(),
            verdict: Verdict::Fail,
            summary: format!("{} violations; first: {}", violations.len(), violations[0]),
            detail: violations
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

fn pass(name: &str, summary: &str) -> CheckerResult {
    CheckerResult {
        name: name.to_owned(),
        verdict: Verdict::Pass,
        summary: summary.to_owned(),
        detail: String::new(),
    }
}

fn fail(name: &str, summary: &str) -> CheckerResult {
    CheckerResult {
        name: name.to_owned(),
        verdict: Verdict::Fail,
        summary: summary.to_owned(),
        detail: String::new(),
    }
}

fn write_history(dir: &std::path::Path, history: &History, events: &[Event]) -> anyhow::Result<()> {
    let file = std::fs::File::create(dir.join("history.jsonl"))?;
    history.write_jsonl(std::io::BufWriter::new(file))?;
    std::fs::write(dir.join("history.txt"), history.to_text())?;
    let timeline: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(dir.join("nemesis.txt"), timeline)?;
    Ok(())
}
