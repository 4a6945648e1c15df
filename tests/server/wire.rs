//! What well-behaved clients see: replies, notifications, sessions.

use innkeeper::proto::{
    encode_reply, opcode, CheckVersionRequest, ConnectRequest, CreateKind, CreateRequest,
    DeleteRequest, GetChildrenRequest, GetDataRequest, MultiOp, MultiResult, ReplyHeader, Request,
    Response, SetDataRequest,
};
use innkeeper::{Acl, Coordinator};
use std::time::Duration;

use crate::client::{eventually, four_letter, server, Client};

pub fn create(kind: CreateKind, path: &str, data: Option<&[u8]>, flags: i32) -> Request {
    Request::Create(CreateRequest {
        kind,
        path: path.to_string(),
        data: data.map(<[u8]>::to_vec),
        acl: Acl::open_unsafe(),
        flags,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.to_string(),
        watch,
    })
}

fn set(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.to_string(),
        data: Some(data.to_vec()),
        version,
    })
}

#[test]
fn create_get_set_delete_round_trip() {
    // Reference: docs/zookeeper-semantics.md H.6 layouts; A.7 null vs empty data; B.2 version bumps.
    let (_keeper, server) = server();
    let mut c = Client::connect(server.local_addr());
    let (h, r) = c.call(&create(CreateKind::Create, "/a", Some(b"one"), 0));
    assert_eq!(h.err, 0);
    assert_eq!(r, Some(Response::Create { path: "/a".into() }));
    assert_eq!(
        h.zxid,
        server_zxid(&mut c),
        "reply zxid is the last applied"
    );

    let (_, r) = c.call(&get("/a", false));
    let Some(Response::GetData { data, stat }) = r else {
        panic!("{r:?}")
    };
    assert_eq!((data.as_deref(), stat.version), (Some(&b"one"[..]), 0));

    let (_, r) = c.call(&set("/a", b"two", 0));
    let Some(Response::SetData { stat }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(stat.version, 1);
    assert_eq!(c.err(&set("/a", b"x", 0)), -103, "BadVersion");

    c.call(&create(CreateKind::Create, "/null", None, 0));
    let (_, r) = c.call(&get("/null", false));
    assert!(
        matches!(r, Some(Response::GetData { data: None, .. })),
        "null stays null"
    );
    c.call(&create(CreateKind::Create, "/empty", Some(b""), 0));
    let (_, r) = c.call(&get("/empty", false));
    assert!(matches!(r, Some(Response::GetData { data: Some(ref d), .. }) if d.is_empty()));

    let del = |p: &str| {
        Request::Delete(DeleteRequest {
            path: p.into(),
            version: -1,
        })
    };
    assert_eq!(c.err(&del("/a")), 0);
    assert_eq!(c.err(&del("/a")), -101, "NoNode");
    assert_eq!(c.err(&get("/a", false)), -101);
    assert_eq!(c.err(&del("/zookeeper")), -8, "system nodes stay");
}

fn server_zxid(c: &mut Client) -> i64 {
    c.call(&Request::Ping).0.zxid
}

#[test]
fn create_and_create2_replies_differ_and_error_replies_have_no_body() {
    // Reference: docs/zookeeper-semantics.md H.6 (create → path, create2/container → path + stat), J.6.
    let (_keeper, server) = server();
    let mut c = Client::connect(server.local_addr());
    c.send(&create(CreateKind::Create, "/p", Some(b""), 0));
    let body = c.raw_reply();
    // header (16) + ustring "/p" (4 + 2)
    assert_eq!(body.len(), 16 + 6);
    assert_eq!(&body[16..], b"\x00\x00\x00\x02/p");

    c.send(&create(CreateKind::Create2, "/q", Some(b""), 0));
    let body = c.raw_reply();
    assert_eq!(body.len(), 16 + 6 + 68, "create2 adds the 68-byte Stat");

    c.send(&create(CreateKind::Container, "/c", Some(b""), 4));
    let (_, r) = c.reply(opcode::CREATE_CONTAINER);
    let Some(Response::Create2 { path, stat }) = r else {
        panic!("{r:?}")
    };
    assert_eq!((path.as_str(), stat.ephemeral_owner), ("/c", 0));

    // Flag 4 on plain create stores a persistent node (A.3).
    c.call(&create(CreateKind::Create, "/flag4", Some(b""), 4));
    // TTL without extended types → Unimplemented (A.3).
    assert_eq!(
        c.err(&create(CreateKind::Ttl { ttl: 1000 }, "/t", Some(b""), 5)),
        -6
    );
    assert_eq!(c.err(&create(CreateKind::Create, "/bad", None, 9)), -8);

    c.send(&create(CreateKind::Create, "/p", Some(b""), 0));
    let body = c.raw_reply();
    assert_eq!(body.len(), 16, "an error reply is the bare header");
    assert_eq!(i32::from_be_bytes(body[12..16].try_into().unwrap()), -110);
}

#[test]
fn failed_multi_is_header_ok_with_per_op_results_byte_for_byte() {
    // Reference: docs/zookeeper-semantics.md E.1, E.3, J.4.
    let (_keeper, server) = server();
    let mut c = Client::connect(server.local_addr());
    c.call(&create(CreateKind::Create, "/m", Some(b""), 0));
    let multi = Request::Multi(vec![
        MultiOp::Check(CheckVersionRequest {
            path: "/m".into(),
            version: 0,
        }),
        MultiOp::Create(CreateRequest {
            kind: CreateKind::Create,
            path: "/m".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/m".into(),
            version: -1,
        }),
    ]);
    let xid = c.send(&multi);
    let body = c.raw_reply();
    let zxid = i64::from_be_bytes(body[4..12].try_into().unwrap());
    let expected = encode_reply(
        &ReplyHeader { xid, zxid, err: 0 },
        Some(&Response::Multi(vec![
            MultiResult::Error { err: 0 },
            MultiResult::Error { err: -110 },
            MultiResult::Error { err: -2 },
        ])),
    );
    assert_eq!(body, expected[4..]);
    // The tail: an error result is ffffffff 00 <err> + <err>; then the terminator.
    assert_eq!(
        &body[body.len() - 9..],
        b"\xff\xff\xff\xff\x01\xff\xff\xff\xff"
    );

    // Success: create (1) → type 1 path only, create2 → type 15 with stat.
    let ok = Request::Multi(vec![
        MultiOp::Create(CreateRequest {
            kind: CreateKind::Create,
            path: "/m/a".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
        MultiOp::Create(CreateRequest {
            kind: CreateKind::Create2,
            path: "/m/b".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
        }),
        MultiOp::SetData(SetDataRequest {
            path: "/m".into(),
            data: None,
            version: -1,
        }),
    ]);
    let (h, r) = c.call(&ok);
    assert_eq!(h.err, 0);
    let Some(Response::Multi(results)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        results[0],
        MultiResult::Create {
            path: "/m/a".into()
        }
    );
    assert!(matches!(&results[1], MultiResult::Create2 { path, .. } if path == "/m/b"));
    assert!(matches!(results[2], MultiResult::SetData { .. }));
}

#[test]
fn notifications_precede_the_next_reply() {
    // Reference: docs/zookeeper-semantics.md D.4, J.9 — the watcher's event before any later reply on
    // its connection, and the writer's own event before its write reply.
    let (_keeper, server) = server();
    let addr = server.local_addr();
    let mut watcher = Client::connect(addr);
    let mut writer = Client::connect(addr);
    writer.call(&create(CreateKind::Create, "/w", Some(b"0"), 0));
    watcher.call(&get("/w", true));
    writer.call(&get("/w", true));
    writer.call(&set("/w", b"1", -1));
    assert_eq!(
        writer.events.len(),
        1,
        "writer's own event came before its reply"
    );
    assert_eq!(writer.events[0].event_type, 3);

    watcher.call(&Request::Ping);
    assert_eq!(watcher.events.len(), 1);
    let e = &watcher.events[0];
    assert_eq!((e.event_type, e.state, e.path.as_str()), (3, 3, "/w"));

    // exists on a missing node leaves a watch (D.1); child watch fires on create.
    assert_eq!(
        watcher.err(&Request::Exists {
            path: "/w/x".into(),
            watch: true
        }),
        -101
    );
    watcher.call(&Request::GetChildren(GetChildrenRequest {
        path: "/w".into(),
        watch: true,
    }));
    writer.call(&create(CreateKind::Create, "/w/x", None, 0));
    watcher.call(&Request::Ping);
    let kinds: Vec<(i32, &str)> = watcher.events[1..]
        .iter()
        .map(|e| (e.event_type, e.path.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(1, "/w/x"), (4, "/w")],
        "NodeCreated, then the parent's"
    );
    // Notification frames carry xid −1, zxid −1, err 0 (D.7).
    watcher.call(&get("/w", true));
    writer.call(&set("/w", b"2", -1));
    let frame = watcher.raw_reply();
    assert_eq!(
        &frame[..16],
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00"
    );
}

#[test]
fn ping_whoami_auth_and_misc_ops() {
    // Reference: docs/zookeeper-semantics.md H.5 (ping −2, auth −4 with zxid 0), G.3 (ip identity), F.2.
    let (_keeper, server) = server();
    let mut c = Client::connect(server.local_addr());
    let (h, r) = c.call(&Request::Ping);
    assert_eq!((h.xid, h.err, r), (-2, 0, Some(Response::Empty)));

    let (_, r) = c.call(&Request::WhoAmI);
    let Some(Response::WhoAmI { client_info }) = r else {
        panic!()
    };
    assert_eq!(client_info.len(), 1);
    assert_eq!(
        (
            client_info[0].auth_scheme.as_str(),
            client_info[0].user.as_str()
        ),
        ("ip", "127.0.0.1")
    );
    let (h, _) = c.call(&Request::Auth {
        auth_type: 0,
        scheme: "digest".into(),
        auth: b"alice:secret".to_vec(),
    });
    assert_eq!((h.xid, h.zxid, h.err), (-4, 0, 0));
    let (_, r) = c.call(&Request::WhoAmI);
    let Some(Response::WhoAmI { client_info }) = r else {
        panic!()
    };
    // ZooKeeper 3.8.0 answers digest before ip here (its set's order).
    assert_eq!(client_info[0].user, "alice");
    assert_eq!(client_info[1].auth_scheme, "ip");

    c.call(&create(CreateKind::Create, "/n", None, 0));
    c.call(&create(CreateKind::Create, "/n/e", None, 1));
    let (_, r) = c.call(&Request::GetEphemerals {
        prefix_path: "/".into(),
    });
    assert_eq!(
        r,
        Some(Response::GetEphemerals {
            ephemerals: vec!["/n/e".into()]
        })
    );
    let (_, r) = c.call(&Request::GetAllChildrenNumber { path: "/".into() });
    assert_eq!(r, Some(Response::GetAllChildrenNumber { total_number: 5 }));
    let (_, r) = c.call(&Request::Sync { path: "/n".into() });
    assert_eq!(r, Some(Response::Sync { path: "/n".into() }));
    assert_eq!(
        c.err(&Request::Reconfig {
            joining_servers: None,
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1
        }),
        -123
    );
    // addWatch answers a 4-byte ErrorResponse; removeWatches finds it.
    let (_, r) = c.call(&Request::AddWatch {
        path: "/n".into(),
        mode: 1,
    });
    assert_eq!(r, Some(Response::AddWatch));
    let rm = Request::RemoveWatches {
        path: "/n".into(),
        watcher_type: 3,
    };
    assert_eq!(c.err(&rm), 0);
    assert_eq!(c.err(&rm), -121, "NoWatcher");

    // An unknown auth scheme: −115 then close (G.3).
    let (h, _) = c.call(&Request::Auth {
        auth_type: 0,
        scheme: "foo".into(),
        auth: b"bar".to_vec(),
    });
    assert_eq!(h.err, -115);
    assert!(c.closed_by_server());
}

#[test]
fn close_session_replies_then_closes_and_removes_ephemerals() {
    // Reference: docs/zookeeper-semantics.md C.4.
    let (keeper, server) = server();
    let mut c = Client::connect(server.local_addr());
    c.call(&create(CreateKind::Create, "/e", None, 1));
    let (h, _) = c.call(&Request::CloseSession);
    assert_eq!(h.err, 0);
    assert!(c.closed_by_server());
    let s = keeper.session().unwrap();
    assert_eq!(s.exists("/e").unwrap(), None);
}

#[test]
fn resume_with_id_and_password_keeps_the_session_and_closes_the_old_connection() {
    // Reference: docs/zookeeper-semantics.md C.1.6, C.5.
    let (keeper, server) = server();
    let addr = server.local_addr();
    let mut first = Client::connect(addr);
    first.call(&create(CreateKind::Create, "/eph", None, 1));
    let (mut second, resp) = Client::resume(addr, first.session_id, &first.passwd.clone());
    assert_eq!(resp.session_id, first.session_id);
    assert_eq!(resp.passwd, first.passwd);
    assert!(resp.timeout_ms > 0);
    assert_eq!(
        resp.read_only,
        Some(false),
        "readOnly echoed because it was sent"
    );
    assert!(first.closed_by_server(), "the older connection is closed");
    let (_, r) = second.call(&Request::Exists {
        path: "/eph".into(),
        watch: false,
    });
    let Some(Response::Exists { stat }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(stat.ephemeral_owner, second.session_id);

    // A dropped connection leaves the session to expire on its own, not close.
    drop(second);
    eventually("the server to see the drop", || {
        server.connection_count() == 0
    });
    let s = keeper.session().unwrap();
    assert!(s.exists("/eph").unwrap().is_some());
}

#[test]
fn expired_or_unknown_session_gets_the_expired_answer_then_close() {
    // Reference: docs/zookeeper-semantics.md C.5, J.11, J.13 (no readOnly byte unless the request had one).
    let (_keeper, server) = server();
    let addr = server.local_addr();
    let owner = Client::connect(addr);
    let mut c = Client::raw(addr);
    let resp = c
        .handshake(&ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: owner.session_id,
            passwd: vec![7; 16],
            read_only: None,
        })
        .unwrap();
    assert_eq!(
        (
            resp.timeout_ms,
            resp.session_id,
            resp.passwd,
            resp.read_only
        ),
        (0, 0, vec![0; 16], None)
    );
    assert!(c.closed_by_server());

    let mut c = Client::raw(addr);
    let resp = c
        .handshake(&ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0x1234,
            passwd: vec![0; 16],
            read_only: Some(false),
        })
        .unwrap();
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
    assert_eq!(resp.read_only, Some(false));
    assert!(c.closed_by_server());
}

#[test]
fn client_zxid_ahead_of_the_server_is_closed_without_reply() {
    // Reference: docs/zookeeper-semantics.md C.1.3, J.12.
    let (_keeper, server) = server();
    let mut c = Client::raw(server.local_addr());
    let resp = c.handshake(&ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 1 << 40,
        timeout_ms: 10_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    });
    assert_eq!(resp, None);
}

#[test]
fn session_expiry_closes_the_socket_and_fires_other_watches() {
    // Reference: docs/zookeeper-semantics.md C.3, C.4, J.23.
    let (_keeper, server) = server();
    let addr = server.local_addr();
    let mut doomed = Client::connect_with(addr, 200);
    assert_eq!(doomed.timeout_ms, 200);
    doomed.call(&create(CreateKind::Create, "/gone", None, 1));
    let mut watcher = Client::connect(addr);
    watcher.call(&Request::Exists {
        path: "/gone".into(),
        watch: true,
    });
    // No pings: the engine expires the session and the server closes it.
    assert!(doomed.closed_by_server());
    eventually("the NodeDeleted event", || {
        watcher.call(&Request::Ping);
        !watcher.events.is_empty()
    });
    assert_eq!(watcher.events[0].event_type, 2);
}

#[test]
fn an_expiring_session_is_closed_without_its_own_ephemerals_deletion() {
    // Apache ZooKeeper 3.8.0 closes an expiring session's socket without
    // sending it the deletion events of its own watches on its ephemerals
    // (recorded here 4 of 4 times: the NodeDeleted never arrived, EOF came
    // at timeout + up to one tick); innkeeper does the same.
    let (_keeper, server) = server();
    let mut doomed = Client::connect_with(server.local_addr(), 200);
    doomed.call(&create(CreateKind::Create, "/mine", None, 1));
    doomed.call(&Request::Exists {
        path: "/mine".into(),
        watch: true,
    });
    // No pings from here on.
    let mut frames = Vec::new();
    while let Some(body) = doomed.read_frame(crate::client::WAIT) {
        frames.push(body);
    }
    assert!(frames.is_empty(), "{} frames before EOF", frames.len());
    assert!(doomed.closed_by_server());
}

#[test]
fn an_unpinged_session_is_closed_by_its_tick_rounded_deadline() {
    // Reference: docs/zookeeper-semantics.md C.3. With the system clock, a session that sends nothing
    // expires at last touch + timeout rounded up to the next tick, as
    // ZooKeeper's does: within timeout + one tick (plus scheduling slack),
    // never timeout + two ticks. A bound, not a timing figure.
    let keeper = crate::client::keeper_builder()
        .tick(Duration::from_secs(1))
        .session_timeout_range(Duration::from_secs(2), Duration::from_secs(20))
        .build()
        .unwrap();
    let (_keeper, server) = crate::client::server_on(keeper, Default::default());
    let mut quiet = Client::connect_with(server.local_addr(), 2_000);
    let start = std::time::Instant::now();
    assert!(quiet.closed_by_server());
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(1_900), "too early: {took:?}");
    assert!(
        took < Duration::from_millis(3_600),
        "later than timeout + one tick: {took:?}"
    );
}

#[test]
fn four_letter_words_answer_raw_text_and_respect_the_whitelist() {
    // Reference: docs/zookeeper-semantics.md H.11.
    let (_keeper, server) = server();
    let addr = server.local_addr();
    assert_eq!(four_letter(addr, "ruok"), "imok");
    assert_eq!(four_letter(addr, "isro"), "rw");
    let srvr = four_letter(addr, "srvr");
    assert!(
        srvr.starts_with("Zookeeper version: 3.8.0-innkeeper"),
        "{srvr}"
    );
    assert!(srvr.contains("Mode: standalone\n") && srvr.contains("Node count: 5\n"));
    assert!(four_letter(addr, "envi").contains("\nzookeeper.version=3.8.0"));
    assert!(four_letter(addr, "mntr").starts_with("zk_version\t3.8.0"));
    let mut c = Client::connect(addr);
    c.call(&get("/zookeeper", true));
    assert_eq!(
        four_letter(addr, "wchs"),
        "1 connections watching 1 paths\nTotal watches:1\n"
    );
    assert!(four_letter(addr, "cons").contains(&format!("sid={:#x}", c.session_id)));
    assert!(four_letter(addr, "wchc").contains("\t/zookeeper\n"));

    let (_keeper, strict) = crate::client::server_with(Default::default());
    assert_eq!(
        four_letter(strict.local_addr(), "ruok"),
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert!(four_letter(strict.local_addr(), "srvr").contains("Zxid: 0x"));
}

#[test]
fn set_watches_after_reconnect_catches_up_before_its_reply() {
    // Reference: docs/zookeeper-semantics.md D.6, J.10 — changed nodes notify at once (before the
    // SetWatches reply, which echoes the xid); unchanged ones re-register.
    let (_keeper, server) = server();
    let addr = server.local_addr();
    let mut a = Client::connect(addr);
    for p in ["/sw", "/sw/data", "/sw/same", "/sw/kids"] {
        a.call(&create(CreateKind::Create, p, Some(b""), 0));
    }
    let seen_zxid = server_zxid(&mut a);
    drop(a);

    let mut other = Client::connect(addr);
    other.call(&set("/sw/data", b"changed", -1));
    other.call(&create(CreateKind::Create, "/sw/kids/k", None, 0));
    other.call(&create(CreateKind::Create, "/sw/born", None, 0));

    let mut b = Client::connect(addr);
    let xid = b.send(&Request::SetWatches {
        relative_zxid: seen_zxid,
        data_watches: vec!["/sw/data".into(), "/sw/same".into(), "/sw/gone".into()],
        exist_watches: vec!["/sw/born".into(), "/sw/unborn".into()],
        child_watches: vec!["/sw/kids".into()],
    });
    let (h, _) = b.reply(opcode::SET_WATCHES);
    assert_eq!((h.xid, h.err), (xid, 0));
    let mut got: Vec<(i32, String)> = b.events.drain(..).map(|e| (e.event_type, e.path)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            (1, "/sw/born".to_string()),
            (2, "/sw/gone".to_string()),
            (3, "/sw/data".to_string()),
            (4, "/sw/kids".to_string())
        ]
    );
    // The unchanged and missing ones were registered.
    other.call(&set("/sw/same", b"now", -1));
    other.call(&create(CreateKind::Create, "/sw/unborn", None, 0));
    b.call(&Request::Ping);
    let got: Vec<(i32, &str)> = b
        .events
        .iter()
        .map(|e| (e.event_type, e.path.as_str()))
        .collect();
    assert_eq!(got, [(3, "/sw/same"), (1, "/sw/unborn")]);
}

#[test]
fn super_digest_bypasses_acls() {
    // Reference: docs/zookeeper-semantics.md G.2, G.3 (super via superDigest).
    use innkeeper::{digest_id, Id, Perms};
    let keeper = crate::client::keeper_builder()
        .super_digest(digest_id("root", "pw"))
        .build()
        .unwrap();
    let (_keeper, server) = crate::client::server_on(keeper, Default::default());
    let mut owner = Client::connect(server.local_addr());
    owner.call(&Request::Auth {
        auth_type: 0,
        scheme: "digest".into(),
        auth: b"alice:a".to_vec(),
    });
    let (h, _) = owner.call(&Request::Create(CreateRequest {
        kind: CreateKind::Create,
        path: "/private".into(),
        data: Some(b"s".to_vec()),
        acl: vec![Acl::new(Perms::ALL, Id::new("auth", ""))],
        flags: 0,
    }));
    assert_eq!(h.err, 0);
    let mut other = Client::connect(server.local_addr());
    assert_eq!(other.err(&get("/private", false)), -102, "NoAuth");
    other.call(&Request::Auth {
        auth_type: 0,
        scheme: "digest".into(),
        auth: b"root:pw".to_vec(),
    });
    assert_eq!(other.err(&get("/private", false)), 0);
}

#[test]
fn multi_read_acl_ops_and_ttl_with_extended_types() {
    // Reference: docs/zookeeper-semantics.md E.4 (multiRead: per-op results, no atomicity), G.4, A.3.
    let keeper = crate::client::keeper_builder()
        .extended_types(true)
        .build()
        .unwrap();
    let (_keeper, server) = crate::client::server_on(keeper, Default::default());
    let mut c = Client::connect(server.local_addr());
    c.call(&create(CreateKind::Create, "/r", Some(b"data"), 0));
    c.call(&create(CreateKind::Create, "/r/kid", None, 0));
    let (h, r) = c.call(&Request::MultiRead(vec![
        innkeeper::proto::ReadOp::GetData(GetDataRequest {
            path: "/r".into(),
            watch: false,
        }),
        innkeeper::proto::ReadOp::GetChildren(GetChildrenRequest {
            path: "/missing".into(),
            watch: false,
        }),
        innkeeper::proto::ReadOp::GetChildren(GetChildrenRequest {
            path: "/r".into(),
            watch: false,
        }),
    ]));
    assert_eq!(h.err, 0);
    let Some(Response::MultiRead(results)) = r else {
        panic!("{r:?}")
    };
    use innkeeper::proto::ReadResult;
    assert!(matches!(&results[0], ReadResult::GetData { data: Some(d), .. } if d == b"data"));
    assert_eq!(results[1], ReadResult::Error { err: -101 });
    assert_eq!(
        results[2],
        ReadResult::GetChildren {
            children: vec!["kid".into()]
        }
    );

    let (_, r) = c.call(&Request::GetAcl { path: "/r".into() });
    let Some(Response::GetAcl { acl, stat }) = r else {
        panic!("{r:?}")
    };
    assert_eq!((acl, stat.aversion), (Acl::open_unsafe(), 0));
    let read_only = vec![Acl::new(innkeeper::Perms::READ, innkeeper::Id::anyone())];
    let (_, r) = c.call(&Request::SetAcl {
        path: "/r".into(),
        acl: read_only,
        version: 0,
    });
    assert!(matches!(r, Some(Response::SetAcl { stat }) if stat.aversion == 1));
    assert_eq!(
        c.err(&set("/r", b"x", -1)),
        -102,
        "NoAuth after the ACL change"
    );

    // With extended types a TTL node is created (createTTL answers create2's shape).
    let (h, r) = c.call(&create(CreateKind::Ttl { ttl: 60_000 }, "/ttl", None, 5));
    assert_eq!(h.err, 0);
    assert!(
        matches!(r, Some(Response::Create2 { ref path, stat }) if path == "/ttl" && stat.ephemeral_owner == 0)
    );
    assert_eq!(
        c.err(&create(CreateKind::Ttl { ttl: 0 }, "/ttl0", None, 5)),
        -8
    );
    assert_eq!(
        c.err(&create(CreateKind::Ttl { ttl: 10 }, "/ttlp", None, 0)),
        -8
    );
    assert_eq!(
        c.err(&Request::Check(CheckVersionRequest {
            path: "/r".into(),
            version: 0
        })),
        0
    );
}

#[test]
fn a_session_the_store_cannot_write_closes_the_connection_without_an_answer() {
    // While writes fail (a full disk), a new connection must not read
    // "timeout 0, session 0", which clients take for an expired session:
    // the server closes it and the client retries.
    let dir = tempfile::tempdir().unwrap();
    let keeper = crate::client::keeper_builder()
        .store_faults(innkeeper::StoreFaults {
            fail_before_write: Some(1),
            ..Default::default()
        })
        .open(dir.path())
        .unwrap();
    let (keeper, server) = crate::client::server_on(keeper, Default::default());
    let mut refused = Client::raw(server.local_addr());
    let answer = refused.handshake(&innkeeper::proto::ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    });
    assert_eq!(answer, None, "no ConnectResponse");
    assert!(refused.closed_by_server());
    // Once the disk takes writes again, the retry gets a session.
    let retried = Client::connect(server.local_addr());
    assert_ne!(retried.session_id, 0);
    drop(keeper);
}

/// Sends one request frame built by hand (`opcode`, then `body`) and
/// returns the reply header's error code.
fn raw_call(c: &mut Client, opcode: i32, body: &[u8]) -> (i32, Option<Response>) {
    let xid: i32 = 4242;
    let mut frame = Vec::new();
    frame.extend_from_slice(&((8 + body.len()) as i32).to_be_bytes());
    frame.extend_from_slice(&xid.to_be_bytes());
    frame.extend_from_slice(&opcode.to_be_bytes());
    frame.extend_from_slice(body);
    c.send_bytes(&frame);
    let (header, response) = c.reply(opcode);
    assert_eq!(header.xid, xid);
    (header.err, response)
}

/// A jute `ustring` of raw bytes (`None`: null).
fn jute_string(bytes: Option<&[u8]>) -> Vec<u8> {
    match bytes {
        None => (-1i32).to_be_bytes().to_vec(),
        Some(b) => [&(b.len() as i32).to_be_bytes()[..], b].concat(),
    }
}

#[test]
fn odd_paths_and_internal_ops_are_answered_as_zookeeper_answers_them() {
    // Recorded from Apache ZooKeeper 3.8.0 by tests/data/zk38/wire_small.py
    // (its output is tests/data/zk38/wire_small.txt); every answer keeps
    // the connection.
    let (_keeper, server) = server();
    let mut c = Client::connect(server.local_addr());
    let open_acl = [
        &1i32.to_be_bytes()[..],
        &31i32.to_be_bytes(),
        &jute_string(Some(b"world")),
        &jute_string(Some(b"anyone")),
    ]
    .concat();
    let root_children = match c.call(&Request::GetChildren(GetChildrenRequest {
        path: "/".into(),
        watch: false,
    })) {
        (_, Some(Response::GetChildren { children })) => children,
        other => panic!("{other:?}"),
    };
    // "" reads as the root (ZooKeeper's internal name for it).
    let empty = jute_string(Some(b""));
    assert_eq!(raw_call(&mut c, 4, &[&empty[..], &[0]].concat()).0, 0);
    match raw_call(&mut c, 3, &[&empty[..], &[0]].concat()) {
        (0, Some(Response::Exists { .. })) => {}
        other => panic!("exists(\"\"): {other:?}"),
    }
    match raw_call(&mut c, 8, &[&empty[..], &[0]].concat()) {
        (0, Some(Response::GetChildren { children })) => assert_eq!(children, root_children),
        other => panic!("getChildren(\"\"): {other:?}"),
    }
    assert_eq!(raw_call(&mut c, 6, &empty).0, 0, "getACL(\"\")");
    // A null path: MarshallingError (−5).
    let null = jute_string(None);
    for (opcode, body) in [
        (4, [&null[..], &[0]].concat()),
        (3, [&null[..], &[0]].concat()),
        (8, [&null[..], &[0]].concat()),
        (12, [&null[..], &[0]].concat()),
        (6, null.clone()),
        (2, [&null[..], &(-1i32).to_be_bytes()].concat()),
        (104, null.clone()),
        (
            1,
            [
                &null[..],
                &jute_string(Some(b"")),
                &open_acl,
                &0i32.to_be_bytes(),
            ]
            .concat(),
        ),
    ] {
        assert_eq!(raw_call(&mut c, opcode, &body).0, -5, "op {opcode}");
    }
    // Invalid UTF-8 reads as Java reads it (U+FFFD): no such node for a
    // read, an invalid path for a write.
    let bad = jute_string(Some(b"/\xff\xfe"));
    assert_eq!(raw_call(&mut c, 4, &[&bad[..], &[0]].concat()).0, -101);
    let create_bad = [
        &jute_string(Some(b"/h5\xff"))[..],
        &jute_string(Some(b"")),
        &open_acl,
        &0i32.to_be_bytes(),
    ]
    .concat();
    assert_eq!(raw_call(&mut c, 1, &create_bad).0, -8);
    // deleteContainer (20), ZooKeeper's internal op: BadArguments.
    assert_eq!(
        raw_call(&mut c, 20, &jute_string(Some(b"/zookeeper"))).0,
        -8
    );
    // The connection is still in service.
    assert_eq!(c.err(&get("/", false)), 0);
}
