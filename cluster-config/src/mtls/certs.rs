//! The cluster's certificate authority and the certificates it signs (rcgen).
//!
//! A CA directory holds `ca.pem` and `ca.key`, and every certificate made from it as
//! `<name>.pem` with its key `<name>.key` (`node-3`, `gateway`, `admin-alice`). Node
//! certificates carry [`NODE_DNS_NAME`] besides their host, so a client can check any node
//! against one fixed name whatever address it dialled.

use crate::mtls::key_file::{private_dir, read_secret, write_public, write_secret};
use crate::mtls::role::Role;
use crate::mtls::NODE_DNS_NAME;
use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";
/// Ten years: rotating the CA means restarting every process with new certificates.
pub const CA_DAYS: i64 = 3650;
/// Leaf certificates are cheap to reissue (README: rotation).
pub const LEAF_DAYS: i64 = 365;

/// A CA in memory: its certificate and the key that signs with it.
pub struct Ca {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// Paths of one issued certificate in a CA directory.
#[derive(Debug, Clone)]
pub struct IssuedFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A new self-signed CA valid from now for `days`.
    pub fn generate(days: i64) -> anyhow::Result<Ca> {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "flashstock cluster CA");
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(days);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Reads `ca.pem` and `ca.key` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Ca> {
        let cert_path = dir.join(CA_CERT);
        let cert_pem = std::fs::read_to_string(&cert_path).with_context(|| {
            format!(
                "cannot read {} (make the CA first: invctl certs init)",
                cert_path.display()
            )
        })?;
        let key_pem =
            String::from_utf8(read_secret(&dir.join(CA_KEY))?).context("the CA key is not PEM")?;
        let key = KeyPair::from_pem(&key_pem).context("the CA key is not a usable PEM key")?;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).context("ca.pem is not a CA certificate")?;
        Ok(Ca { cert_pem, issuer })
    }

    /// Writes a new CA into `dir` (created 0700); refuses to replace an existing one.
    pub fn init(dir: &Path, days: i64) -> anyhow::Result<PathBuf> {
        private_dir(dir)?;
        if dir.join(CA_KEY).exists() || dir.join(CA_CERT).exists() {
            bail!(
                "{} already holds a CA; use another directory",
                dir.display()
            );
        }
        let ca = Ca::generate(days)?;
        write_secret(
            &dir.join(CA_KEY),
            ca.issuer.key().serialize_pem().as_bytes(),
        )?;
        write_public(&dir.join(CA_CERT), ca.cert_pem.as_bytes())?;
        Ok(dir.join(CA_CERT))
    }

    /// A certificate for `role` valid from now for `days`. `hosts` are DNS names or IP
    /// addresses the holder serves under (node: its advertised host).
    pub fn issue(&self, role: &Role, hosts: &[String], days: i64) -> anyhow::Result<Issued> {
        let now = OffsetDateTime::now_utc();
        self.issue_between(
            role,
            hosts,
            now - Duration::minutes(5),
            now + Duration::days(days),
        )
    }

    /// As [`Ca::issue`], with an explicit validity (tests make expired certificates).
    pub fn issue_between(
        &self,
        role: &Role,
        hosts: &[String],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> anyhow::Result<Issued> {
        let mut names: Vec<String> = hosts.to_vec();
        if matches!(role, Role::Node(_)) {
            names.push(NODE_DNS_NAME.to_string());
        }
        names.sort();
        names.dedup();
        let mut params = CertificateParams::new(names).context("bad host name")?;
        params
            .subject_alt_names
            .push(SanType::URI(role.uri().try_into()?));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, role.uri());
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Nodes serve gRPC and dial peers; a gateway may serve HTTPS; admins only dial.
        params.extended_key_usages = match role {
            Role::Node(_) | Role::Gateway => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Role::Admin(_) => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The file stem of a role's certificate in a CA directory.
pub fn file_stem(role: &Role) -> String {
    match role {
        Role::Node(id) => format!("node-{id}"),
        Role::Gateway => "gateway".into(),
        Role::Admin(name) => format!("admin-{name}"),
    }
}

/// Issues a certificate for `role` from the CA in `dir` and writes it beside the CA.
pub fn issue_into(
    dir: &Path,
    role: &Role,
    hosts: &[String],
    days: i64,
) -> anyhow::Result<IssuedFiles> {
    let ca = Ca::load(dir)?;
    let issued = ca.issue(role, hosts, days)?;
    let stem = file_stem(role);
    let files = IssuedFiles {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    };
    if files.cert.exists() || files.key.exists() {
        bail!(
            "{} already exists; move the old certificate and key away to reissue",
            files.cert.display()
        );
    }
    write_secret(&files.key, issued.key_pem.as_bytes())?;
    write_public(&files.cert, issued.cert_pem.as_bytes())?;
    Ok(files)
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
pub fn host_of(addr: &str) -> anyhow::Result<String> {
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("{addr:?} is not host:port"))?;
    if port.parse::<u16>().is_err() || host.is_empty() {
        bail!("{addr:?} is not host:port");
    }
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_their_role() {
        let ca = Ca::generate(1).unwrap();
        for role in [Role::Node(3), Role::Gateway, Role::Admin("alice".into())] {
            let issued = ca.issue(&role, &["127.0.0.1".into()], 1).unwrap();
            let der = rustls_pem_der(&issued.cert_pem);
            assert_eq!(Role::from_cert_der(&der).unwrap(), role);
        }
    }

    #[test]
    fn a_ca_directory_round_trips_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        Ca::init(&ca_dir, 1).unwrap();
        assert!(Ca::init(&ca_dir, 1).is_err());
        let files = issue_into(&ca_dir, &Role::Node(2), &["127.0.0.1".into()], 1).unwrap();
        assert!(issue_into(&ca_dir, &Role::Node(2), &[], 1).is_err());
        let der = rustls_pem_der(&std::fs::read_to_string(files.cert).unwrap());
        assert_eq!(Role::from_cert_der(&der).unwrap(), Role::Node(2));
    }

    #[test]
    fn host_of_splits_host_and_port() {
        assert_eq!(host_of("10.0.0.1:7001").unwrap(), "10.0.0.1");
        assert_eq!(host_of("[::1]:7001").unwrap(), "::1");
        assert_eq!(host_of("node1.example:7001").unwrap(), "node1.example");
        assert!(host_of("node1").is_err());
    }

    fn rustls_pem_der(pem: &str) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }
}
