//! The TLS crypto provider every rustls client of the process uses (Twilio's
//! API, `simulate`'s HTTP client, and Redis over `rediss://`): *ring*. It
//! builds from a few C and assembly files in seconds, where aws-lc-rs
//! (rustls' default) took 52 s of a 2-core cold build and about 2 MB of the
//! binary. What it lacks is the post-quantum hybrid key exchange
//! (X25519MLKEM768); classical X25519 is used instead.

use std::sync::Once;

/// A builder of HTTP clients, after the provider is installed: reqwest, built
/// without a provider of its own, panics on a client built before that.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Installs *ring* as the process-wide rustls provider, once. Redis' client
/// would find the same provider from rustls' features by itself.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // An error means another provider was installed first (by a program
        // embedding this library); that one is then used, as rustls intends.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_is_installed_and_a_second_call_is_harmless() {
        install_crypto_provider();
        assert!(http_client_builder().build().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
