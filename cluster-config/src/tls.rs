//! The `[tls]` section of node and gateway configs: the cluster CA, this process's
//! certificate and key, or `insecure = true` for plaintext (tests, throwaway clusters).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// Plaintext gRPC: no certificates, no roles. Logged as a warning at every start.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The cluster CA's certificate (PEM): peers must present a certificate it signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// This process's certificate (PEM), signed by `ca`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// The three files of a TLS identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsSettings {
    pub fn insecure() -> Self {
        TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        }
    }

    pub fn files(files: TlsFiles) -> Self {
        TlsSettings {
            insecure: false,
            ca: Some(files.ca),
            cert: Some(files.cert),
            key: Some(files.key),
        }
    }

    /// The files to use, or `None` for plaintext. Valid settings only.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) if !self.insecure => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let given = [
            ("tls.ca", &self.ca),
            ("tls.cert", &self.cert),
            ("tls.key", &self.key),
        ];
        if self.insecure {
            if let Some((field, _)) = given.iter().find(|(_, p)| p.is_some()) {
                return Err(ConfigError::invalid(
                    *field,
                    "is set together with tls.insecure = true; remove one of them",
                ));
            }
            return Ok(());
        }
        if given.iter().all(|(_, p)| p.is_none()) {
            return Err(ConfigError::invalid(
                "tls",
                "is missing; give [tls] ca, cert and key (make them with `invctl certs`), \
                 or insecure = true for plaintext",
            ));
        }
        for (field, path) in given {
            match path {
                None => {
                    return Err(ConfigError::invalid(
                        field,
                        "is missing; [tls] needs ca, cert and key together",
                    ))
                }
                Some(p) if p.as_os_str().is_empty() || p.to_str().is_none() => {
                    return Err(ConfigError::invalid(
                        field,
                        "must be a non-empty UTF-8 path",
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> TlsSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn tls_needs_all_three_files_or_insecure_alone() {
        assert_eq!(parse("").validate().unwrap_err().field(), Some("tls"));
        assert!(parse("insecure = true").validate().is_ok());
        assert_eq!(
            parse("insecure = true\nca = \"ca.pem\"")
                .validate()
                .unwrap_err()
                .field(),
            Some("tls.ca")
        );
        assert_eq!(
            parse("ca = \"ca.pem\"\ncert = \"n.pem\"")
                .validate()
                .unwrap_err()
                .field(),
            Some("tls.key")
        );
        let full = parse("ca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n.key\"");
        assert!(full.validate().is_ok());
        assert_eq!(full.tls_files().unwrap().key, PathBuf::from("n.key"));
        assert_eq!(TlsSettings::insecure().tls_files(), None);
    }
}
