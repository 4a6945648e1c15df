//! Bad input and abuse on a secured `innkeeper serve`, each refused as
//! ZooKeeper 3.8 refuses it, the server serving others afterwards. These
//! run only in-process: they start servers with their own settings and
//! speak raw frames.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use innkeeper::proto::{
    self, decode_connect_response, decode_reply, encode_connect_request, encode_request,
    ConnectRequest, FrameSplitter, Request, Response,
};
use innkeeper::sasl::DigestClient;
use innkeeper::server::{SaslUsers, SecurePort, Server, ServerConfig};
use innkeeper::{Coordinator, ErrorKind, Keeper, KeeperState};

use super::{builder, certs::Material, JAAS};

fn start(material: &Material, adjust: impl FnOnce(&mut ServerConfig)) -> (Keeper, Server) {
    let keeper = Keeper::in_memory().unwrap();
    let mut config = ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        secure: Some(SecurePort {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: Arc::new(innkeeper::ServerTls::new(material.tls_files()).unwrap()),
        }),
        sasl_users: SaslUsers::from_jaas(JAAS).unwrap(),
        ..ServerConfig::default()
    };
    adjust(&mut config);
    let server = Server::start(keeper.clone(), config).unwrap();
    (keeper, server)
}

/// A client speaking raw frames on a plain connection.
struct Raw {
    stream: TcpStream,
    splitter: FrameSplitter,
}

impl Raw {
    fn open(addr: std::net::SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Raw {
            stream,
            splitter: FrameSplitter::new(),
        }
    }

    /// Opens a connection with a new session.
    fn session(addr: std::net::SocketAddr) -> Raw {
        let mut raw = Raw::open(addr);
        raw.stream
            .write_all(&encode_connect_request(&ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 10_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            }))
            .unwrap();
        let body = raw.frame().expect("a ConnectResponse");
        assert!(decode_connect_response(&body).unwrap().timeout_ms > 0);
        raw
    }

    fn send(&mut self, xid: i32, request: &Request) {
        self.stream
            .write_all(&encode_request(xid, request))
            .unwrap();
    }

    /// The next frame, or `None` once the server closed the connection.
    fn frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(frame) = self.splitter.next_frame().unwrap() {
                return Some(frame);
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.splitter.push(&buf[..n]),
            }
        }
    }

    /// The error code and SASL token of the reply to a SASL request.
    fn sasl(&mut self, xid: i32, token: Vec<u8>) -> (i32, Option<Vec<u8>>) {
        self.send(xid, &Request::Sasl { token });
        let body = self.frame().expect("a reply to SASL");
        let (header, response) = decode_reply(proto::opcode::SASL, &body).unwrap();
        assert_eq!((header.xid, header.zxid), (xid, 0));
        let token = match response {
            Some(Response::Sasl { token }) => Some(token),
            _ => None,
        };
        (header.err, token)
    }

    fn closed(&mut self) -> bool {
        self.frame().is_none()
    }
}

/// A server that answers others after the abuse.
fn still_serving(server: &Server) {
    let session = builder(&server.local_addr().to_string()).connect().unwrap();
    session.exists("/").unwrap();
}

#[test]
fn a_replayed_sasl_response_is_refused_and_the_connection_closed() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |_| {});
    let mut first = Raw::session(server.local_addr());
    let (err, challenge) = first.sasl(1, Vec::new());
    assert_eq!(err, 0);
    let mut client = DigestClient::new("bob", "bob-secret");
    let response = client.respond(&challenge.unwrap(), "cnonce").unwrap();
    let (err, rspauth) = first.sasl(2, response.clone());
    assert_eq!(err, 0);
    client.verify(&rspauth.unwrap()).unwrap();
    // The same response again on the same connection: no challenge is open.
    let (err, _) = first.sasl(3, response.clone());
    assert_eq!(err, ErrorKind::AuthFailed.code());
    assert!(first.closed());
    // On another connection the challenge has a new nonce.
    let mut second = Raw::session(server.local_addr());
    let (err, _) = second.sasl(1, Vec::new());
    assert_eq!(err, 0);
    let (err, _) = second.sasl(2, response);
    assert_eq!(err, ErrorKind::AuthFailed.code());
    assert!(second.closed());
    still_serving(&server);
}

#[test]
fn a_wrong_password_is_answered_auth_failed_and_closed() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |_| {});
    let mut raw = Raw::session(server.local_addr());
    let (_, challenge) = raw.sasl(1, Vec::new());
    let response = DigestClient::new("bob", "guess")
        .respond(&challenge.unwrap(), "c")
        .unwrap();
    let (err, _) = raw.sasl(2, response);
    assert_eq!(err, ErrorKind::AuthFailed.code());
    assert!(raw.closed());
    // A client-first token (not DIGEST-MD5's empty one) is refused too.
    let mut raw = Raw::session(server.local_addr());
    let (err, _) = raw.sasl(1, b"username=\"bob\"".to_vec());
    assert_eq!(err, ErrorKind::AuthFailed.code());
    assert!(raw.closed());
    still_serving(&server);
}

#[test]
fn sasl_before_a_session_closes_the_connection() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |_| {});
    // The first frame must be a ConnectRequest (ZooKeeper reads it as one).
    let mut raw = Raw::open(server.local_addr());
    raw.send(1, &Request::Sasl { token: Vec::new() });
    assert!(raw.closed());
    still_serving(&server);
}

#[test]
fn without_sasl_users_the_sasl_request_is_unimplemented() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |c| c.sasl_users = SaslUsers::default());
    let mut raw = Raw::session(server.local_addr());
    let (err, _) = raw.sasl(1, Vec::new());
    assert_eq!(err, ErrorKind::Unimplemented.code());
    // The connection stays.
    raw.send(2, &Request::Sync { path: "/".into() });
    assert!(raw.frame().is_some());
}

#[test]
fn sasl_required_refuses_sessions_that_do_not_log_in() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |c| c.sasl_required = true);
    let mut raw = Raw::session(server.local_addr());
    raw.send(
        1,
        &Request::Exists {
            path: "/".into(),
            watch: false,
        },
    );
    let body = raw.frame().unwrap();
    let header = proto::decode_reply_header(&body).unwrap();
    assert_eq!(header.err, -124, "SessionClosedRequireSaslAuth");
    assert!(raw.closed());
    // RemoteSession sees the same: a request fails and the connection drops.
    let anonymous = builder(&server.local_addr().to_string())
        .request_timeout(Duration::from_secs(3))
        .connect()
        .unwrap();
    assert!(anonymous.exists("/").is_err());
    // A session that logs in is served.
    let bob = builder(&server.local_addr().to_string())
        .sasl_digest("bob", "bob-secret")
        .connect()
        .unwrap();
    bob.exists("/").unwrap();
    assert_eq!(bob.state(), KeeperState::SyncConnected);
}

#[test]
fn plaintext_to_the_tls_port_and_tls_to_the_plain_port_are_refused() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |_| {});
    let secure = server.secure_addr().unwrap();
    let mut raw = Raw::open(secure);
    raw.stream
        .write_all(&encode_connect_request(&ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        }))
        .unwrap();
    // No ConnectResponse: at most a TLS alert, then the close.
    let mut got = Vec::new();
    let _ = raw.stream.read_to_end(&mut got);
    assert!(decode_connect_response(&got).is_err() || got.is_empty());
    let err = builder(&server.local_addr().to_string())
        .connect_timeout(Duration::from_secs(2))
        .tls(material.dir().join("ca.pem"))
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLoss);
    still_serving(&server);
    let tls = builder(&secure.to_string())
        .tls(material.dir().join("ca.pem"))
        .connect()
        .unwrap();
    tls.exists("/").unwrap();
}

#[test]
fn secure_only_opens_no_plain_port() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |c| c.secure_only = true);
    assert_eq!(server.secure_addr(), Some(server.local_addr()));
    let session = builder(&server.local_addr().to_string())
        .tls(material.dir().join("ca.pem"))
        .connect()
        .unwrap();
    session.exists("/").unwrap();
    let err = builder(&server.local_addr().to_string())
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLoss);
}

#[test]
fn need_refuses_a_client_without_a_certificate() {
    let material = Material::new();
    let (_keeper, server) = start(&material, |c| {
        let mut files = material.tls_files();
        files.client_auth = None; // ZooKeeper's default with a CA: need.
        c.secure = Some(SecurePort {
            bind: "127.0.0.1:0".parse().unwrap(),
            tls: Arc::new(innkeeper::ServerTls::new(files).unwrap()),
        });
    });
    let secure = server.secure_addr().unwrap().to_string();
    let err = builder(&secure)
        .connect_timeout(Duration::from_secs(2))
        .tls(material.dir().join("ca.pem"))
        .connect()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionLoss);
    let session = builder(&secure)
        .tls(material.dir().join("ca.pem"))
        .tls_client_cert(
            material.dir().join("client.pem"),
            material.dir().join("client.key"),
        )
        .connect()
        .unwrap();
    let who: Vec<(String, String)> = session
        .who_am_i()
        .unwrap()
        .into_iter()
        .map(|c| (c.auth_scheme, c.user))
        .collect();
    assert!(who.contains(&(
        "x509".to_string(),
        "CN=client1,OU=test,O=innkeeper".to_string()
    )));
}
