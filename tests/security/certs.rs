//! The certificates `.ci/security.sh` makes with openssl, made with rcgen:
//! a CA, a server certificate for 127.0.0.1 and localhost, a client
//! certificate `CN=client1,OU=test,O=innkeeper`, and a rogue CA with a
//! client certificate of its own.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

pub struct Material {
    dir: tempfile::TempDir,
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> (Ca, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        (Ca { params, key }, pem)
    }

    fn issue(&self, server: bool, dn: &[(DnType, &str)]) -> (String, String) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        if server {
            params.subject_alt_names = vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
            ];
        }
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in dn {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

impl Material {
    pub fn new() -> Material {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let (ca, ca_pem) = Ca::new("innkeeper test CA");
        let (rogue, rogue_pem) = Ca::new("rogue CA");
        write("ca.pem", &ca_pem);
        write("rogue-ca.pem", &rogue_pem);
        let (cert, key) = ca.issue(true, &[(DnType::CommonName, "localhost")]);
        write("server.pem", &cert);
        write("server.key", &key);
        let (cert, key) = ca.issue(
            false,
            &[
                (DnType::OrganizationName, "innkeeper"),
                (DnType::OrganizationalUnitName, "test"),
                (DnType::CommonName, "client1"),
            ],
        );
        write("client.pem", &cert);
        write("client.key", &key);
        let (cert, key) = rogue.issue(false, &[(DnType::CommonName, "intruder")]);
        write("rogue.pem", &cert);
        write("rogue.key", &key);
        Material { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's files, client auth want (as `.ci/security.sh` sets ZooKeeper's).
    pub fn tls_files(&self) -> innkeeper::TlsFiles {
        innkeeper::TlsFiles {
            cert: self.dir().join("server.pem"),
            key: self.dir().join("server.key"),
            client_ca: Some(self.dir().join("ca.pem")),
            client_auth: Some(innkeeper::ClientAuth::Want),
        }
    }
}
