//! TLS configuration and the server-side stream, with certificates made by
//! rcgen and the two ends joined by in-memory pipes (no sockets).

use std::collections::VecDeque;
use std::io::{ErrorKind as IoErrorKind, Read, Write};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use super::*;

/// A CA that signs server and client certificates.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A leaf certificate and key (PEM) for `names` with subject `dn`.
    fn issue(&self, names: &[&str], dn: &[(DnType, &str)], expired: bool) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in dn {
            params.distinguished_name.push(kind.clone(), *value);
        }
        if expired {
            params.not_before = rcgen::date_time_ymd(2001, 1, 1);
            params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Files for one test: a CA, a server certificate for localhost, client certificates.
struct Material {
    dir: tempfile::TempDir,
}

impl Material {
    fn new(ca: &Ca) -> Material {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        let (cert, key) = ca.issue(&["localhost"], &[(DnType::CommonName, "localhost")], false);
        std::fs::write(dir.path().join("server.pem"), cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        Material { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn files(&self, client_auth: Option<ClientAuth>, with_client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: with_client_ca.then(|| self.path("ca.pem")),
            client_auth,
        }
    }

    fn client_identity(&self, name: &str, cert_and_key: (String, String)) -> (PathBuf, PathBuf) {
        let cert = self.path(&format!("{name}.pem"));
        let key = self.path(&format!("{name}.key"));
        std::fs::write(&cert, cert_and_key.0).unwrap();
        std::fs::write(&key, cert_and_key.1).unwrap();
        (cert, key)
    }
}

use std::path::PathBuf;

/// One direction of an in-memory socket.
#[derive(Default)]
struct Pipe(VecDeque<u8>);

/// The server's end: reads what the client wrote, writes for the client.
struct End<'a> {
    inbound: &'a mut Pipe,
    outbound: &'a mut Pipe,
}

impl Read for End<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inbound.0.is_empty() {
            return Err(IoErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.inbound.0.len());
        for (slot, byte) in buf.iter_mut().zip(self.inbound.0.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for End<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.outbound.0.extend(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs a handshake between a rustls client and the server stream, then
/// sends `hello` each way. Returns the server's view of the client subject,
/// or the first error either side saw.
fn exchange(
    server: &ServerTls,
    client_config: Arc<rustls::ClientConfig>,
) -> std::result::Result<Option<String>, String> {
    let mut client = rustls::ClientConnection::new(
        client_config,
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut stream = server.accept().unwrap();
    let (mut to_server, mut to_client) = (Pipe::default(), Pipe::default());
    client.writer().write_all(b"hello server").unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        while client.wants_write() {
            let mut out = Vec::new();
            client.write_tls(&mut out).unwrap();
            to_server.0.extend(out);
        }
        let mut end = End {
            inbound: &mut to_server,
            outbound: &mut to_client,
        };
        let mut buf = [0u8; 64];
        match stream.read(&mut end, &mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("server: {e}")),
        }
        if got == b"hello server" {
            stream.write(&mut end, b"hello client").unwrap();
            stream.flush(&mut end).unwrap();
            let subject = stream.peer_subject();
            let bytes: Vec<u8> = to_client.0.drain(..).collect();
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client
                .process_new_packets()
                .map_err(|e| format!("client: {e}"))?;
            let mut reply = Vec::new();
            let _ = client.reader().read_to_end(&mut reply);
            assert_eq!(reply, b"hello client");
            return Ok(subject);
        }
        let bytes: Vec<u8> = to_client.0.drain(..).collect();
        if !bytes.is_empty() {
            client.read_tls(&mut bytes.as_slice()).unwrap();
            if let Err(e) = client.process_new_packets() {
                return Err(format!("client: {e}"));
            }
        }
    }
    Err("no progress".to_string())
}

#[test]
fn client_certificate_subject_is_named_as_java_names_it() {
    let ca = Ca::new("test CA");
    let material = Material::new(&ca);
    let server = ServerTls::new(material.files(Some(ClientAuth::Want), true)).unwrap();
    let dn = [
        (DnType::OrganizationName, "innkeeper"),
        (DnType::OrganizationalUnitName, "test"),
        (DnType::CommonName, "client1"),
    ];
    let (cert, key) = material.client_identity("client", ca.issue(&[], &dn, false));
    let config = client_config(&material.path("ca.pem"), Some((&cert, &key))).unwrap();
    assert_eq!(
        exchange(&server, config).unwrap().as_deref(),
        Some("CN=client1,OU=test,O=innkeeper")
    );
    // Special characters are escaped; types without a keyword become OIDs.
    let dn = [
        (DnType::CountryName, "NL"),
        (DnType::CommonName, "a,b+c \"d\""),
        (
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            "x@example.org",
        ),
    ];
    let (cert, key) = material.client_identity("odd", ca.issue(&[], &dn, false));
    let config = client_config(&material.path("ca.pem"), Some((&cert, &key))).unwrap();
    let name = exchange(&server, config).unwrap().unwrap();
    assert!(name.starts_with("1.2.840.113549.1.9.1=#"), "{name}");
    assert!(name.ends_with(",CN=a\\,b\\+c \\\"d\\\",C=NL"), "{name}");
}

#[test]
fn client_auth_none_want_need() {
    let ca = Ca::new("test CA");
    let material = Material::new(&ca);
    let dn = [(DnType::CommonName, "client1")];
    let (cert, key) = material.client_identity("client", ca.issue(&[], &dn, false));
    let anonymous = client_config(&material.path("ca.pem"), None).unwrap();
    let with_cert = client_config(&material.path("ca.pem"), Some((&cert, &key))).unwrap();

    // ZooKeeper's default with a client CA is need.
    let files = material.files(None, true);
    assert_eq!(files.effective_client_auth(), ClientAuth::Need);
    let need = ServerTls::new(files).unwrap();
    assert!(exchange(&need, Arc::clone(&anonymous)).is_err());
    assert_eq!(
        exchange(&need, Arc::clone(&with_cert)).unwrap().as_deref(),
        Some("CN=client1")
    );

    let want = ServerTls::new(material.files(Some(ClientAuth::Want), true)).unwrap();
    assert_eq!(exchange(&want, Arc::clone(&anonymous)).unwrap(), None);
    assert!(exchange(&want, Arc::clone(&with_cert)).unwrap().is_some());

    let none = ServerTls::new(material.files(None, false)).unwrap();
    assert_eq!(none.files().effective_client_auth(), ClientAuth::None);
    assert_eq!(exchange(&none, Arc::clone(&anonymous)).unwrap(), None);
    // Not asked, the client sends no certificate.
    assert_eq!(exchange(&none, with_cert).unwrap(), None);

    // Want or need without a CA is a configuration error.
    let err = ServerTls::new(material.files(Some(ClientAuth::Want), false)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
}

#[test]
fn untrusted_or_expired_client_certificates_are_refused() {
    let ca = Ca::new("test CA");
    let rogue = Ca::new("rogue CA");
    let material = Material::new(&ca);
    let server = ServerTls::new(material.files(Some(ClientAuth::Want), true)).unwrap();
    let dn = [(DnType::CommonName, "intruder")];
    let (cert, key) = material.client_identity("rogue", rogue.issue(&[], &dn, false));
    let config = client_config(&material.path("ca.pem"), Some((&cert, &key))).unwrap();
    let err = exchange(&server, config).unwrap_err();
    assert!(err.starts_with("server:"), "{err}");
    let (cert, key) = material.client_identity("old", ca.issue(&[], &dn, true));
    let config = client_config(&material.path("ca.pem"), Some((&cert, &key))).unwrap();
    let err = exchange(&server, config).unwrap_err();
    assert!(err.contains("xpired"), "{err}");
    // The client refuses a server its CA file does not vouch for.
    let other = Material::new(&rogue);
    let config = client_config(&other.path("ca.pem"), None).unwrap();
    let err = exchange(&server, config).unwrap_err();
    assert!(err.starts_with("client:"), "{err}");
}

#[test]
fn plaintext_to_the_tls_port_is_refused() {
    let ca = Ca::new("test CA");
    let material = Material::new(&ca);
    let server = ServerTls::new(material.files(None, false)).unwrap();
    let mut stream = server.accept().unwrap();
    // A ZooKeeper ConnectRequest frame, as a plaintext client sends it.
    let hello = crate::proto::encode_connect_request(&crate::proto::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    });
    let (mut inbound, mut outbound) = (Pipe(hello.into()), Pipe::default());
    let mut end = End {
        inbound: &mut inbound,
        outbound: &mut outbound,
    };
    let err = stream.read(&mut end, &mut [0u8; 64]).unwrap_err();
    assert_eq!(err.kind(), IoErrorKind::InvalidData);
}

#[test]
fn reload_reads_new_files_and_keeps_the_old_config_on_a_bad_one() {
    let ca = Ca::new("test CA");
    let material = Material::new(&ca);
    let server = ServerTls::new(material.files(None, false)).unwrap();
    let anonymous = client_config(&material.path("ca.pem"), None).unwrap();
    assert!(exchange(&server, Arc::clone(&anonymous)).is_ok());
    // A certificate from another CA replaces the old one: clients trusting the old CA refuse it.
    let other = Ca::new("next CA");
    let (cert, key) = other.issue(&["localhost"], &[(DnType::CommonName, "localhost")], false);
    std::fs::write(material.path("server.pem"), cert).unwrap();
    std::fs::write(material.path("server.key"), key).unwrap();
    server.reload().unwrap();
    assert!(exchange(&server, Arc::clone(&anonymous)).is_err());
    // A broken file: the reload fails, naming it, and the last good config stays.
    std::fs::write(material.path("server.key"), "not a key").unwrap();
    let err = server.reload().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
    assert!(err.to_string().contains("server.key"), "{err}");
    std::fs::write(material.path("next-ca.pem"), &other.pem).unwrap();
    let next = client_config(&material.path("next-ca.pem"), None).unwrap();
    assert!(exchange(&server, next).is_ok());
}

#[test]
fn subject_names_of_junk_are_none() {
    assert_eq!(x509_subject_name(b""), None);
    assert_eq!(x509_subject_name(&[0x30, 0x03, 0x30, 0x01]), None);
    assert_eq!(
        x509_subject_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
        None
    );
}

#[test]
fn client_auth_parses() {
    assert_eq!("need".parse::<ClientAuth>().unwrap(), ClientAuth::Need);
    assert_eq!("WANT".parse::<ClientAuth>().unwrap(), ClientAuth::Want);
    assert_eq!("none".parse::<ClientAuth>().unwrap(), ClientAuth::None);
    assert!("sometimes".parse::<ClientAuth>().is_err());
}
