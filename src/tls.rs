//! TLS configuration as ZooKeeper's `secureClientPort` and its Java client
//! use it, on rustls (TLS 1.2 and 1.3, the ring provider):
//!
//! * certificates and keys from PEM files (ZooKeeper reads keystores; a
//!   PKCS#12 or JKS keystore converts with `openssl pkcs12` / `keytool`);
//! * client authentication `none`, `want` or `need` (ZooKeeper's
//!   `ssl.clientAuth`, whose default is `need`);
//! * the client's certificate subject as ZooKeeper's `X509AuthenticationProvider`
//!   names it (Java's `X500Principal.getName()`, RFC 2253), for the `x509` scheme.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, ErrorKind, Result};

fn bad(why: String) -> Error {
    Error::new(ErrorKind::BadArguments).detail(why)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file, in order. Fails with `BadArguments`
/// naming the file when it cannot be read or holds no certificate.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(bad(format!("{} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1). The error
/// names the file, never its contents.
pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        bad(format!(
            "no usable PEM private key in {}: {e}",
            path.display()
        ))
    })
}

fn root_store(ca_path: &Path) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca_path)? {
        roots.add(cert).map_err(|e| {
            bad(format!(
                "a CA certificate in {} is not usable: {e}",
                ca_path.display()
            ))
        })?;
    }
    Ok(roots)
}

/// The rustls configuration of a client that trusts the CAs of `ca_path`
/// and, with `identity` = (certificate chain, key), presents a certificate.
pub(crate) fn client_config(
    ca_path: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS: {e}")))?
        .with_root_certificates(root_store(ca_path)?);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert_path, key_path)) => builder
            .with_client_auth_cert(load_certs(cert_path)?, load_key(key_path)?)
            .map_err(|e| {
                bad(format!(
                    "the certificate {} and key {} do not fit: {e}",
                    cert_path.display(),
                    key_path.display()
                ))
            })?,
    };
    Ok(Arc::new(config))
}
