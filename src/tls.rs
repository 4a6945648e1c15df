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

// ---- server side -------------------------------------------------------------------

/// Whether the TLS port asks clients for a certificate (ZooKeeper's `ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asks.
    None,
    /// Asks; a client without one is served, one with an untrusted one is refused.
    Want,
    /// Refuses a client without a trusted certificate (ZooKeeper's default).
    Need,
}

impl std::str::FromStr for ClientAuth {
    type Err = Error;

    fn from_str(text: &str) -> Result<ClientAuth> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuth::None),
            "want" => Ok(ClientAuth::Want),
            "need" => Ok(ClientAuth::Need),
            _ => Err(bad(format!(
                "client auth {text:?}: expected none, want or need"
            ))),
        }
    }
}

/// The files of a TLS port: read at start and again on [`ServerTls::reload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM).
    pub cert: std::path::PathBuf,
    /// The server's private key (PEM).
    pub key: std::path::PathBuf,
    /// CA certificates that client certificates must chain to (PEM);
    /// without it no client certificate is asked for.
    pub client_ca: Option<std::path::PathBuf>,
    /// Asking for client certificates; `None` means ZooKeeper's default:
    /// `need` with a client CA, `none` without.
    pub client_auth: Option<ClientAuth>,
}

impl TlsFiles {
    /// The client authentication in force.
    pub fn effective_client_auth(&self) -> ClientAuth {
        match (&self.client_ca, self.client_auth) {
            (None, _) => ClientAuth::None,
            (Some(_), None) => ClientAuth::Need,
            (Some(_), Some(auth)) => auth,
        }
    }

    /// Reads the files and builds the rustls configuration. Fails with
    /// `BadArguments` naming the file at fault (never its contents).
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS: {e}")))?;
        if let (Some(auth @ (ClientAuth::Want | ClientAuth::Need)), None) =
            (self.client_auth, &self.client_ca)
        {
            return Err(bad(format!("client auth {auth:?} needs a client CA file")));
        }
        let auth = self.effective_client_auth();
        let builder = match (&self.client_ca, auth) {
            (Some(ca), ClientAuth::Want | ClientAuth::Need) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(root_store(ca)?),
                    provider(),
                );
                let verifier = if auth == ClientAuth::Want {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| bad(format!("client CA {}: {e}", ca.display())))?,
                )
            }
            _ => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(load_certs(&self.cert)?, load_key(&self.key)?)
            .map_err(|e| {
                bad(format!(
                    "the certificate {} and key {} do not fit: {e}",
                    self.cert.display(),
                    self.key.display()
                ))
            })?;
        Ok(Arc::new(config))
    }
}

/// A TLS port's configuration, re-read from its files on demand (SIGHUP):
/// connections accepted after a reload use the new certificate; open ones
/// keep theirs.
pub struct ServerTls {
    files: TlsFiles,
    current: parking_lot::RwLock<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the files once. Fails with `BadArguments` naming a bad file.
    pub fn new(files: TlsFiles) -> Result<ServerTls> {
        let config = files.server_config()?;
        Ok(ServerTls {
            files,
            current: parking_lot::RwLock::new(config),
        })
    }

    /// Re-reads the files. On failure the previous configuration stays in
    /// force and the error says which file is at fault.
    pub fn reload(&self) -> Result<()> {
        let config = self.files.server_config()?;
        *self.current.write() = config;
        Ok(())
    }

    /// The files this configuration comes from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// A new server-side TLS connection with the configuration in force.
    pub(crate) fn accept(&self) -> Result<TlsServerStream> {
        let config = Arc::clone(&self.current.read());
        let conn = rustls::ServerConnection::new(config)
            .map_err(|e| Error::new(ErrorKind::SystemError).detail(format!("TLS: {e}")))?;
        Ok(TlsServerStream { conn })
    }
}

/// The TLS layer of one server connection over a non-blocking socket: the
/// event loop calls [`TlsServerStream::read`] when the socket is readable
/// and [`TlsServerStream::write`] / [`TlsServerStream::flush`] to send; what
/// the socket did not take waits in the TLS layer for the next flush.
pub(crate) struct TlsServerStream {
    conn: rustls::ServerConnection,
}

impl TlsServerStream {
    /// Plaintext into `buf`, reading and decrypting from `socket` as needed.
    /// `Ok(0)` at the end of the stream; `WouldBlock` when no plaintext is
    /// there yet (a handshake in progress, a partial record). A client that
    /// does not speak TLS, or fails the handshake (an untrusted or expired
    /// certificate), gets an `InvalidData` error after its alert is queued.
    pub(crate) fn read<S: std::io::Read + std::io::Write>(
        &mut self,
        socket: &mut S,
        buf: &mut [u8],
    ) -> std::io::Result<usize> {
        use std::io::{ErrorKind as IoErrorKind, Read as _};
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if !self.conn.wants_read() {
                let _ = self.flush(socket);
                return Err(IoErrorKind::WouldBlock.into());
            }
            match self.conn.read_tls(socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        // Queue the alert for the client, then give up.
                        let _ = self.flush(socket);
                        return Err(std::io::Error::new(IoErrorKind::InvalidData, e));
                    }
                    // Handshake messages go out as soon as they are made.
                    match self.flush(socket) {
                        Ok(()) => {}
                        Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts all of `buf` and sends what the socket takes; the rest
    /// waits in the TLS layer for [`TlsServerStream::flush`].
    pub(crate) fn write<S: std::io::Write>(
        &mut self,
        socket: &mut S,
        buf: &[u8],
    ) -> std::io::Result<usize> {
        use std::io::Write as _;
        let n = self.conn.writer().write(buf)?;
        match self.flush(socket) {
            Ok(()) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(n),
            Err(e) => Err(e),
        }
    }

    /// Sends encrypted bytes until none are left or the socket would block.
    pub(crate) fn flush<S: std::io::Write>(&mut self, socket: &mut S) -> std::io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(socket)?;
        }
        Ok(())
    }

    /// Sends a close_notify (with [`TlsServerStream::flush`]).
    pub(crate) fn close(&mut self) {
        self.conn.send_close_notify();
    }

    /// The client's certificate subject as ZooKeeper's x509 scheme names it,
    /// once the handshake is done and if the client sent one.
    pub(crate) fn peer_subject(&self) -> Option<String> {
        let chain = self.conn.peer_certificates()?;
        x509_subject_name(chain.first()?)
    }
}

// ---- X.509 subject names -----------------------------------------------------------

/// A DER element inside another: tag, contents, and the whole encoding.
type DerChild<'a> = (u8, &'a [u8], &'a [u8]);

/// One DER element: tag and contents (low tag numbers only, as X.509 uses).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n_bytes = usize::from(first & 0x7f);
        if n_bytes == 0 || n_bytes > 4 || rest.len() < n_bytes {
            return None;
        }
        let len = rest[..n_bytes]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n_bytes..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed DER value's contents.
fn der_children(mut contents: &[u8]) -> Option<Vec<DerChild<'_>>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = der_element(contents)?;
        let whole = &contents[..contents.len() - rest.len()];
        out.push((tag, value, whole));
        contents = rest;
    }
    Some(out)
}

fn oid_text(bytes: &[u8]) -> Option<String> {
    let (&first, rest) = bytes.split_first()?;
    let mut arcs = vec![u64::from(first / 40).min(2), 0];
    arcs[1] = u64::from(first) - arcs[0] * 40;
    let mut acc = 0u64;
    for b in rest {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The keywords RFC 2253 (and Java's `X500Principal.RFC2253`) names; other
/// attribute types are written as dotted OIDs.
fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// A string attribute value escaped as RFC 2253 section 2.4 says.
fn rfc2253_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (idx, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (idx == 0 && (c == '#' || c == ' '))
            || (idx == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A certificate's subject as Java's `X500Principal.getName()` (RFC 2253)
/// writes it, which is the id ZooKeeper's `X509AuthenticationProvider` gives
/// the client: the relative names last to first, `CN=client1,OU=test,O=innkeeper`.
/// Attribute types without an RFC 2253 keyword appear as dotted OIDs with
/// the value's DER in hex (`1.2.840.113549.1.9.1=#16…` for an e-mail address).
/// `None` for bytes that are not a certificate.
pub(crate) fn x509_subject_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert, _) = der_element(cert_der)?;
    let (_, tbs, _) = der_element(cert)?;
    let fields = der_children(tbs)?;
    // [0] version is optional: the subject is the 5th field without it, the 6th with it.
    let offset = usize::from(fields.first()?.0 == 0xa0);
    let (subject_tag, subject, _) = *fields.get(4 + offset)?;
    if subject_tag != 0x30 {
        return None;
    }
    let mut rdns = Vec::new();
    for (set_tag, set, _) in der_children(subject)? {
        if set_tag != 0x31 {
            return None;
        }
        let mut avas = Vec::new();
        for (seq_tag, ava, _) in der_children(set)? {
            if seq_tag != 0x30 {
                return None;
            }
            let parts = der_children(ava)?;
            let [(0x06, oid, _), (value_tag, value, value_whole)] = parts.as_slice() else {
                return None;
            };
            let oid = oid_text(oid)?;
            let text = match (rfc2253_keyword(&oid), value_tag) {
                // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1).
                (Some(keyword), 0x0c | 0x13 | 0x16) => {
                    format!(
                        "{keyword}={}",
                        rfc2253_escape(std::str::from_utf8(value).ok()?)
                    )
                }
                (Some(keyword), 0x14) => format!(
                    "{keyword}={}",
                    rfc2253_escape(&value.iter().map(|b| char::from(*b)).collect::<String>())
                ),
                // BMPString: UTF-16 big-endian.
                (Some(keyword), 0x1e) => {
                    let units: Vec<u16> = value
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect();
                    format!(
                        "{keyword}={}",
                        rfc2253_escape(&String::from_utf16(&units).ok()?)
                    )
                }
                (Some(keyword), _) => format!("{keyword}=#{}", hex_lower(value_whole)),
                (None, _) => format!("{oid}=#{}", hex_lower(value_whole)),
            };
            avas.push(text);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests;
