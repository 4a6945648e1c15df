//! TLS and SASL through [`RemoteSession`], against a secured server.
//!
//! By default the server is `innkeeper serve` started in this process with
//! a TLS port (client auth want) and SASL users from a JAAS `Server`
//! section, its certificates made here with rcgen. `.ci/security.sh` runs
//! the same checks against Apache ZooKeeper 3.8 configured the same way,
//! naming it with:
//!
//! * `INNKEEPER_SECURE_PLAIN`: `host:port` of the plain port (SASL users
//!   `bob`/`bob-secret` and `super` from a JAAS `Server` section);
//! * `INNKEEPER_SECURE_TLS`: `host:port` of the TLS port (`ssl.clientAuth`
//!   want), its certificate for 127.0.0.1 signed by `ca.pem`;
//! * `INNKEEPER_SECURE_CERTS`: the directory of `ca.pem`, `client.pem`/`client.key`
//!   (subject `CN=client1,OU=test,O=innkeeper`), `rogue-ca.pem` and `rogue.pem`/`rogue.key`.

mod abuse;
mod certs;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use innkeeper::{Acl, Coordinator, CreateMode, ErrorKind, Id, Perms, RemoteBuilder};

pub struct Target {
    pub plain: String,
    pub tls: String,
    pub certs: PathBuf,
}

/// The JAAS file both servers read.
pub const JAAS: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super-secret"
    user_bob="bob-secret";
};
"#;

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Target> = OnceLock::new();
    Some(TARGET.get_or_init(|| {
        match (
            std::env::var("INNKEEPER_SECURE_PLAIN"),
            std::env::var("INNKEEPER_SECURE_TLS"),
            std::env::var("INNKEEPER_SECURE_CERTS"),
        ) {
            (Ok(plain), Ok(tls), Ok(certs)) => Target {
                plain,
                tls,
                certs: certs.into(),
            },
            _ => served(),
        }
    }))
}

/// `innkeeper serve` in this process, secured like the ZooKeeper of `.ci/security.sh`.
fn served() -> Target {
    use innkeeper::server::{SaslUsers, SecurePort, Server, ServerConfig};
    static SERVER: OnceLock<(innkeeper::Keeper, Server, certs::Material)> = OnceLock::new();
    let (_, server, material) = SERVER.get_or_init(|| {
        let material = certs::Material::new();
        let keeper = innkeeper::Keeper::in_memory().unwrap();
        let config = ServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            secure: Some(SecurePort {
                bind: "127.0.0.1:0".parse().unwrap(),
                tls: std::sync::Arc::new(innkeeper::ServerTls::new(material.tls_files()).unwrap()),
            }),
            sasl_users: SaslUsers::from_jaas(JAAS).unwrap(),
            ..ServerConfig::default()
        };
        let server = Server::start(keeper.clone(), config).unwrap();
        (keeper, server, material)
    });
    Target {
        plain: server.local_addr().to_string(),
        tls: server.secure_addr().unwrap().to_string(),
        certs: material.dir().to_path_buf(),
    }
}

pub fn builder(connect_string: &str) -> RemoteBuilder {
    innkeeper::RemoteSession::builder(connect_string)
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("/security-{name}-{}-{nanos}", std::process::id())
}

fn identities(session: &dyn Coordinator) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = session
        .who_am_i()
        .unwrap()
        .into_iter()
        .map(|c| (c.auth_scheme, c.user))
        .collect();
    ids.sort();
    ids
}

#[test]
fn sasl_digest_login_gives_a_sasl_identity_and_its_acl_is_enforced() {
    let t = target().unwrap();
    let bob = builder(&t.plain)
        .sasl_digest("bob", "bob-secret")
        .connect()
        .unwrap();
    assert!(
        identities(&bob).contains(&("sasl".to_string(), "bob".to_string())),
        "{:?}",
        identities(&bob)
    );
    let path = unique("sasl-acl");
    let acl = vec![Acl::new(Perms::ALL, Id::new("sasl", "bob"))];
    bob.create_with(
        &path,
        Some(b"for bob"),
        &innkeeper::CreateOptions::new(CreateMode::Persistent).acl(acl),
    )
    .unwrap();
    assert_eq!(bob.get_data(&path).unwrap().0, b"for bob");
    let anonymous = builder(&t.plain).connect().unwrap();
    assert!(!identities(&anonymous).iter().any(|(s, _)| s == "sasl"));
    assert_eq!(
        anonymous.get_data(&path).unwrap_err().kind(),
        ErrorKind::NoAuth
    );
    assert_eq!(
        anonymous.set_data(&path, b"x", -1).unwrap_err().kind(),
        ErrorKind::NoAuth
    );
    bob.delete(&path, -1).unwrap();
}

#[test]
fn a_wrong_sasl_password_is_refused() {
    let t = target().unwrap();
    // An unknown user with a guessed password. (Not an unknown user with a
    // known user's password: ZooKeeper 3.8's shared callback handler keeps
    // the last known user's name, so it accepts that; innkeeper does not.)
    for (user, password) in [("bob", "not-bobs"), ("mallory", "mallory-guess")] {
        let err = builder(&t.plain)
            .sasl_digest(user, password)
            .connect()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AuthFailed, "{user}: {err}");
        assert!(!format!("{err}").contains(password), "{err}");
    }
}

#[test]
fn tls_without_a_client_certificate() {
    let t = target().unwrap();
    let session = builder(&t.tls)
        .tls(t.certs.join("ca.pem"))
        .connect()
        .unwrap();
    let path = unique("tls");
    session
        .create(&path, b"over tls", CreateMode::Persistent)
        .unwrap();
    assert_eq!(session.get_data(&path).unwrap().0, b"over tls");
    assert!(!identities(&session).iter().any(|(s, _)| s == "x509"));
    session.delete(&path, -1).unwrap();
}

#[test]
fn tls_with_a_client_certificate_gives_an_x509_identity() {
    let t = target().unwrap();
    let session = builder(&t.tls)
        .tls(t.certs.join("ca.pem"))
        .tls_client_cert(t.certs.join("client.pem"), t.certs.join("client.key"))
        .connect()
        .unwrap();
    let subject = "CN=client1,OU=test,O=innkeeper";
    assert!(
        identities(&session).contains(&("x509".to_string(), subject.to_string())),
        "{:?}",
        identities(&session)
    );
    let path = unique("x509-acl");
    let acl = vec![Acl::new(Perms::ALL, Id::new("x509", subject))];
    session
        .create_with(
            &path,
            Some(b""),
            &innkeeper::CreateOptions::new(CreateMode::Persistent).acl(acl),
        )
        .unwrap();
    session.get_data(&path).unwrap();
    let other = builder(&t.plain).connect().unwrap();
    assert_eq!(other.get_data(&path).unwrap_err().kind(), ErrorKind::NoAuth);
    session.delete(&path, -1).unwrap();
}

#[test]
fn tls_and_sasl_together() {
    let t = target().unwrap();
    let session = builder(&t.tls)
        .tls(t.certs.join("ca.pem"))
        .sasl_digest("bob", "bob-secret")
        .connect()
        .unwrap();
    assert!(identities(&session).contains(&("sasl".to_string(), "bob".to_string())));
}

#[test]
fn an_untrusted_server_or_client_certificate_is_refused() {
    let t = target().unwrap();
    // The client trusts another CA: the server's certificate fails.
    let err = builder(&t.tls)
        .connect_timeout(Duration::from_secs(3))
        .tls(t.certs.join("rogue-ca.pem"))
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLoss);
    let detail = err.detail_message().unwrap_or("");
    assert!(detail.contains("TLS handshake"), "{detail}");
    // The client's certificate is signed by a CA the server does not trust.
    let err = builder(&t.tls)
        .connect_timeout(Duration::from_secs(3))
        .tls(t.certs.join("ca.pem"))
        .tls_client_cert(t.certs.join("rogue.pem"), t.certs.join("rogue.key"))
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLoss, "{err}");
    // TLS spoken to the plain port.
    let err = builder(&t.plain)
        .connect_timeout(Duration::from_secs(3))
        .tls(t.certs.join("ca.pem"))
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLoss, "{err}");
    // A missing CA file is a bad argument, found before connecting.
    let err = builder(&t.tls)
        .tls(t.certs.join("no-such.pem"))
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadArguments);
}
