//! SASL as ZooKeeper 3.8 speaks it: the DIGEST-MD5 mechanism (RFC 2831)
//! on both sides, and the JAAS configuration file that names its users.
//!
//! ZooKeeper carries SASL tokens in the `sasl` request (op 102) after the
//! session handshake. A DIGEST-MD5 exchange there has three tokens:
//!
//! 1. the client sends an empty token (the mechanism has no initial response);
//! 2. the server answers with a challenge (realm `zk-sasl-md5`, a fresh nonce,
//!    `qop="auth"`, `algorithm=md5-sess`), and the client sends its digest
//!    response over the user name and password, with `digest-uri` `zookeeper/zk-sasl-md5`;
//! 3. the server checks the digest, answers `rspauth=…` proving that it
//!    knows the password too, and the session gains the identity `sasl:USER`.
//!
//! Only the `auth` quality of protection is offered, as ZooKeeper's server
//! does: no integrity or confidentiality layer (use TLS for that).
//! Kerberos (GSSAPI) is not supported.
//!
//! Everything here is pure: no I/O, no clock. Nonces are drawn by the caller
//! ([`DigestServer::new`], [`DigestClient::respond`]) or from the OS random
//! source by the `*_random` helpers.

mod digest;
mod jaas;

pub use digest::{DigestClient, DigestServer, SASL_PROTOCOL, SASL_SERVER_NAME};
pub use jaas::{JaasEntry, JaasFile, JaasSection};

/// A fresh random nonce: 24 bytes from the OS, base64 (no padding).
pub fn random_nonce() -> crate::Result<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 24];
    crate::random::try_fill(&mut bytes).map_err(|e| {
        crate::Error::new(crate::ErrorKind::SystemError)
            .detail(format!("no random bytes from the OS: {e}"))
    })?;
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
}
