//! HTTPS for the web server: its rustls configuration, read once at start from a PEM certificate chain and private
//! key (see [`crate::LiveCheckBuilder::web_tls`]); each connection's handshake is then done in `connection.rs`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    },
    TlsAcceptor,
};

use crate::{Error, Result};

/// The environment variable the tutorial's `orders livecheck` reads the certificate's path from (`--web-tls-cert`).
pub const WEB_TLS_CERT_ENV: &str = "LIVECHECK_WEB_TLS_CERT";
/// The environment variable the tutorial's `orders livecheck` reads the private key's path from (`--web-tls-key`).
pub const WEB_TLS_KEY_ENV: &str = "LIVECHECK_WEB_TLS_KEY";

/// Where the certificate chain and its private key are (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// The server's certificate first, then the intermediates, if any.
    pub(crate) cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub(crate) key: PathBuf,
}

impl TlsFiles {
    /// The server's TLS configuration (TLS 1.2 and 1.3, HTTP/1.1 by ALPN); [`Error::Setup`] naming the file and
    /// what is wrong with it when a file cannot be read, holds no certificate or key, or the key is not the
    /// certificate's.
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor> {
        let cert_pem = read(&self.cert, "certificate")?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<Vec<_>, _>>().map_err(|source| {
            setup(format!("its TLS certificate `{}` is not valid PEM", self.cert.display()), source)
        })?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "LiveCheck web server: its TLS certificate `{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                self.cert.display()
            )));
        }
        let key_pem = read(&self.key, "private key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| {
            setup(
                format!(
                    "its TLS private key `{}` holds no PEM private key (PKCS#8, RSA or EC) that can be read",
                    self.key.display()
                ),
                source,
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| setup("its TLS protocol versions".to_owned(), source))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|source| {
                setup(
                    format!(
                        "its TLS certificate `{}` and private key `{}` do not make a usable pair",
                        self.cert.display(),
                        self.key.display()
                    ),
                    source,
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| setup(format!("its TLS {what} `{}` cannot be read", path.display()), source))
}

fn setup(context: String, source: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Setup { context: format!("LiveCheck web server: {context}"), source: Box::new(source) }
}
