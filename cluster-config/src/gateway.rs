use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::addr::check_host_port;
use crate::error::{parse_toml, read_file};
use crate::node::fits_toml_integer;
use crate::{ConfigError, TlsSettings};

/// Configuration of the HTTP gateway.
///
/// Deserializing fills defaults but does not validate; use
/// [`GatewayConfig::from_toml_str`] or [`GatewayConfig::load`], which do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address the HTTP server binds.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `host:port` of the cluster nodes' gRPC endpoints.
    pub nodes: Vec<String>,
    #[serde(default = "default_request_deadline_ms")]
    pub request_deadline_ms: u64,
    /// Most client requests handled at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Requests admitted per second; `None` disables rate limiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_sec: Option<u64>,
    /// Requests admitted in a burst above the steady rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_burst: Option<u64>,
    /// First retry delay when no leader is reachable; doubles up to the max.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// How the gateway dials the nodes: mTLS with a gateway certificate, or `insecure`.
    #[serde(default)]
    pub tls: TlsSettings,
    /// Bearer tokens of the HTTP API; none means the API is open (API.md, Access control).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<ApiToken>,
    /// How long a request body may take to arrive in full; a slower one is refused.
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// Serve the HTTP API over TLS with this certificate; absent: plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https: Option<HttpsSettings>,
    /// Threads that serve requests; absent: one per core (`worker_threads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
}

/// The certificate the gateway's HTTP listener presents: any server certificate clients
/// trust (a public CA's, a company CA's, or `invctl certs gateway` with the cluster CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsSettings {
    /// The certificate chain, PEM, leaf first.
    pub cert: std::path::PathBuf,
    /// Its private key, PEM.
    pub key: std::path::PathBuf,
}

/// One bearer token, as its SHA-256 (`invctl tokens new` prints the line to paste).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it, for people reading the config; never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SHA-256 of the token, 64 hex characters.
    pub sha256: String,
    /// Of `orders`, `catalog`, `read`.
    pub scopes: Vec<String>,
}

// The hash is no secret, but keep configs' Debug output short and free of it anyway.
impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl ApiToken {
    pub const SCOPES: [&'static str; 3] = ["orders", "catalog", "read"];

    fn validate(&self, i: usize) -> Result<(), ConfigError> {
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConfigError::invalid(
                format!("tokens[{i}].sha256"),
                "must be 64 hex characters (the line `invctl tokens new` prints)",
            ));
        }
        if self.scopes.is_empty() {
            return Err(ConfigError::invalid(
                format!("tokens[{i}].scopes"),
                "is empty; give at least one of orders, catalog, read",
            ));
        }
        if let Some(bad) = self
            .scopes
            .iter()
            .find(|s| !Self::SCOPES.contains(&s.as_str()))
        {
            return Err(ConfigError::invalid(
                format!("tokens[{i}].scopes"),
                format!("{bad:?} is not a scope; use orders, catalog or read"),
            ));
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)
}
fn default_request_deadline_ms() -> u64 {
    5_000
}
fn default_max_in_flight() -> usize {
    16_384
}
fn default_backoff_initial_ms() -> u64 {
    10
}
fn default_backoff_max_ms() -> u64 {
    500
}
fn default_body_timeout_ms() -> u64 {
    10_000
}

impl GatewayConfig {
    pub const REQUEST_DEADLINE_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=600_000;
    pub const BODY_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=600_000;

    /// How many threads serve requests: `workers`, or one per core. One thread spent about
    /// a tenth less CPU per request than two on a two-core machine, but did not serve more
    /// (README, "Gateway threads"); operators sharing a machine set it lower.
    pub fn worker_threads(&self) -> usize {
        crate::workers::threads(self.workers)
    }

    /// A config with every default and the given nodes, for launchers that
    /// build a gateway config in code; it dials the nodes in plaintext until `tls` is set.
    pub fn with_nodes(nodes: Vec<String>) -> GatewayConfig {
        GatewayConfig {
            listen: default_listen(),
            nodes,
            request_deadline_ms: default_request_deadline_ms(),
            max_in_flight: default_max_in_flight(),
            rate_limit_per_sec: None,
            rate_limit_burst: None,
            backoff_initial_ms: default_backoff_initial_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            tls: TlsSettings::insecure(),
            tokens: Vec::new(),
            body_timeout_ms: default_body_timeout_ms(),
            https: None,
            workers: None,
        }
    }

    /// Parses and validates a gateway config.
    pub fn from_toml_str(text: &str) -> Result<GatewayConfig, ConfigError> {
        let config: GatewayConfig = parse_toml(text, None)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a gateway config file.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let config: GatewayConfig = parse_toml(&read_file(path)?, Some(path))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule that the TOML schema alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(ConfigError::invalid(
                "nodes",
                "is empty; list the host:port of at least one cluster node",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            check_host_port(&format!("nodes[{i}]"), node)?;
            if !seen.insert(node.as_str()) {
                return Err(ConfigError::invalid(
                    "nodes",
                    format!("lists {node:?} twice; remove the duplicate"),
                ));
            }
        }
        if !Self::REQUEST_DEADLINE_RANGE_MS.contains(&self.request_deadline_ms) {
            return Err(ConfigError::invalid(
                "request_deadline_ms",
                format!(
                    "is {} ms; it must be in {}..={} ms (default 5000)",
                    self.request_deadline_ms,
                    Self::REQUEST_DEADLINE_RANGE_MS.start(),
                    Self::REQUEST_DEADLINE_RANGE_MS.end()
                ),
            ));
        }
        crate::workers::validate(self.workers)?;
        if self.max_in_flight == 0 {
            return Err(ConfigError::invalid(
                "max_in_flight",
                "is 0, which would refuse every request; use at least 1 (default 16384)",
            ));
        }
        fits_toml_integer("max_in_flight", self.max_in_flight as u64)?;
        match (self.rate_limit_per_sec, self.rate_limit_burst) {
            (Some(0), _) => {
                return Err(ConfigError::invalid(
                    "rate_limit_per_sec",
                    "is 0, which would refuse every request; use at least 1, \
                     or remove it to disable rate limiting",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "rate_limit_burst",
                    "is set without rate_limit_per_sec; set rate_limit_per_sec too, \
                     or remove rate_limit_burst",
                ))
            }
            (_, Some(0)) => {
                return Err(ConfigError::invalid(
                    "rate_limit_burst",
                    "is 0, which would refuse every request; use at least 1, \
                     or remove it to use the default burst",
                ))
            }
            (rate, burst) => {
                if let Some(rate) = rate {
                    fits_toml_integer("rate_limit_per_sec", rate)?;
                }
                if let Some(burst) = burst {
                    fits_toml_integer("rate_limit_burst", burst)?;
                }
            }
        }
        if self.backoff_initial_ms == 0 {
            // Retrying with no delay would hammer a cluster that is electing.
            return Err(ConfigError::invalid(
                "backoff_initial_ms",
                "is 0; use at least 1 ms (default 10)",
            ));
        }
        if self.backoff_initial_ms > self.backoff_max_ms {
            return Err(ConfigError::invalid(
                "backoff_initial_ms",
                format!(
                    "is {} ms, above backoff_max_ms = {} ms; lower it or raise backoff_max_ms",
                    self.backoff_initial_ms, self.backoff_max_ms
                ),
            ));
        }
        fits_toml_integer("backoff_max_ms", self.backoff_max_ms)?;
        if !Self::BODY_TIMEOUT_RANGE_MS.contains(&self.body_timeout_ms) {
            return Err(ConfigError::invalid(
                "body_timeout_ms",
                format!(
                    "is {} ms; it must be in {}..={} ms (default 10000)",
                    self.body_timeout_ms,
                    Self::BODY_TIMEOUT_RANGE_MS.start(),
                    Self::BODY_TIMEOUT_RANGE_MS.end()
                ),
            ));
        }
        for (i, token) in self.tokens.iter().enumerate() {
            token.validate(i)?;
        }
        if let Some(https) = &self.https {
            for (field, path) in [("https.cert", &https.cert), ("https.key", &https.key)] {
                if path.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(field, "is empty; give a PEM file"));
                }
            }
        }
        self.tls.validate()
    }

    /// Renders the config as TOML that [`GatewayConfig::from_toml_str`] reads
    /// back to an equal config.
    ///
    /// # Panics
    ///
    /// If an integer exceeds `i64::MAX`, which TOML cannot represent;
    /// [`GatewayConfig::validate`] rejects such configs.
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self)
            .unwrap_or_else(|e| panic!("gateway config cannot be written as TOML: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"nodes = ["127.0.0.1:7001"]
tls = { insecure = true }"#;

    fn valid() -> GatewayConfig {
        GatewayConfig::from_toml_str(
            r#"
            listen = "0.0.0.0:9000"
            nodes = ["10.0.0.1:7001", "10.0.0.2:7001", "node3.example:7001"]
            request_deadline_ms = 100
            max_in_flight = 1
            rate_limit_per_sec = 1000
            rate_limit_burst = 2000
            backoff_initial_ms = 5
            backoff_max_ms = 5
            body_timeout_ms = 250
            workers = 3
            tls = { ca = "ca.pem", cert = "gateway.pem", key = "gateway.key" }
            https = { cert = "gateway-https.pem", key = "gateway-https.key" }
            "#,
        )
        .expect("valid gateway config")
    }

    fn assert_invalid(config: &GatewayConfig, field: &str) {
        match config.validate() {
            Err(e @ ConfigError::Invalid { .. }) => {
                assert_eq!(e.field(), Some(field), "{e}");
                assert!(e
                    .to_string()
                    .starts_with(&format!("invalid config: {field}: ")));
            }
            other => panic!("expected an Invalid error on {field}, got {other:?}"),
        }
    }

    fn parse_error(text: &str) -> String {
        match GatewayConfig::from_toml_str(text) {
            Err(e @ ConfigError::Parse { .. }) => e.to_string(),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn tokens_need_a_hash_and_known_scopes() {
        let with = |token: &str| {
            GatewayConfig::from_toml_str(&format!("{MINIMAL}\n[[tokens]]\n{token}"))
                .map_err(|e| e.field().unwrap_or_default().to_string())
        };
        let hash = "ab".repeat(32);
        assert!(with(&format!(
            "sha256 = \"{hash}\"\nscopes = [\"orders\", \"read\"]"
        ))
        .is_ok());
        assert_eq!(
            with("sha256 = \"abc\"\nscopes = [\"read\"]").unwrap_err(),
            "tokens[0].sha256"
        );
        assert_eq!(
            with(&format!("sha256 = \"{hash}\"\nscopes = []")).unwrap_err(),
            "tokens[0].scopes"
        );
        assert_eq!(
            with(&format!("sha256 = \"{hash}\"\nscopes = [\"admin\"]")).unwrap_err(),
            "tokens[0].scopes"
        );
    }

    #[test]
    fn defaults_filled() {
        let c = GatewayConfig::from_toml_str(MINIMAL).unwrap();
        assert_eq!(c, GatewayConfig::with_nodes(vec!["127.0.0.1:7001".into()]));
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.request_deadline_ms, 5000);
        assert_eq!(c.max_in_flight, 16384);
        assert_eq!(c.rate_limit_per_sec, None);
        assert_eq!(c.rate_limit_burst, None);
        assert_eq!(c.backoff_initial_ms, 10);
        assert_eq!(c.backoff_max_ms, 500);
        assert_eq!(c.body_timeout_ms, 10_000);
        assert_eq!(c.https, None);
        assert_eq!(c.workers, None);
        assert!(c.worker_threads() >= 1);
        assert_eq!(valid().worker_threads(), 3);
    }

    #[test]
    fn https_section_round_trips() {
        let text = format!("{MINIMAL}\nhttps = {{ cert = \"gw.pem\", key = \"gw.key\" }}\n");
        let c = GatewayConfig::from_toml_str(&text).unwrap();
        let https = c.https.clone().unwrap();
        assert_eq!(https.cert, std::path::PathBuf::from("gw.pem"));
        assert_eq!(
            GatewayConfig::from_toml_str(&c.to_toml_string()).unwrap(),
            c
        );
        let e = parse_error(&format!("{MINIMAL}\nhttps = {{ cert = \"gw.pem\" }}\n"));
        assert!(e.contains("missing field `key`"), "{e}");
    }

    #[test]
    fn round_trips_through_toml() {
        for c in [valid(), GatewayConfig::from_toml_str(MINIMAL).unwrap()] {
            let text = c.to_toml_string();
            assert_eq!(GatewayConfig::from_toml_str(&text).unwrap(), c, "{text}");
        }
    }

    #[test]
    fn unknown_field_rejected() {
        let e = parse_error(&format!("{MINIMAL}\nrequest_deadline = 5\n"));
        assert!(e.contains("unknown field `request_deadline`"), "{e}");
    }

    #[test]
    fn missing_nodes_rejected_with_toml_message() {
        let e = parse_error("listen = \"127.0.0.1:8080\"\n");
        assert!(e.contains("missing field `nodes`"), "{e}");
    }

    #[test]
    fn node_rules() {
        let mut c = valid();
        c.nodes.clear();
        assert_invalid(&c, "nodes");

        let mut c = valid();
        c.nodes.push("10.0.0.1:7001".into());
        assert_invalid(&c, "nodes");

        let mut c = valid();
        c.nodes[1] = "10.0.0.2".into();
        assert_invalid(&c, "nodes[1]");
    }

    #[test]
    fn limit_rules() {
        type Edit = fn(&mut GatewayConfig);
        let cases: [(&str, Edit); 16] = [
            ("workers", |c| c.workers = Some(0)),
            ("workers", |c| c.workers = Some(1025)),
            ("request_deadline_ms", |c| c.request_deadline_ms = 99),
            ("request_deadline_ms", |c| c.request_deadline_ms = 600_001),
            ("max_in_flight", |c| c.max_in_flight = 0),
            ("rate_limit_per_sec", |c| c.rate_limit_per_sec = Some(0)),
            ("rate_limit_burst", |c| c.rate_limit_per_sec = None),
            ("rate_limit_burst", |c| c.rate_limit_burst = Some(0)),
            ("rate_limit_per_sec", |c| {
                c.rate_limit_per_sec = Some(u64::MAX)
            }),
            ("backoff_initial_ms", |c| c.backoff_initial_ms = 0),
            ("backoff_initial_ms", |c| {
                c.backoff_initial_ms = c.backoff_max_ms + 1
            }),
            ("backoff_max_ms", |c| {
                c.backoff_max_ms = u64::MAX;
            }),
            ("body_timeout_ms", |c| c.body_timeout_ms = 99),
            ("body_timeout_ms", |c| c.body_timeout_ms = 600_001),
            ("https.cert", |c| {
                c.https = Some(HttpsSettings {
                    cert: "".into(),
                    key: "k.pem".into(),
                })
            }),
            ("https.key", |c| {
                c.https = Some(HttpsSettings {
                    cert: "c.pem".into(),
                    key: "".into(),
                })
            }),
        ];
        for (field, edit) in cases {
            let mut c = valid();
            edit(&mut c);
            assert_invalid(&c, field);
        }
        // Rate without burst is fine; the upper deadline bound is inclusive.
        let mut c = valid();
        c.rate_limit_burst = None;
        c.request_deadline_ms = 600_000;
        c.validate().unwrap();
    }

    #[test]
    fn validation_runs_on_parse() {
        let e = GatewayConfig::from_toml_str("nodes = []").unwrap_err();
        assert_eq!(e.field(), Some("nodes"));
    }
}
