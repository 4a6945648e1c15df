//! A minimal raw-frame client and the test server setup.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use innkeeper::proto::{
    decode_connect_response, decode_notification, decode_reply, decode_reply_header,
    encode_connect_request, encode_request, xid, ConnectRequest, ConnectResponse, FrameSplitter,
    ReplyHeader, Request, Response, WatcherEvent,
};
use innkeeper::server::{FourLetterWords, Server, ServerConfig};
use innkeeper::Keeper;

/// How long any single wait in these tests may take before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A keeper with short ticks (expiry tests finish fast) and a server on an
/// ephemeral loopback port.
pub fn server_with(config: ServerConfig) -> (Keeper, Server) {
    server_on(keeper_builder().build().unwrap(), config)
}

/// The keeper settings every test server uses.
pub fn keeper_builder() -> innkeeper::KeeperBuilder {
    Keeper::builder()
        .tick(Duration::from_millis(50))
        .session_timeout_range(Duration::from_millis(200), Duration::from_secs(30))
        .extended_types(false)
}

pub fn server_on(keeper: Keeper, config: ServerConfig) -> (Keeper, Server) {
    let config = ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    };
    let server = Server::start(keeper.clone(), config).unwrap();
    (keeper, server)
}

pub fn server() -> (Keeper, Server) {
    server_with(ServerConfig {
        four_letter_words: FourLetterWords::All,
        ..ServerConfig::default()
    })
}

/// One connection, speaking frames.
pub struct Client {
    pub stream: TcpStream,
    splitter: FrameSplitter,
    next_xid: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout_ms: i32,
    /// Notifications read while waiting for a reply, in arrival order.
    pub events: Vec<WatcherEvent>,
}

impl Client {
    pub fn raw(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            splitter: FrameSplitter::with_max_len(64 << 20),
            next_xid: 1,
            session_id: 0,
            passwd: vec![0; 16],
            timeout_ms: 0,
            events: Vec::new(),
        }
    }

    /// A new session with a 10 s timeout.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::connect_with(addr, 10_000)
    }

    pub fn connect_with(addr: SocketAddr, timeout_ms: i32) -> Client {
        let mut c = Client::raw(addr);
        let resp = c
            .handshake(&ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            })
            .expect("a connect response");
        assert!(resp.timeout_ms > 0 && resp.session_id != 0, "{resp:?}");
        c.session_id = resp.session_id;
        c.passwd = resp.passwd;
        c.timeout_ms = resp.timeout_ms;
        c
    }

    /// Resumes `other`'s session on a new connection.
    pub fn resume(addr: SocketAddr, session_id: i64, passwd: &[u8]) -> (Client, ConnectResponse) {
        let mut c = Client::raw(addr);
        let resp = c
            .handshake(&ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms: 10_000,
                session_id,
                passwd: passwd.to_vec(),
                read_only: Some(false),
            })
            .expect("a connect response");
        c.session_id = resp.session_id;
        c.passwd = resp.passwd.clone();
        (c, resp)
    }

    /// Sends a ConnectRequest and reads the response; `None` if the server
    /// closed the connection instead.
    pub fn handshake(&mut self, request: &ConnectRequest) -> Option<ConnectResponse> {
        self.send_bytes(&encode_connect_request(request));
        let body = self.read_frame(WAIT)?;
        Some(decode_connect_response(&body).unwrap())
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        // The server may already have closed; a failed write shows up as EOF.
        let _ = self.stream.write_all(bytes);
    }

    /// Sends a request with the next xid; returns the xid.
    pub fn send(&mut self, request: &Request) -> i32 {
        let xid = match request {
            Request::Ping => xid::PING,
            Request::Auth { .. } => xid::AUTH,
            _ => {
                self.next_xid += 1;
                self.next_xid
            }
        };
        self.send_bytes(&encode_request(xid, request));
        xid
    }

    /// The next frame body, or `None` on EOF / reset / timeout.
    pub fn read_frame(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            if let Some(frame) = self.splitter.next_frame().unwrap() {
                return Some(frame);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.splitter.push(&buf[..n]),
                Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => return None,
            }
        }
    }

    /// Reads frames until the reply to `opcode`, keeping notifications in
    /// `events`. Panics on EOF.
    pub fn reply(&mut self, opcode: i32) -> (ReplyHeader, Option<Response>) {
        loop {
            let body = self.read_frame(WAIT).expect("a reply before EOF");
            let header = decode_reply_header(&body).unwrap();
            if header.xid == xid::NOTIFICATION {
                self.events.push(decode_notification(&body).unwrap().1);
                continue;
            }
            return decode_reply(opcode, &body).unwrap();
        }
    }

    /// The raw reply frame body (no notification skipping).
    pub fn raw_reply(&mut self) -> Vec<u8> {
        self.read_frame(WAIT).expect("a frame")
    }

    /// Sends and waits for the reply.
    pub fn call(&mut self, request: &Request) -> (ReplyHeader, Option<Response>) {
        let xid = self.send(request);
        let (header, response) = self.reply(request.opcode());
        assert_eq!(header.xid, xid, "replies come in request order");
        (header, response)
    }

    /// Sends and returns the error code (0 for success).
    pub fn err(&mut self, request: &Request) -> i32 {
        self.call(request).0.err
    }

    /// True once the server has closed the connection (EOF within `WAIT`).
    pub fn closed_by_server(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match self.read_frame(Duration::from_millis(100)) {
                Some(_) => continue,
                None => {
                    // Distinguish EOF from a read timeout.
                    self.stream
                        .set_read_timeout(Some(Duration::from_millis(50)))
                        .unwrap();
                    let mut b = [0u8; 1];
                    match self.stream.read(&mut b) {
                        Ok(0) => return true,
                        Ok(_) => continue,
                        Err(e)
                            if matches!(
                                e.kind(),
                                IoErrorKind::WouldBlock | IoErrorKind::TimedOut
                            ) =>
                        {
                            continue
                        }
                        Err(_) => return true,
                    }
                }
            }
        }
        false
    }
}

/// Sends a four-letter word on a fresh connection and returns the text.
pub fn four_letter(addr: SocketAddr, word: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(word.as_bytes()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// Waits for `cond` with a deadline (sockets give no other signal).
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
