//! One child process of a launcher: started from a [`Spawn`] with its output in a log file,
//! signalled by pid, and SIGKILLed and reaped when dropped, so that a failed test or an
//! interrupted demo leaves no process behind.

use anyhow::Context;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a launcher's children are started; the same for every process it starts.
#[derive(Clone, Debug, Default)]
pub struct Spawn {
    /// Programs the binary runs under, e.g. `ip netns exec NS` (which execs in place, so the
    /// child's pid is still the binary's).
    pub prefix: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Flags after the program's own arguments (a node's after `--config FILE`).
    pub extra_args: Vec<OsString>,
    pub log: LogMode,
    /// The child gets SIGKILL when this process dies, even by SIGKILL, when no `Drop` runs.
    pub die_with_parent: bool,
    /// A pipe to the child's stdin (see [`Process::take_stdin`]); otherwise `/dev/null`.
    pub piped_stdin: bool,
}

/// What happens to an earlier life's log when a process starts again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogMode {
    /// The log holds only what the process logged since it was last started.
    #[default]
    Fresh,
    /// A restarted process's log follows its earlier lives'.
    Appended,
}

impl Spawn {
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts `program` with `args`, stdout and stderr both into `log`.
    pub fn start<I, S>(&self, program: &Path, args: I, log: &Path) -> anyhow::Result<Process>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut open = std::fs::OpenOptions::new();
        open.create(true);
        match self.log {
            LogMode::Fresh => open.write(true).truncate(true),
            LogMode::Appended => open.append(true),
        };
        let log_file = open
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut command = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(program);
                command
            }
            None => Command::new(program),
        };
        command
            .args(args.into_iter().map(Into::into))
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        if self.die_with_parent {
            // SAFETY: prctl is async-signal-safe, and nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        Ok(Process { child })
    }
}

/// The signals a launcher sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    /// The process keeps its sockets (the kernel still accepts connections) but answers
    /// nothing, like a hung node.
    Stop,
    Cont,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// A running child; SIGKILLed and reaped on drop.
#[derive(Debug)]
pub struct Process {
    child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// False when the process is gone (or was already reaped).
    pub fn signal(&self, signal: Signal) -> bool {
        // SAFETY: kill(2) shares no memory. The pid is our child's; once `try_wait` has
        // reaped it the pid could be reused, so callers drop a process that has exited.
        unsafe { libc::kill(self.pid() as libc::pid_t, signal.number()) == 0 }
    }

    /// Whether it is still running. It is not reaped when it has exited (a `&self` check,
    /// for a loop that polls while others hold the process), yet an exited child counts as
    /// gone: `kill(pid, 0)` would call the unreaped zombie alive.
    pub fn is_alive(&self) -> bool {
        // SAFETY: waitid writes only into `info`, which lives on this stack; WNOWAIT leaves
        // the child waitable, so `try_wait` and `Drop` still reap it.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            let pid = self.pid() as libc::id_t;
            if libc::waitid(libc::P_PID, pid, &mut info, options) != 0 {
                // Already reaped (ECHILD): gone.
                return false;
            }
            info.si_pid() == 0
        }
    }

    /// Its exit status if it has exited (and is now reaped).
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits up to `timeout` for it to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// SIGKILL: no chance to flush anything. A stopped process dies too.
    pub fn kill(mut self) {
        self.kill_and_reap();
    }

    /// SIGTERM, then up to `grace` for a clean exit, then SIGKILL.
    pub fn terminate(mut self, grace: Duration) {
        self.signal(Signal::Term);
        if self.wait_timeout(grace).is_none() {
            self.kill_and_reap();
        }
    }

    fn kill_and_reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exited_child_is_not_alive_before_it_is_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("true.log");
        let mut process = Spawn::default()
            .start(Path::new("true"), Vec::<OsString>::new(), &log)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while process.is_alive() {
            assert!(Instant::now() < deadline, "`true` kept running");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Still waitable: is_alive did not reap it.
        assert!(process.try_wait().unwrap().is_some_and(|s| s.success()));
    }

    #[test]
    fn a_prefix_runs_the_program_and_both_streams_reach_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sh.log");
        let spawn = Spawn {
            prefix: vec!["env".into(), "GREETING=hello".into()],
            ..Spawn::default()
        };
        let mut process = spawn
            .start(
                Path::new("sh"),
                ["-c", "echo out $GREETING; echo err >&2"],
                &log,
            )
            .unwrap();
        assert!(process.wait_timeout(Duration::from_secs(10)).is_some());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("out hello") && text.contains("err"), "{text}");
    }

    #[test]
    fn a_stopped_process_dies_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let process = Spawn::default()
            .start(Path::new("sleep"), ["60"], &dir.path().join("sleep.log"))
            .unwrap();
        let pid = process.pid() as libc::pid_t;
        assert!(process.signal(Signal::Stop));
        drop(process);
        // SAFETY: signal 0 to a pid only checks whether it exists.
        let exists = unsafe { libc::kill(pid, 0) == 0 };
        assert!(!exists, "the stopped child outlived its Process");
    }
}
