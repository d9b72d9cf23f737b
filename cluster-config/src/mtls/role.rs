//! Who a certificate speaks for. The role is a URI SAN (`flashstock://node/3`,
//! `flashstock://gateway`, `flashstock://admin/alice`): DNS and IP SANs say where a server
//! is, the URI says what the holder may do.

use std::fmt;
use x509_parser::extensions::GeneralName;

const SCHEME: &str = "flashstock://";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    Node(u64),
    Gateway,
    Admin(String),
}

/// A role without its id or name: what a service admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleKind {
    Node,
    Gateway,
    Admin,
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoleKind::Node => "node",
            RoleKind::Gateway => "gateway",
            RoleKind::Admin => "admin",
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// Admin names go into file names and URIs: keep them to a safe alphabet.
pub fn valid_admin_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Role {
    pub fn kind(&self) -> RoleKind {
        match self {
            Role::Node(_) => RoleKind::Node,
            Role::Gateway => RoleKind::Gateway,
            Role::Admin(_) => RoleKind::Admin,
        }
    }

    pub fn uri(&self) -> String {
        match self {
            Role::Node(id) => format!("{SCHEME}node/{id}"),
            Role::Gateway => format!("{SCHEME}gateway"),
            Role::Admin(name) => format!("{SCHEME}admin/{name}"),
        }
    }

    pub fn parse_uri(uri: &str) -> Option<Role> {
        let rest = uri.strip_prefix(SCHEME)?;
        if rest == "gateway" {
            return Some(Role::Gateway);
        }
        if let Some(id) = rest.strip_prefix("node/") {
            // Digits only: "+3" or "03" would parse but is not what `uri` writes.
            let id: u64 = id.parse().ok().filter(|_| !id.starts_with(['+', '0']))?;
            return (id > 0).then_some(Role::Node(id));
        }
        let name = rest.strip_prefix("admin/")?;
        valid_admin_name(name).then(|| Role::Admin(name.to_string()))
    }

    /// The role of a DER certificate: exactly one `flashstock://` URI SAN.
    pub fn from_cert_der(der: &[u8]) -> Result<Role, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| format!("unreadable subject alternative names: {e}"))?
            .ok_or("the certificate has no subject alternative names")?;
        let mut roles = san.value.general_names.iter().filter_map(|n| match n {
            GeneralName::URI(uri) if uri.starts_with(SCHEME) => Some(*uri),
            _ => None,
        });
        let uri = roles
            .next()
            .ok_or("the certificate names no flashstock:// role")?;
        if roles.next().is_some() {
            return Err("the certificate names more than one flashstock:// role".into());
        }
        Role::parse_uri(uri).ok_or_else(|| format!("unknown role {uri:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_odd_ones_are_refused() {
        for role in [Role::Node(3), Role::Gateway, Role::Admin("alice".into())] {
            assert_eq!(Role::parse_uri(&role.uri()), Some(role));
        }
        for bad in [
            "flashstock://node/0",
            "flashstock://node/03",
            "flashstock://node/+3",
            "flashstock://node/x",
            "flashstock://admin/",
            "flashstock://admin/a/b",
            "flashstock://gateway/1",
            "https://gateway",
        ] {
            assert_eq!(Role::parse_uri(bad), None, "{bad}");
        }
    }
}
