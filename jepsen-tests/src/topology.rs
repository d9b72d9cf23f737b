//! The network: one namespace per node (`inv-nI`, `eth0` = 10.77.0.I/24) joined by veth pairs
//! to the bridge `jbr0` (10.77.0.254/24) in the root namespace, where the harness runs. Nothing
//! outside this machine is addressed: the range is private and lives only inside namespaces we
//! create; no NAT, no forwarding.
//!
//! Faults on links are nftables rules in a dedicated table (`inet jepsen`) inside a node's
//! namespace, on its input hook: dropping packets from peers cuts node<->node and
//! gateway<->remote-node traffic but never harness<->gateway (the harness is 10.77.0.254).
//! Healing is deleting the table.
//!
//! Cleanup: every namespace and child pid is recorded in a process-wide registry, emptied by
//! [`cleanup_all`] on drop of the [`Topology`], from the panic hook and on Ctrl-C/SIGTERM
//! (see [`install_cleanup_handlers`]); children also get `PR_SET_PDEATHSIG` so they die with
//! the harness even if it is killed with SIGKILL. Leftovers of such a run (its namespaces and
//! the processes still in them) are removed by [`clean_stale`] at the next start.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub const BRIDGE: &str = "jbr0";
pub const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);
pub const PREFIX_LEN: u8 = 24;
/// Namespaces of this harness are `inv-n<id>`; nothing else is ever touched.
pub const NS_PREFIX: &str = "inv-n";
/// Root-side veth ends are `jv<id>`.
const VETH_PREFIX: &str = "jv";
/// The nftables table holding a namespace's faults.
pub const NFT_TABLE: &str = "jepsen";
/// The largest cluster the address plan supports (10.77.0.1 ..= 10.77.0.9).
pub const MAX_NODES: u32 = 9;

/// The address of node `id` inside its namespace.
pub fn node_ip(id: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, id as u8)
}

pub fn ns_name(id: u32) -> String {
    format!("{NS_PREFIX}{id}")
}

#[derive(Default)]
struct Registry {
    namespaces: BTreeSet<String>,
    pids: BTreeSet<u32>,
    bridge: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    namespaces: BTreeSet::new(),
    pids: BTreeSet::new(),
    bridge: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records a child so that cleanup kills it.
pub fn register_pid(pid: u32) {
    registry().pids.insert(pid);
}

/// Forgets a child that was reaped.
pub fn unregister_pid(pid: u32) {
    registry().pids.remove(&pid);
}

/// Sends `signal` to `pid`; false if it is gone.
pub fn signal(pid: u32, signal: libc::c_int) -> bool {
    // SAFETY: kill(2) with a pid we started; no memory is shared.
    unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// Kills every registered child and removes every registered namespace and the bridge.
/// Idempotent, and safe to call from a panic hook or a signal task (it never panics).
pub fn cleanup_all() {
    let (pids, namespaces, bridge) = {
        // A panic while the registry was held must not stop cleanup.
        let mut reg = match REGISTRY.try_lock() {
            Ok(reg) => reg,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        (
            std::mem::take(&mut reg.pids),
            std::mem::take(&mut reg.namespaces),
            std::mem::replace(&mut reg.bridge, false),
        )
    };
    for pid in &pids {
        // A stopped process must be continued to die promptly on some kernels' accounting;
        // SIGKILL works on stopped processes, SIGCONT first costs nothing.
        signal(*pid, libc::SIGCONT);
        signal(*pid, libc::SIGKILL);
    }
    for ns in &namespaces {
        kill_namespace_pids(ns);
        let _ = quiet("ip", &["netns", "del", ns]);
    }
    // A namespace dies (taking its veth pair along) once its last socket is gone. Closing
    // TCP connections still exchange FINs over the bridge, so the bridge stays until the
    // pairs are gone or a few seconds passed; pairs still pinned by then are deleted from the
    // root side (which cuts what is left of those connections).
    let veths: Vec<String> = namespaces
        .iter()
        .filter_map(|ns| ns.strip_prefix(NS_PREFIX))
        .map(|id| format!("{VETH_PREFIX}{id}"))
        .collect();
    let present = |veth: &String| Path::new("/sys/class/net").join(veth).exists();
    let deadline = Instant::now() + Duration::from_secs(3);
    while veths.iter().any(present) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for veth in veths.iter().filter(|v| present(v)) {
        let _ = quiet("ip", &["link", "del", veth]);
    }
    if bridge {
        let _ = quiet("ip", &["link", "del", BRIDGE]);
    }
}

/// Runs cleanup on panic (before the default hook prints) and on Ctrl-C/SIGTERM (then exits
/// 130). Call once, from inside the tokio runtime.
pub fn install_cleanup_handlers() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        cleanup_all();
        default(info);
    }));
    tokio::spawn(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    interrupted();
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        interrupted();
    });
}

fn interrupted() -> ! {
    eprintln!("jepsen: interrupted; killing the cluster and removing its namespaces");
    cleanup_all();
    std::process::exit(130);
}

/// Runs a command, failing with its stderr if it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Like [`run`], for commands whose failure is expected and harmless (cleanup).
fn quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program args` inside namespace `ns`, feeding `stdin`.
pub async fn run_in_ns(ns: &str, program: &str, args: &[&str], stdin: &str) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run ip netns exec {ns} {program}"))?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "`ip netns exec {ns} {program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Why this machine cannot run the harness (not root, no `ip netns`, no `nft`), or `Ok`.
pub fn preflight() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root (network namespaces and nftables need root)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(format!("`{tool}` not found (install {package})"));
        }
    }
    // Not under NS_PREFIX: a concurrent harness must not take it for a stale node namespace.
    let probe = format!("inv-probe-{}", std::process::id());
    let _ = quiet("ip", &["netns", "del", &probe]);
    if let Err(e) = run("ip", &["netns", "add", &probe]) {
        return Err(format!("network namespaces unavailable: {e}"));
    }
    let nft = Command::new("ip")
        .args(["netns", "exec", &probe, "nft", "list", "ruleset"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let _ = quiet("ip", &["netns", "del", &probe]);
    match nft {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "nftables unusable in a namespace: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Err(e) => return Err(format!("cannot run nft in a namespace: {e}")),
    }
    // The address plan must not collide with a route the machine already has.
    if let Ok(routes) = run("ip", &["-4", "route", "show", "10.77.0.0/24"]) {
        if let Some(line) = routes.lines().find(|l| !l.contains(BRIDGE)) {
            return Err(format!(
                "10.77.0.0/24 is already routed on this machine ({line}); the harness needs it"
            ));
        }
    }
    Ok(())
}

fn kill_namespace_pids(ns: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", ns]) else {
        return;
    };
    for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        signal(pid, libc::SIGCONT);
        signal(pid, libc::SIGKILL);
    }
}

/// Removes what an aborted run left: our namespaces (after killing what runs in them), the
/// bridge, and root-side veth ends. Touches only names of this harness.
pub fn clean_stale() -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    let list = run("ip", &["netns", "list"])?;
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with(NS_PREFIX) {
            kill_namespace_pids(name);
            // Killed processes leave the namespace only once reaped by their parent (if
            // that is us) or init; the name can go regardless.
            run("ip", &["netns", "del", name])?;
            removed.push(format!("namespace {name}"));
        }
    }
    let links = run("ip", &["-o", "link", "show"])?;
    for line in links.lines() {
        // "12: jv1@if11: <...>" -> "jv1"
        let Some(name) = line.split(':').nth(1) else {
            continue;
        };
        let name = name.trim().split('@').next().unwrap_or("");
        let ours = name == BRIDGE
            || name
                .strip_prefix(VETH_PREFIX)
                .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()));
        if ours && quiet("ip", &["link", "del", name]) {
            removed.push(format!("link {name}"));
        }
    }
    Ok(removed)
}

/// Where the harness lock lives: one harness at a time owns the namespaces and the bridge.
const LOCK_PATH: &str = "/run/lock/jepsen-inv.lock";

static LOCK: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Takes the machine-wide harness lock for the life of this process (released by the kernel
/// when it exits, however it exits). A second harness would otherwise take the first one's
/// namespaces for stale and destroy them.
fn lock_harness() -> anyhow::Result<()> {
    if LOCK.get().is_some() {
        return Ok(());
    }
    let path = Path::new(LOCK_PATH);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {LOCK_PATH}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; it is close-on-exec, so children do not hold it.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(path).unwrap_or_default();
        bail!(
            "another jepsen run holds {LOCK_PATH} ({}); wait for it to finish",
            holder.trim()
        );
    }
    let _ = file.set_len(0);
    let _ = std::io::Write::write_all(&mut &file, format!("pid {}", std::process::id()).as_bytes());
    let _ = LOCK.set(file);
    Ok(())
}

/// The bridge and the namespaces of one run. Dropping it kills every child and removes them.
pub struct Topology {
    pub nodes: Vec<u32>,
}

impl Topology {
    /// Creates the bridge and `n` namespaces (ids 1..=n), after removing stale ones.
    pub fn create(n: u32) -> anyhow::Result<Topology> {
        if n == 0 || n > MAX_NODES {
            bail!("cluster size {n} is outside 1..={MAX_NODES}");
        }
        lock_harness()?;
        let stale = clean_stale()?;
        if !stale.is_empty() {
            println!("removed leftovers of an earlier run: {}", stale.join(", "));
        }
        // A deleted namespace takes its veth pair with it asynchronously; wait for the names
        // to be free.
        let deadline = Instant::now() + Duration::from_secs(5);
        while (1..=n).any(|id| quiet("ip", &["link", "show", &format!("{VETH_PREFIX}{id}")])) {
            if Instant::now() > deadline {
                bail!("veth ends of an earlier run did not go away");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let topology = Topology {
            nodes: (1..=n).collect(),
        };
        registry().bridge = true;
        run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{BRIDGE_IP}/{PREFIX_LEN}"),
                "dev",
                BRIDGE,
            ],
        )?;
        run("ip", &["link", "set", BRIDGE, "up"])?;
        for id in 1..=n {
            let ns = ns_name(id);
            let root_end = format!("{VETH_PREFIX}{id}");
            let ns_end = format!("{VETH_PREFIX}{id}p");
            registry().namespaces.insert(ns.clone());
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "link", "add", &root_end, "type", "veth", "peer", "name", &ns_end,
                ],
            )?;
            run("ip", &["link", "set", &ns_end, "netns", &ns])?;
            run("ip", &["-n", &ns, "link", "set", &ns_end, "name", "eth0"])?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{}/{PREFIX_LEN}", node_ip(id)),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            run("ip", &["link", "set", &root_end, "master", BRIDGE])?;
            run("ip", &["link", "set", &root_end, "up"])?;
        }
        Ok(topology)
    }

    /// Replaces namespace `id`'s fault table with `rules` (lines of an nft input chain).
    pub async fn set_rules(&self, id: u32, rules: &[String]) -> anyhow::Result<()> {
        let mut script = String::new();
        // `add` then `delete` makes the delete succeed whether or not the table existed.
        script.push_str(&format!("add table inet {NFT_TABLE}\n"));
        script.push_str(&format!("delete table inet {NFT_TABLE}\n"));
        if !rules.is_empty() {
            script.push_str(&format!(
                "table inet {NFT_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n"
            ));
            for rule in rules {
                script.push_str(&format!("    {rule}\n"));
            }
            script.push_str("  }\n}\n");
        }
        run_in_ns(&ns_name(id), "nft", &["-f", "-"], &script).await
    }

    /// Removes every fault table (heal).
    pub async fn clear_rules(&self) -> anyhow::Result<()> {
        for &id in &self.nodes {
            self.set_rules(id, &[]).await?;
        }
        Ok(())
    }

    /// Removes everything now (also done on drop).
    pub fn teardown(&self) {
        cleanup_all();
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        cleanup_all();
    }
}

/// What runs a program inside namespace `ns`: `ip netns exec` execs it in place, so the
/// child's pid is the program's.
pub fn ns_prefix(ns: &str) -> Vec<OsString> {
    ["ip", "netns", "exec", ns].map(OsString::from).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_private_plan() {
        assert_eq!(node_ip(1).to_string(), "10.77.0.1");
        assert_eq!(node_ip(5).to_string(), "10.77.0.5");
        assert_eq!(ns_name(3), "inv-n3");
        assert!(node_ip(MAX_NODES).octets()[3] < BRIDGE_IP.octets()[3]);
    }
}
