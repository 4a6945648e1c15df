//! Pipelined requests on one connection: writes are group-committed, replies
//! stay in request order, notifications keep their place among replies,
//! and nothing acknowledged is lost when the server process is killed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use innkeeper::proto::{
    decode_notification, decode_reply, decode_reply_header, opcode, xid, CreateKind, DeleteRequest,
    GetDataRequest, MultiOp, Request, Response, SetDataRequest,
};
use innkeeper::server::ServerConfig;
use innkeeper::Coordinator;

use crate::client::{keeper_builder, server_on, Client, WAIT};
use crate::wire::create;

/// A durable keeper in a fresh directory and a server over it.
fn durable_server() -> (
    tempfile::TempDir,
    innkeeper::Keeper,
    innkeeper::server::Server,
) {
    let dir = tempfile::tempdir().unwrap();
    let keeper = keeper_builder().open(dir.path()).unwrap();
    let (keeper, server) = server_on(keeper, ServerConfig::default());
    (dir, keeper, server)
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.to_string(),
        watch,
    })
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.to_string(),
        data: Some(data.to_vec()),
        version: -1,
    })
}

/// One frame as the client saw it: a notification or a reply.
#[derive(Debug)]
enum Seen {
    Event(i32, String),
    Reply(i32, i64, i32, Option<Response>),
}

/// Reads frames until `n` replies have arrived, keeping notifications in
/// their place. `ops` maps each xid to its opcode for decoding.
fn read_replies(c: &mut Client, ops: &[(i32, i32)]) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut replies = 0;
    while replies < ops.len() {
        let body = c.read_frame(WAIT).expect("a frame before EOF");
        let header = decode_reply_header(&body).unwrap();
        if header.xid == xid::NOTIFICATION {
            let (_, event) = decode_notification(&body).unwrap();
            seen.push(Seen::Event(event.event_type, event.path));
            continue;
        }
        let op = ops
            .iter()
            .find(|(x, _)| *x == header.xid)
            .map(|(_, op)| *op)
            .unwrap_or_else(|| panic!("reply to unknown xid {}", header.xid));
        let (header, response) = decode_reply(op, &body).unwrap();
        seen.push(Seen::Reply(header.xid, header.zxid, header.err, response));
        replies += 1;
    }
    seen
}

/// Sends every request without waiting; returns (xid, opcode) in order.
fn pipeline(c: &mut Client, requests: &[Request]) -> Vec<(i32, i32)> {
    requests.iter().map(|r| (c.send(r), r.opcode())).collect()
}

fn reply_xids(seen: &[Seen]) -> Vec<i32> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Reply(x, ..) => Some(*x),
            Seen::Event(..) => None,
        })
        .collect()
}

#[test]
fn pipelined_writes_on_one_connection_share_flushes() {
    let (_dir, keeper, server) = durable_server();
    let mut c = Client::connect(server.local_addr());
    let n = 400;
    let requests: Vec<Request> = (0..n)
        .map(|i| create(CreateKind::Create, &format!("/p{i}"), Some(b"x"), 0))
        .collect();
    let before = server.store_batches();
    let sent = pipeline(&mut c, &requests);
    let seen = read_replies(&mut c, &sent);
    let batches = server.store_batches() - before;
    eprintln!("{n} pipelined creates: {batches} store batches");

    let xids: Vec<i32> = sent.iter().map(|(x, _)| *x).collect();
    assert_eq!(reply_xids(&seen), xids, "replies in request order");
    let mut last_zxid = 0;
    for s in &seen {
        let Seen::Reply(_, zxid, err, _) = s else {
            panic!("no events expected: {s:?}")
        };
        assert_eq!(*err, 0);
        assert!(*zxid > last_zxid, "each create has a later zxid");
        last_zxid = *zxid;
    }
    // One flush per write would be 400 batches: the writes arrived while
    // earlier ones were being flushed, so they shared flushes.
    assert!(
        batches * 4 <= n as u64,
        "{n} pipelined creates took {batches} store batches"
    );
    assert_eq!(keeper.node_count(), 4 + n, "every create applied");
}

#[test]
fn replies_stay_in_order_under_mixed_pipelined_reads_and_writes() {
    let (_dir, _keeper, server) = durable_server();
    let mut c = Client::connect(server.local_addr());
    let mut requests = Vec::new();
    for i in 0..50 {
        let p = format!("/m{i}");
        requests.push(create(CreateKind::Create, &p, Some(b"0"), 0));
        // A read behind a pending write of the same connection sees it.
        requests.push(get(&p, false));
        requests.push(set(&p, b"1"));
        requests.push(Request::Exists {
            path: p.clone(),
            watch: false,
        });
        requests.push(get(&p, false));
        if i % 2 == 0 {
            requests.push(Request::Delete(DeleteRequest {
                path: p.clone(),
                version: -1,
            }));
            requests.push(Request::Exists {
                path: p,
                watch: false,
            });
        }
        requests.push(Request::Ping);
    }
    let sent = pipeline(&mut c, &requests);
    let seen = read_replies(&mut c, &sent);
    let xids: Vec<i32> = sent.iter().map(|(x, _)| *x).collect();
    assert_eq!(reply_xids(&seen), xids, "replies in request order");

    let mut last_zxid = 0;
    let mut version_seen = Vec::new();
    let mut deleted = false;
    for (s, request) in seen.iter().zip(&requests) {
        let Seen::Reply(_, zxid, err, response) = s else {
            panic!("no events expected: {s:?}")
        };
        if *request != Request::Ping {
            assert!(*zxid >= last_zxid, "zxids never go back");
            last_zxid = *zxid;
        }
        match request {
            Request::Create(_) => {
                assert_eq!(*err, 0);
                deleted = false;
            }
            Request::Delete(_) => {
                assert_eq!(*err, 0);
                deleted = true;
            }
            Request::Exists { path, .. } => {
                let expected = if deleted { -101 } else { 0 };
                assert_eq!(*err, expected, "exists {path} sees the writes before it");
            }
            Request::GetData(_) => {
                assert_eq!(*err, 0, "the create before it was applied first");
                let Some(Response::GetData { stat, .. }) = response else {
                    panic!("{response:?}")
                };
                version_seen.push(stat.version);
            }
            _ => assert_eq!(*err, 0, "{request:?}"),
        }
    }
    // Each node: read after create (version 0), read after set (version 1).
    assert_eq!(version_seen, [0, 1].repeat(50));
}

#[test]
fn notifications_keep_their_place_among_pipelined_replies() {
    let (_dir, _keeper, server) = durable_server();
    let addr = server.local_addr();
    let mut c = Client::connect(addr);
    c.call(&create(CreateKind::Create, "/n", Some(b"0"), 0));
    c.call(&create(CreateKind::Create, "/y", Some(b"0"), 0));
    c.call(&Request::Exists {
        path: "/n".into(),
        watch: true,
    });
    // Pipelined: a read handled before the change, the change (which fires
    // this connection's own watch), and a read after it.
    let requests = [
        get("/y", false),
        Request::Multi(vec![
            MultiOp::Delete(DeleteRequest {
                path: "/n".into(),
                version: -1,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/y".into(),
                data: Some(b"1".to_vec()),
                version: -1,
            }),
        ]),
        get("/y", false),
    ];
    let sent = pipeline(&mut c, &requests);
    let seen = read_replies(&mut c, &sent);
    let order: Vec<String> = seen
        .iter()
        .map(|s| match s {
            Seen::Event(t, p) => format!("event {t} {p}"),
            Seen::Reply(x, _, err, Some(Response::GetData { stat, .. })) => {
                format!("reply {x} {err} version {}", stat.version)
            }
            Seen::Reply(x, _, err, _) => format!("reply {x} {err}"),
        })
        .collect();
    let (x1, x2, x3) = (sent[0].0, sent[1].0, sent[2].0);
    assert_eq!(
        order,
        [
            format!("reply {x1} 0 version 0"),
            "event 2 /n".to_string(),
            format!("reply {x2} 0"),
            format!("reply {x3} 0 version 1"),
        ],
        "the read before the change answers before its event; the event before the change's reply"
    );
}

/// Issue 15, Ordering: across connections, a client's event for a change and
/// its read replies agree. One multi deletes the watched `/x` and sets `/y`;
/// a getData of `/y` that shows the old version was handled before the
/// change, so its reply must come before the NodeDeleted of `/x`; one that
/// shows the new version must come after it. Reads race the writer on
/// another connection (its commits run on the engine's thread while the
/// server's loop answers reads) until one sees the change; every reply is
/// judged.
#[test]
fn events_and_read_replies_agree_across_connections() {
    let (_dir, _keeper, server) = durable_server();
    let addr = server.local_addr();
    let mut reader = Client::connect(addr);
    let mut writer = Client::connect(addr);
    writer.call(&create(CreateKind::Create, "/y", Some(b"0"), 0));
    let mut before = 0;
    let mut after = 0;
    for round in 0..60 {
        writer.call(&create(CreateKind::Create, "/x", None, 0));
        reader.call(&Request::Exists {
            path: "/x".into(),
            watch: true,
        });
        reader.events.clear();
        let version = {
            let (_, r) = reader.call(&get("/y", false));
            let Some(Response::GetData { stat, .. }) = r else {
                panic!("{r:?}")
            };
            stat.version
        };
        // The writer's multi goes out, then the reader pipelines reads
        // while it commits.
        let multi = Request::Multi(vec![
            MultiOp::Delete(DeleteRequest {
                path: "/x".into(),
                version: -1,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/y".into(),
                data: Some(format!("{round}").into_bytes()),
                version: -1,
            }),
        ]);
        let write_xid = writer.send(&multi);
        // Pipelined reads, four at a time, until one shows the change.
        let mut event_seen = false;
        let mut changed = false;
        while !changed {
            let reads: Vec<Request> = (0..4).map(|_| get("/y", false)).collect();
            let sent = pipeline(&mut reader, &reads);
            let seen = read_replies(&mut reader, &sent);
            for s in &seen {
                match s {
                    Seen::Event(t, p) => {
                        assert_eq!((*t, p.as_str()), (2, "/x"));
                        assert!(!event_seen, "one event per change");
                        event_seen = true;
                    }
                    Seen::Reply(_, _, 0, Some(Response::GetData { stat, .. })) => {
                        if stat.version == version {
                            assert!(!event_seen, "old data after the event: {seen:?}");
                            before += 1;
                        } else {
                            assert_eq!(stat.version, version + 1);
                            assert!(event_seen, "new data before the event: {seen:?}");
                            changed = true;
                            after += 1;
                        }
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        let (h, _) = writer.reply(opcode::MULTI);
        assert_eq!((h.xid, h.err), (write_xid, 0));
    }
    eprintln!("reads before the change: {before}, after: {after}");
}

/// `innkeeper serve` as a child process, killed and reaped when dropped.
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServeProcess {
    /// Runs `innkeeper serve` durable on a free port, once it says it is ready.
    fn start(dir: &std::path::Path) -> ServeProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_innkeeper"))
            .args(["serve", "--port", "0", "--tick-ms", "200", "--data-dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("innkeeper serve starts");
        let mut process = ServeProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let stderr = process.child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "no ready line");
            let line = lines.next().expect("a ready line").unwrap();
            if let Some(rest) = line.split("serving ZooKeeper clients on ").nth(1) {
                process.addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                // Keep draining stderr so the child never blocks on it.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return process;
            }
        }
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Crash through the wire: a client pipelines creates and counts the
/// acknowledged ones; the server process is SIGKILLed mid-stream; after a
/// restart on the same directory every acknowledged create is there.
#[test]
fn acknowledged_pipelined_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut server = ServeProcess::start(dir.path());
        let mut c = Client::connect(server.addr);
        let mut outstanding = std::collections::VecDeque::new();
        let started = Instant::now();
        let kill_after = Duration::from_millis(300 + 100 * round);
        let mut i = 0;
        let mut killed = false;
        'run: loop {
            while outstanding.len() < 200 {
                let p = format!("/r{round}-{i}");
                i += 1;
                let x = c.send(&create(CreateKind::Create, &p, None, 0));
                outstanding.push_back((x, p));
            }
            for _ in 0..50 {
                if !killed && started.elapsed() >= kill_after {
                    server.kill();
                    killed = true;
                }
                let Some(body) = c.read_frame(if killed {
                    Duration::from_millis(500)
                } else {
                    WAIT
                }) else {
                    assert!(killed, "the server went away before it was killed");
                    break 'run;
                };
                let (h, _) = decode_reply(opcode::CREATE, &body).unwrap();
                let (x, p) = outstanding.pop_front().unwrap();
                assert_eq!((h.xid, h.err), (x, 0), "replies in order");
                acked.push(p);
            }
        }
        assert!(!acked.is_empty());
    }
    let mut server = ServeProcess::start(dir.path());
    let mut c = Client::connect(server.addr);
    let mut missing = Vec::new();
    for p in &acked {
        let (h, _) = c.call(&Request::Exists {
            path: p.clone(),
            watch: false,
        });
        if h.err != 0 {
            missing.push(p.clone());
        }
    }
    server.kill();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged creates lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn a_slow_reader_does_not_hold_up_other_connections() {
    let (_dir, keeper, server) = durable_server();
    let addr = server.local_addr();
    let session = keeper.session().unwrap();
    session
        .create("/big", &[7u8; 200_000], innkeeper::CreateMode::Persistent)
        .unwrap();
    // This client asks for megabytes and reads nothing.
    let mut slow = Client::connect(addr);
    for _ in 0..40 {
        slow.send(&get("/big", false));
    }
    // Others are served meanwhile.
    // Every reply below has a deadline (WAIT): a loop stuck on the slow
    // client fails the test.
    let mut fast = Client::connect(addr);
    for i in 0..20 {
        assert_eq!(
            fast.err(&create(CreateKind::Create, &format!("/f{i}"), None, 0)),
            0
        );
    }
    drop(slow);
}

/// Back-pressure on pipelined reads: a client that asks for far more than
/// it reads gets no more answers queued than the soft limit allows (the
/// rest wait as requests), and all of them once it reads, in order.
#[test]
fn pipelined_reads_wait_while_the_output_is_full() {
    let (keeper, server) = crate::client::server();
    let addr = server.local_addr();
    let session = keeper.session().unwrap();
    session
        .create("/big", &[7u8; 200_000], innkeeper::CreateMode::Persistent)
        .unwrap();
    let mut slow = Client::connect(addr);
    let me = slow.stream.local_addr().unwrap();
    let requests: Vec<Request> = (0..100).map(|_| get("/big", false)).collect();
    let sent = pipeline(&mut slow, &requests);
    // The server's view of this connection's queue, from `cons`.
    let queued = || -> Option<usize> {
        let cons = crate::client::four_letter(addr, "cons");
        let line = cons.lines().find(|l| l.contains(&format!("/{me}[")))?;
        let n = line.split("queued=").nth(1)?.split(',').next()?;
        n.parse().ok()
    };
    crate::client::eventually("replies queued", || queued().is_some_and(|n| n > 0));
    // 1 MiB soft limit / 200 KB replies: a handful, not the 100 asked for.
    let n = queued().unwrap();
    assert!(n <= 8, "{n} replies queued for a client that reads nothing");
    // The requests waiting behind the full output are outstanding: taken
    // from the socket, not yet answered (srvr, stat and mntr agree).
    let outstanding = || -> (u64, u64) {
        let pick = |word: &str, key: &str| -> u64 {
            let text = crate::client::four_letter(addr, word);
            let line = text.lines().find_map(|l| l.strip_prefix(key));
            line.and_then(|v| v.trim().parse().ok()).unwrap_or(u64::MAX)
        };
        (
            pick("srvr", "Outstanding:"),
            pick("mntr", "zk_outstanding_requests"),
        )
    };
    let (srvr, mntr) = outstanding();
    assert!(
        (1..=100).contains(&srvr) && srvr == mntr,
        "outstanding {srvr} (srvr) / {mntr} (mntr) with 100 asked and at most 8 answered"
    );
    let seen = read_replies(&mut slow, &sent);
    let xids: Vec<i32> = sent.iter().map(|(x, _)| *x).collect();
    assert_eq!(reply_xids(&seen), xids);
    crate::client::eventually("all answered", || outstanding() == (0, 0));
    // A client that leaves with requests still waiting leaves none behind.
    pipeline(&mut slow, &requests);
    crate::client::eventually("replies queued again", || queued().is_some_and(|n| n > 0));
    drop(slow);
    crate::client::eventually("the waiting requests forgotten", || outstanding() == (0, 0));
}
