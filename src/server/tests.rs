//! Server tests that need the engine's inside: a commit held in flight.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{FourLetterWords, Server, ServerConfig};
use crate::proto::{
    decode_connect_response, decode_reply, encode_connect_request, encode_request, opcode,
    ConnectRequest, ConnectResponse, CreateKind, CreateRequest, FrameSplitter, GetDataRequest,
    Request, Response,
};
use crate::{Acl, Coordinator, Keeper};

const WAIT: Duration = Duration::from_secs(10);

struct Raw {
    stream: TcpStream,
    splitter: FrameSplitter,
}

impl Raw {
    fn connect(addr: SocketAddr, request: &ConnectRequest) -> Raw {
        let mut raw = Raw {
            stream: TcpStream::connect(addr).unwrap(),
            splitter: FrameSplitter::new(),
        };
        raw.stream.set_read_timeout(Some(WAIT)).unwrap();
        raw.stream
            .write_all(&encode_connect_request(request))
            .unwrap();
        raw
    }

    fn frame(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(frame) = self.splitter.next_frame().unwrap() {
                return frame;
            }
            assert!(Instant::now() < deadline, "no frame in time");
            let n = self
                .stream
                .read(&mut buf)
                .expect("a frame before the timeout");
            assert!(n > 0, "the server closed the connection");
            self.splitter.push(&buf[..n]);
        }
    }

    fn connected(&mut self) -> ConnectResponse {
        decode_connect_response(&self.frame()).unwrap()
    }

    fn send(&mut self, xid: i32, request: &Request) {
        self.stream
            .write_all(&encode_request(xid, request))
            .unwrap();
    }
}

fn connect_request(session_id: i64, passwd: &[u8], timeout_ms: i32) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms,
        session_id,
        passwd: passwd.to_vec(),
        read_only: None,
    }
}

fn four_letter(addr: SocketAddr, word: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(word.as_bytes()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// `srvr`'s Outstanding line and `mntr`'s outstanding_requests, which must agree.
fn outstanding(addr: SocketAddr) -> (String, String) {
    let srvr = four_letter(addr, "srvr");
    let mntr = four_letter(addr, "mntr");
    let pick = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    (
        pick(&srvr, "Outstanding:"),
        pick(&mntr, "zk_outstanding_requests"),
    )
}

fn wait_for_outstanding(addr: SocketAddr, n: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = outstanding(addr);
        if seen == (n.to_string(), n.to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "outstanding {seen:?}, expected {n}"
        );
        std::thread::yield_now();
    }
}

/// While a write is held in the commit pipeline, `srvr`/`mntr` count it and
/// the read queued behind it as outstanding; a resume that changes its
/// timeout waits for its txn without stopping the event loop (four-letter
/// words are still answered), and everything is answered once the commit
/// goes on: the connect response carries the new timeout.
#[test]
fn outstanding_counts_held_requests_and_a_resume_never_blocks_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let keeper = Keeper::builder()
        .session_timeout_range(Duration::from_secs(2), Duration::from_secs(60))
        .open(dir.path())
        .unwrap();
    let server = Server::start(
        keeper.clone(),
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            four_letter_words: FourLetterWords::All,
            ..ServerConfig::default()
        },
    )
    .unwrap();
    let addr = server.local_addr();
    let mut client = Raw::connect(addr, &connect_request(0, &[0; 16], 10_000));
    client.connected();
    let other = keeper
        .session_with_timeout(Duration::from_secs(10))
        .unwrap();
    wait_for_outstanding(addr, "0");
    let zxid_before = keeper.last_zxid();

    let hold = keeper.engine.hold_commits();
    let create = Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: "/held".into(),
        data: Some(b"x".to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
    });
    client.send(1, &create);
    client.send(
        2,
        &Request::GetData(GetDataRequest {
            path: "/held".into(),
            watch: false,
        }),
    );
    wait_for_outstanding(addr, "2");
    // A resume with a new timeout: its txn is held too, and the loop goes on.
    let mut resumed = Raw::connect(
        addr,
        &connect_request(other.session_id(), &other.password(), 20_000),
    );
    assert_eq!(outstanding(addr), ("2".into(), "2".into()));
    drop(hold);

    let (header, response) = decode_reply(opcode::CREATE, &client.frame()).unwrap();
    assert_eq!((header.xid, header.err), (1, 0));
    assert_eq!(
        response,
        Some(Response::Create {
            path: "/held".into()
        })
    );
    let (header, response) = decode_reply(opcode::GET_DATA, &client.frame()).unwrap();
    assert_eq!((header.xid, header.err), (2, 0));
    assert!(matches!(response, Some(Response::GetData { data: Some(d), .. }) if d == b"x"));
    let answer = resumed.connected();
    assert_eq!(
        (answer.session_id, answer.timeout_ms),
        (other.session_id(), 20_000)
    );
    assert_eq!(
        keeper.last_zxid(),
        zxid_before + 2,
        "the create and the session's new timeout"
    );
    wait_for_outstanding(addr, "0");
    server.shutdown();
    keeper.shutdown().unwrap();
}
