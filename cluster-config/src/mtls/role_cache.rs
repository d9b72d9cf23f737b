//! The roles of certificates already read. The gRPC services' role gate needs each request's
//! caller role, and parsing the caller's X.509 certificate for it was about 1.4 % of the
//! leader's CPU under W2 (`perf`: every AppendEntries and every `Submit` carries one). A
//! certificate's role depends on its bytes alone, so the role read once is kept for those
//! exact bytes. A cluster has few callers; the oldest entry goes when the cache is full.
//! Refused certificates are not kept: each is read again, as before.

use super::role::Role;
use std::sync::Mutex;

const CAPACITY: usize = 32;

#[derive(Debug, Default)]
pub struct RoleCache {
    seen: Mutex<Vec<(Box<[u8]>, Role)>>,
}

impl RoleCache {
    /// As [`Role::from_cert_der`], for a certificate's DER bytes.
    pub fn role_of(&self, der: &[u8]) -> Result<Role, String> {
        let found = self
            .entries()
            .iter()
            .find(|(bytes, _)| **bytes == *der)
            .map(|(_, role)| role.clone());
        if let Some(role) = found {
            return Ok(role);
        }
        let role = Role::from_cert_der(der)?;
        keep(&mut self.entries(), der, &role);
        Ok(role)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<(Box<[u8]>, Role)>> {
        // Entries are pushed whole, so a holder that panicked left a usable list.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

/// Keeps `der`'s role, unless another request kept the same bytes while this one read them
/// (outside the lock).
fn keep(seen: &mut Vec<(Box<[u8]>, Role)>, der: &[u8], role: &Role) {
    if seen.iter().any(|(bytes, _)| **bytes == *der) {
        return;
    }
    if seen.len() == CAPACITY {
        seen.remove(0);
    }
    seen.push((der.into(), role.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtls::certs::Ca;
    use rustls::pki_types::pem::PemObject;

    fn der_of(ca: &Ca, role: &Role) -> Vec<u8> {
        let issued = ca.issue(role, &["127.0.0.1".into()], 1).unwrap();
        rustls::pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn each_certificate_keeps_its_own_role_and_is_read_once() {
        let ca = Ca::generate(1).unwrap();
        let roles = [Role::Node(3), Role::Gateway, Role::Admin("alice".into())];
        let ders: Vec<Vec<u8>> = roles.iter().map(|role| der_of(&ca, role)).collect();
        let cache = RoleCache::default();
        for _ in 0..2 {
            for (der, role) in ders.iter().zip(&roles) {
                assert_eq!(cache.role_of(der).unwrap(), *role);
            }
        }
        assert_eq!(cache.len(), roles.len());

        assert!(cache.role_of(b"not a certificate").is_err());
        assert_eq!(cache.len(), roles.len());
    }

    #[test]
    fn a_full_cache_drops_its_oldest_and_still_answers_right() {
        let ca = Ca::generate(1).unwrap();
        let cache = RoleCache::default();
        let ders: Vec<Vec<u8>> = (1..=CAPACITY as u64 + 3)
            .map(|id| der_of(&ca, &Role::Node(id)))
            .collect();
        for (der, id) in ders.iter().zip(1u64..) {
            assert_eq!(cache.role_of(der).unwrap(), Role::Node(id));
        }
        assert_eq!(cache.len(), CAPACITY);
        // The first was dropped: read again, it is right and the size holds.
        assert_eq!(cache.role_of(&ders[0]).unwrap(), Role::Node(1));
        assert_eq!(cache.len(), CAPACITY);
    }

    /// Two requests that read the same certificate at once both come to keep it.
    #[test]
    fn bytes_kept_twice_make_one_entry() {
        let mut seen = Vec::new();
        keep(&mut seen, b"same bytes", &Role::Gateway);
        keep(&mut seen, b"same bytes", &Role::Gateway);
        assert_eq!(seen.len(), 1);
    }
}
