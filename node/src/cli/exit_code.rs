//! `invctl`'s exit codes. A rollout gate must tell "the cluster cannot serve" from "the
//! command could not run" and from a typo, so each has its own code; 2 stays clap's, which
//! exits with it on any usage error before a command runs.

/// The command did what it was asked; for `status`, the cluster is healthy.
pub const OK: u8 = 0;
/// The command failed: no node answered, a refusal, a bad snapshot file, an I/O error.
pub const ERROR: u8 = 1;
/// `status` reached the cluster and found it unable to serve: no leader, or fewer than a
/// majority of voters answer.
pub const UNHEALTHY: u8 = 3;

/// The help text naming every code; a macro so `concat!` can put it into `after_help`.
#[macro_export]
macro_rules! exit_codes_help {
    () => {
        "Exit codes:\n  \
         0  ok (for status: a leader is known and a majority of voters answers)\n  \
         1  error: no node answered, the cluster refused, bad input file, I/O\n  \
         2  usage error (unknown flag or command, missing argument)\n  \
         3  unhealthy: status reached the cluster, but it has no leader or no quorum"
    };
}
