//! Runs bulky background work (building a snapshot, a checkpoint) on a thread of its own at a
//! lower CPU priority, so that it takes the cores' spare time rather than time from serving.
//!
//! A snapshot build exports and writes the whole state: two or three seconds of one core for
//! a few million orders. On a 2-core machine shared by three nodes and a gateway, that core
//! was taken from apply, replication and the log's syncs, and at 15,000 orders/s offered
//! every build (on a follower too) left orders waiting 500–900 ms. At `NICE` the build still
//! gets a share when nothing is idle, so it always finishes and the log is still purged.
//!
//! A checkpoint is smaller (about 10 ms of one core for a second of orders at 15,000 a
//! second) but comes every second on every node, and each one showed in the latency of the
//! orders answered while it ran (README, "Checkpoints at a lower priority"). It runs on a
//! `Worker`: one long-lived thread, rather than a new one a second.
//!
//! Linux gives each thread its own nice value; elsewhere the work runs at normal priority.

use std::sync::mpsc;
use tokio::sync::oneshot;

/// The nice value of such a thread. Under the scheduler's weights a nice-10 thread gets about
/// a tenth of what a nice-0 thread gets when both want the CPU: enough that a build under
/// full load still ends within a minute or two, little enough that serving barely notices it.
pub const NICE: i32 = 10;

/// Runs `work` on a new thread named `name` at nice `NICE`, and returns its result. The
/// thread's panic becomes an error naming it.
pub async fn run<T, F>(name: &str, work: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    // The worker is dropped once the work is done, and its thread ends with it.
    Worker::start(name)?.run(work).await
}

type Job = Box<dyn FnOnce() + Send>;

/// One thread at nice `NICE` that runs the work it is handed, one piece at a time, in the
/// order handed. The thread ends when the worker is dropped, or with a piece that panics.
pub struct Worker {
    name: String,
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    pub fn start(name: &str) -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                lower_this_thread();
                for job in queue {
                    job();
                }
            })?;
        Ok(Worker {
            name: name.to_owned(),
            jobs,
        })
    }

    /// Runs `work` on the worker's thread and returns its result; an error naming the thread
    /// if this or an earlier piece of work panicked.
    pub async fn run<T, F>(&self, work: F) -> std::io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let gone = || std::io::Error::other(format!("the {} thread panicked", self.name));
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| gone())?;
        result.await.map_err(|_| gone())
    }
}

#[cfg(target_os = "linux")]
fn lower_this_thread() {
    // SAFETY: plain integers; on Linux PRIO_PROCESS with id 0 means the calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
    if rc != 0 {
        // Not fatal: the work runs, only at normal priority.
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a background thread"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_runs_on_a_named_thread_at_the_lower_priority() {
        // SAFETY: plain integers; reads the calling thread's nice value.
        let caller = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let before = caller();
        let (name, nice) = run("low-priority-test", || {
            let name = std::thread::current().name().map(str::to_owned);
            // SAFETY: plain integers; reads the calling thread's nice value.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            (name, nice)
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("low-priority-test"));
        // A test run already niced past NICE may not be raised back to it without privilege.
        assert!(nice >= NICE, "nice {nice}");
        assert_eq!(caller(), before, "the caller's own thread is untouched");
    }

    #[tokio::test]
    async fn a_worker_runs_each_piece_on_its_one_thread_at_the_lower_priority() {
        let worker = Worker::start("worker-test").unwrap();
        let mut threads = Vec::new();
        for _ in 0..3 {
            let (name, id, nice) = worker
                .run(|| {
                    let me = std::thread::current();
                    // SAFETY: plain integers; reads the calling thread's nice value.
                    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
                    (me.name().map(str::to_owned), me.id(), nice)
                })
                .await
                .unwrap();
            assert_eq!(name.as_deref(), Some("worker-test"));
            assert!(nice >= NICE, "nice {nice}");
            threads.push(id);
        }
        threads.dedup();
        assert_eq!(threads.len(), 1, "one thread for every piece");
    }

    #[tokio::test]
    async fn a_worker_whose_work_panicked_refuses_the_next_piece() {
        let worker = Worker::start("worker-doomed").unwrap();
        let err = worker
            .run(|| -> u32 { panic!("on purpose") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("worker-doomed"), "{err}");
        let err = worker.run(|| 1).await.unwrap_err();
        assert!(err.to_string().contains("worker-doomed"), "{err}");
    }

    #[tokio::test]
    async fn a_panic_is_an_error_naming_the_thread() {
        let err = run("doomed", || -> u32 { panic!("on purpose") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("doomed"), "{err}");
    }
}
