//! The `workers` setting of nodes and gateways: how many threads a process's async runtime
//! has. Absent, one per core; lower it when processes share a machine.

use crate::ConfigError;
use std::ops::RangeInclusive;

pub const WORKERS_RANGE: RangeInclusive<usize> = 1..=1024;

/// `workers`, or one per core.
pub fn threads(workers: Option<usize>) -> usize {
    workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

pub fn validate(workers: Option<usize>) -> Result<(), ConfigError> {
    match workers {
        Some(n) if !WORKERS_RANGE.contains(&n) => Err(ConfigError::invalid(
            "workers",
            format!(
                "is {n}; it must be in {}..={} (or absent: one per core)",
                WORKERS_RANGE.start(),
                WORKERS_RANGE.end()
            ),
        )),
        _ => Ok(()),
    }
}
