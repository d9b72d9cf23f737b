//! Checks for `host:port` strings that peers and gateways dial.
//!
//! These are kept as strings rather than `SocketAddr` because operators may
//! use DNS names, which must not be resolved while loading the config.

use std::net::IpAddr;

use crate::ConfigError;

/// Accepts `host:port`, `ip:port` and `[ipv6]:port` with a port in 1..=65535.
pub(crate) fn check_host_port(field: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError::invalid(
            field,
            format!("{value:?} {why}; expected host:port such as \"127.0.0.1:7001\" or \"node1.example:7001\""),
        )
    };
    if value.contains("://") {
        return Err(bad("has a URL scheme, which is not allowed here"));
    }
    if value.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad("contains whitespace or '/'"));
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(bad("has no port"));
    };
    match port.parse::<u16>() {
        Ok(0) => return Err(bad("has port 0, but the port must be 1..=65535")),
        Ok(_) => {}
        Err(_) => return Err(bad("has a port that is not a number in 1..=65535")),
    }
    let ip = if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(bad("has an unclosed '[' around the host"));
        };
        match inner.parse::<std::net::Ipv6Addr>() {
            Ok(v6) => Some(IpAddr::V6(v6)),
            Err(_) => return Err(bad("has an invalid IPv6 address inside [ ]")),
        }
    } else if host.is_empty() {
        return Err(bad("has no host"));
    } else if host.contains(':') {
        return Err(bad("has an IPv6 host without [ ] around it"));
    } else {
        host.parse::<IpAddr>().ok()
    };
    if ip.is_some_and(|ip| ip.is_unspecified()) {
        // A wildcard is fine to bind but nobody can dial it.
        return Err(bad(
            "uses an unspecified (wildcard) IP that other machines cannot dial",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_host_port;

    #[test]
    fn accepts_usual_forms() {
        for ok in [
            "127.0.0.1:7001",
            "localhost:1",
            "node-1.example.com:65535",
            "[::1]:7001",
        ] {
            check_host_port("f", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            ":7001",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:abc",
            "http://127.0.0.1:7001",
            "host name:7001",
            "::1:7001",
            "[::1:7001",
            "[zz]:7001",
            "0.0.0.0:7001",
            "[::]:7001",
        ] {
            let err = check_host_port("some.field", bad).expect_err(bad);
            assert_eq!(err.field(), Some("some.field"), "{bad}");
        }
    }
}
