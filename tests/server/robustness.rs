//! Bad input and bad clients: each is handled, and the server keeps serving
//! everyone else (checked after each case with a fresh client).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use innkeeper::proto::{encode_request, opcode, CreateKind, GetDataRequest, Request};
use innkeeper::server::{FourLetterWords, ServerConfig};

use crate::client::{server, server_with, Client};
use crate::wire::create;

/// A fresh client can still do a round trip.
fn still_serving(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    assert_eq!(c.err(&Request::Ping), 0);
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = i32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn malformed_body_gets_marshalling_error_and_the_connection_stays() {
    // Reference: docs/zookeeper-semantics.md H.9 (malformed body → −5, keep the connection).
    let (_keeper, server) = server();
    let mut c = Client::connect(server.local_addr());
    // getData header, then a string length running past the frame.
    let mut body = 7i32.to_be_bytes().to_vec();
    body.extend_from_slice(&opcode::GET_DATA.to_be_bytes());
    body.extend_from_slice(&100i32.to_be_bytes());
    body.extend_from_slice(b"/ab");
    c.send_bytes(&frame(&body));
    let (h, _) = c.reply(opcode::GET_DATA);
    assert_eq!((h.xid, h.err), (7, -5));
    assert_eq!(c.err(&Request::Ping), 0, "the connection still works");
}

#[test]
fn unknown_opcode_closes_the_connection_but_not_the_session() {
    // Reference: docs/zookeeper-semantics.md H.9, J.24.
    let (_keeper, server) = server();
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    c.call(&create(CreateKind::Create, "/keep", None, 1));
    let mut body = 9i32.to_be_bytes().to_vec();
    body.extend_from_slice(&4242i32.to_be_bytes());
    c.send_bytes(&frame(&body));
    let (h, _) = c.reply(4242);
    assert_eq!((h.xid, h.zxid, h.err), (9, -1, -6));
    assert!(c.closed_by_server());
    let (mut again, resp) = Client::resume(addr, c.session_id, &c.passwd.clone());
    assert_eq!(resp.session_id, c.session_id, "the session survived");
    assert_eq!(
        again.err(&Request::Exists {
            path: "/keep".into(),
            watch: false
        }),
        0
    );
}

#[test]
fn truncated_header_and_oversized_frames_close_silently() {
    // Reference: docs/zookeeper-semantics.md H.1, H.9.
    let (_keeper, server) = server_with(ServerConfig {
        frame_len_max: 4096,
        ..ServerConfig::default()
    });
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    c.send_bytes(&frame(&[0, 0, 0]));
    assert!(c.closed_by_server(), "a frame shorter than a header");

    let mut c = Client::connect(addr);
    c.send_bytes(&5000i32.to_be_bytes());
    assert!(c.closed_by_server(), "a length above the limit");

    let mut c = Client::connect(addr);
    c.send_bytes(&(-1i32).to_be_bytes());
    assert!(c.closed_by_server(), "a negative length");

    // Data above the frame limit: the create frame itself is too big.
    let mut c = Client::connect(addr);
    c.send(&create(CreateKind::Create, "/big", Some(&[0; 5000]), 0));
    assert!(c.closed_by_server());
    still_serving(addr);
}

#[test]
fn garbage_instead_of_a_handshake_is_closed() {
    let (_keeper, server) = server();
    let addr = server.local_addr();
    let mut c = Client::raw(addr);
    c.send_bytes(&frame(b"not a connect request"));
    assert!(c.closed_by_server());
    let mut c = Client::raw(addr);
    c.send_bytes(b"GET / HTTP/1.1\r\n\r\n");
    assert!(c.closed_by_server(), "a length far above the limit");
    still_serving(addr);
}

#[test]
fn half_a_frame_then_silence_holds_nothing() {
    // Reference: docs/zookeeper-semantics.md H.9 (sessionless connections closed after a timeout).
    let (_keeper, server) = server_with(ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let addr = server.local_addr();
    let mut stalled = Client::raw(addr);
    stalled.send_bytes(&[0, 0, 0, 45, 0, 0]);
    let mut silent = Client::raw(addr);
    // Others are served meanwhile.
    still_serving(addr);
    let started = Instant::now();
    assert!(stalled.closed_by_server());
    assert!(silent.closed_by_server());
    assert!(started.elapsed() < Duration::from_secs(3));

    // After the handshake a stalled half frame is ended by session expiry.
    let mut c = Client::connect_with(addr, 200);
    let full = encode_request(
        5,
        &Request::GetData(GetDataRequest {
            path: "/zookeeper".into(),
            watch: false,
        }),
    );
    c.send_bytes(&full[..full.len() - 3]);
    assert!(c.closed_by_server());
    still_serving(addr);
}

#[test]
fn a_client_that_never_reads_is_disconnected() {
    let (_keeper, server) = server_with(ServerConfig {
        output_bytes_soft_max: 64 << 10,
        output_bytes_max: 256 << 10,
        write_stall_timeout: Duration::from_millis(300),
        four_letter_words: FourLetterWords::All,
        ..ServerConfig::default()
    });
    let addr = server.local_addr();
    let mut setup = Client::connect(addr);
    setup.call(&create(CreateKind::Create, "/big", Some(&[7; 60_000]), 0));

    // Pipeline reads of a 60 kB node and never read a byte back.
    let mut hog = Client::connect(addr);
    hog.stream
        .set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let request = encode_request(
        3,
        &Request::GetData(GetDataRequest {
            path: "/big".into(),
            watch: false,
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut closed = false;
    while Instant::now() < deadline {
        if hog.stream.write_all(&request).is_err() {
            // Either the socket buffers are full (the server stopped reading
            // us) or the server closed us.
            if server.connection_count() == 1 {
                closed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Meanwhile others are served promptly.
        let t = Instant::now();
        assert_eq!(setup.err(&Request::Ping), 0);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "others are not held up"
        );
    }
    assert!(closed, "the non-reading client was disconnected");
    still_serving(addr);
}

#[test]
fn connections_per_address_are_limited() {
    // Reference: docs/zookeeper-semantics.md H.9 (maxClientCnxns).
    let (_keeper, server) = server_with(ServerConfig {
        connections_per_ip_max: 2,
        ..ServerConfig::default()
    });
    let addr = server.local_addr();
    let a = Client::connect(addr);
    let _b = Client::connect(addr);
    let mut refused = Client::raw(addr);
    assert!(refused.closed_by_server());
    drop(a);
    crate::client::eventually("a slot to free up", || server.connection_count() < 2);
    still_serving(addr);
}

#[test]
fn server_shutdown_closes_connections_and_the_port() {
    let (_keeper, server) = server();
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    server.shutdown();
    assert!(c.closed_by_server());
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn random_request_bodies_never_take_the_server_down() {
    // Seeded garbage behind valid headers of every opcode: each frame gets a
    // reply or closes its connection; the server keeps serving.
    let (keeper, server) = server();
    let addr = server.local_addr();
    let opcodes: [i32; 32] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22, 100, 101, 102, 103,
        104, 105, 106, 107, -11, 20, 10, 999,
    ];
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut c = Client::connect(addr);
    for round in 0..600i32 {
        let op = opcodes[(next() % opcodes.len() as u64) as usize];
        let len = (next() % 48) as usize;
        let mut body = (round + 1).to_be_bytes().to_vec();
        body.extend_from_slice(&op.to_be_bytes());
        for _ in 0..len {
            // Mostly small bytes, so lengths and counts are often plausible.
            let b = next();
            body.push(if b % 4 == 0 {
                (b >> 8) as u8
            } else {
                (b % 3) as u8
            });
        }
        c.send_bytes(&frame(&body));
        match c.read_frame(Duration::from_secs(5)) {
            Some(_) => {}
            None => c = Client::connect(addr),
        }
    }
    still_serving(addr);
    keeper.check_invariants().unwrap();
}

#[test]
fn dropped_connections_release_their_sockets_while_sessions_live_on() {
    // Sessions outlive their connections (they expire later), but the
    // server must not keep the closed sockets open until then.
    let open_fds = || std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let (keeper, server) = server();
    let addr = server.local_addr();
    still_serving(addr);
    crate::client::eventually("the first client's socket to go", || {
        server.connection_count() == 0
    });
    let before = open_fds();
    for _ in 0..40 {
        let mut c = Client::connect(addr);
        assert_eq!(c.err(&Request::Ping), 0);
    }
    crate::client::eventually("every server-side socket to close", || {
        server.connection_count() == 0 && open_fds() <= before + 5
    });
    assert!(keeper.session_count() >= 40, "the sessions are still alive");
}
