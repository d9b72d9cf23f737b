//! tonic turns on rustls' TLS 1.2 and offers no setting for the protocol version; a provider
//! with only TLS 1.3 cipher suites, installed before any TLS config is built, leaves no 1.2
//! handshake possible for either side.

use rustls::crypto::ring;
use rustls::SupportedCipherSuite;

/// Installs the ring provider with TLS 1.3 suites only as the process default. Call it first
/// thing in `main`; a second call (tests start several servers) changes nothing.
pub fn install_tls13_only() {
    let mut provider = ring::default_provider();
    provider
        .cipher_suites
        .retain(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
    // Err means a provider is installed already: ours, from an earlier call.
    let _ = provider.install_default();
}
