//! How node and gateway processes log: to stderr, filtered by `RUST_LOG`, as text for people
//! or as one JSON object per line for log shippers (`--log-format json`). Both binaries call
//! [`init`], so their logs have one shape.
//!
//! One line per request (the gateway's answer, the node's call, the term and log index a
//! submit was answered at) goes to the [`REQUESTS`] target. `RUST_LOG=info` shows it, so one
//! order can be followed from the gateway into the leader; the defaults used when `RUST_LOG`
//! is unset turn it off, because at flash-sale rates a line per request costs the hot path.

use std::fmt;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// The target of the per-request spans and lines of node and gateway.
pub const REQUESTS: &str = "requests";

/// The node's filter when `RUST_LOG` is unset.
pub const NODE_DEFAULT_FILTER: &str = "info,openraft=warn,requests=off";

/// The gateway's filter when `RUST_LOG` is unset.
pub const GATEWAY_DEFAULT_FILTER: &str = "info,requests=off";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured only on a terminal so redirected logs stay readable.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`)
    /// and the current span with its fields (the order id of a submit, say).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is not a log format; use text or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Installs the process's subscriber; `default_filter` applies when `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_print_back() {
        for f in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(f.to_string().parse::<LogFormat>(), Ok(f));
        }
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("use text or json"), "{err}");
    }
}
