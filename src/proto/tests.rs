//! Tests across the proto module: round trips of every request and reply,
//! the exact bytes docs/zookeeper-semantics.md gives, truncation, and a seeded property
//! test over mutated frames (the same property as the fuzz target).

use super::*;
use crate::node::{Acl, Id, Perms, Stat};

/// Bytes from hex digits; whitespace is ignored.
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// The frame body: everything after the 4-byte length prefix, which must match.
#[track_caller]
fn body(frame: &[u8]) -> &[u8] {
    let (prefix, body) = frame.split_at(4);
    assert_eq!(
        usize::try_from(i32::from_be_bytes(prefix.try_into().unwrap())),
        Ok(body.len())
    );
    body
}

fn stat(seed: i64) -> Stat {
    Stat {
        czxid: seed,
        mzxid: seed + 1,
        ctime: 1_700_000_000_000 + seed,
        mtime: 1_700_000_000_001 + seed,
        version: 2,
        cversion: -1,
        aversion: 3,
        ephemeral_owner: 0x0100_000a_1b2c_0000,
        data_length: 5,
        num_children: 6,
        pzxid: seed + 2,
    }
}

fn acl() -> Vec<Acl> {
    vec![
        Acl::new(Perms::ALL, Id::anyone()),
        Acl::new(Perms::READ | Perms::ADMIN, Id::new("auth", "")),
    ]
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn create(kind: CreateKind, path: &str, data: Option<&[u8]>, flags: i32) -> CreateRequest {
    CreateRequest {
        kind,
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl: acl(),
        flags,
    }
}

/// One or more requests of every opcode a client sends (docs/zookeeper-semantics.md H.6).
fn sample_requests() -> Vec<Request> {
    let get = |path: &str, watch| GetDataRequest {
        path: path.into(),
        watch,
    };
    let children = |path: &str, watch| GetChildrenRequest {
        path: path.into(),
        watch,
    };
    vec![
        Request::Create(create(CreateKind::Create, "/a", Some(b"data"), 0)),
        Request::Create(create(CreateKind::Create, "/null-data", None, 3)),
        Request::Create(create(CreateKind::Create2, "/b", Some(b""), 1)),
        Request::Create(create(CreateKind::Container, "/c", None, 4)),
        Request::Create(create(CreateKind::Ttl { ttl: 60_000 }, "/t", Some(b"x"), 5)),
        Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
        Request::Exists {
            path: "/missing".into(),
            watch: true,
        },
        Request::GetData(get("/a", false)),
        Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: None,
            version: 3,
        }),
        Request::GetAcl { path: "/a".into() },
        Request::SetAcl {
            path: "/a".into(),
            acl: acl(),
            version: 0,
        },
        Request::GetChildren(children("/", true)),
        Request::Sync { path: "/a".into() },
        Request::Ping,
        Request::GetChildren2(children("/zookeeper", false)),
        Request::Check(CheckVersionRequest {
            path: "/a".into(),
            version: 7,
        }),
        Request::Multi(Vec::new()),
        Request::Multi(vec![
            MultiOp::Create(create(CreateKind::Create, "/m", Some(b"1"), 2)),
            MultiOp::Create(create(CreateKind::Create2, "/m2", None, 0)),
            MultiOp::Create(create(CreateKind::Container, "/m3", None, 4)),
            MultiOp::Create(create(CreateKind::Ttl { ttl: 1 }, "/m4", None, 6)),
            MultiOp::Delete(DeleteRequest {
                path: "/d".into(),
                version: 0,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/s".into(),
                data: Some(b"v".to_vec()),
                version: -1,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/c".into(),
                version: 1,
            }),
        ]),
        Request::Reconfig {
            joining_servers: Some("server.2=h:2888:3888".into()),
            leaving_servers: None,
            new_members: Some(String::new()),
            cur_config_id: -1,
        },
        Request::CheckWatches {
            path: "/a".into(),
            watcher_type: 2,
        },
        Request::RemoveWatches {
            path: "/a".into(),
            watcher_type: 3,
        },
        Request::MultiRead(vec![
            ReadOp::GetData(get("/a", true)),
            ReadOp::GetChildren(children("/", false)),
        ]),
        Request::Auth {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"user:password".to_vec(),
        },
        Request::SetWatches {
            relative_zxid: 42,
            data_watches: strings(&["/a", "/b"]),
            exist_watches: strings(&["/gone"]),
            child_watches: Vec::new(),
        },
        Request::SetWatches2 {
            relative_zxid: 43,
            data_watches: strings(&["/a"]),
            exist_watches: Vec::new(),
            child_watches: strings(&["/"]),
            persistent_watches: strings(&["/p"]),
            persistent_recursive_watches: strings(&["/r", "/r2"]),
        },
        Request::Sasl {
            token: vec![1, 2, 3],
        },
        Request::GetEphemerals {
            prefix_path: "/".into(),
        },
        Request::GetAllChildrenNumber { path: "/a".into() },
        Request::AddWatch {
            path: "/w".into(),
            mode: 1,
        },
        Request::WhoAmI,
        Request::CloseSession,
    ]
}

/// Replies of every layout, each with the opcode of the request it answers.
fn sample_responses() -> Vec<(i32, Response)> {
    use opcode::*;
    vec![
        (
            CREATE,
            Response::Create {
                path: "/a0000000001".into(),
            },
        ),
        (
            CREATE2,
            Response::Create2 {
                path: "/b".into(),
                stat: stat(1),
            },
        ),
        (
            CREATE_CONTAINER,
            Response::Create2 {
                path: "/c".into(),
                stat: stat(2),
            },
        ),
        (
            CREATE_TTL,
            Response::Create2 {
                path: "/t".into(),
                stat: stat(3),
            },
        ),
        (DELETE, Response::Empty),
        (EXISTS, Response::Exists { stat: stat(4) }),
        (
            GET_DATA,
            Response::GetData {
                data: Some(b"hello".to_vec()),
                stat: stat(5),
            },
        ),
        (
            GET_DATA,
            Response::GetData {
                data: None,
                stat: stat(6),
            },
        ),
        (SET_DATA, Response::SetData { stat: stat(7) }),
        (
            GET_ACL,
            Response::GetAcl {
                acl: acl(),
                stat: stat(8),
            },
        ),
        (SET_ACL, Response::SetAcl { stat: stat(9) }),
        (
            GET_CHILDREN,
            Response::GetChildren {
                children: strings(&["x", "y"]),
            },
        ),
        (SYNC, Response::Sync { path: "/a".into() }),
        (PING, Response::Empty),
        (
            GET_CHILDREN2,
            Response::GetChildren2 {
                children: Vec::new(),
                stat: stat(10),
            },
        ),
        (CHECK, Response::Empty),
        (MULTI, Response::Multi(Vec::new())),
        (
            MULTI,
            Response::Multi(vec![
                MultiResult::Create {
                    path: "/m0000000000".into(),
                },
                MultiResult::Create2 {
                    path: "/m2".into(),
                    stat: stat(11),
                },
                MultiResult::Delete,
                MultiResult::SetData { stat: stat(12) },
                MultiResult::Check,
            ]),
        ),
        (
            MULTI,
            Response::Multi(vec![
                MultiResult::Error { err: 0 },
                MultiResult::Error { err: -101 },
                MultiResult::Error { err: -2 },
            ]),
        ),
        (
            RECONFIG,
            Response::GetData {
                data: Some(b"server.1=h:2888:3888".to_vec()),
                stat: stat(13),
            },
        ),
        (CHECK_WATCHES, Response::Empty),
        (REMOVE_WATCHES, Response::Empty),
        (
            MULTI_READ,
            Response::MultiRead(vec![
                ReadResult::GetData {
                    data: None,
                    stat: stat(14),
                },
                ReadResult::GetChildren {
                    children: strings(&["k"]),
                },
                ReadResult::Error { err: -102 },
            ]),
        ),
        (AUTH, Response::Empty),
        (SET_WATCHES, Response::Empty),
        (SASL, Response::Sasl { token: vec![9; 20] }),
        (
            GET_EPHEMERALS,
            Response::GetEphemerals {
                ephemerals: strings(&["/e1", "/x/e2"]),
            },
        ),
        (
            GET_ALL_CHILDREN_NUMBER,
            Response::GetAllChildrenNumber { total_number: 12 },
        ),
        (SET_WATCHES2, Response::Empty),
        (ADD_WATCH, Response::AddWatch),
        (
            WHO_AM_I,
            Response::WhoAmI {
                client_info: vec![
                    ClientInfo {
                        auth_scheme: "ip".into(),
                        user: "127.0.0.1".into(),
                    },
                    ClientInfo {
                        auth_scheme: "digest".into(),
                        user: "user".into(),
                    },
                ],
            },
        ),
        (CLOSE_SESSION, Response::Empty),
    ]
}

fn sample_connect_request(read_only: Option<bool>) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only,
    }
}

fn sample_connect_response(read_only: Option<bool>) -> ConnectResponse {
    ConnectResponse {
        protocol_version: 0,
        timeout_ms: 30_000,
        session_id: 0x0100_000a_1b2c_0000,
        passwd: (1..=16).collect(),
        read_only,
    }
}

fn reply_header(xid: i32) -> ReplyHeader {
    ReplyHeader {
        xid,
        zxid: 0x1_0000_0005,
        err: 0,
    }
}

#[test]
fn every_request_round_trips() {
    let mut opcodes: Vec<i32> = Vec::new();
    for request in sample_requests() {
        let frame = encode_request(7, &request);
        let decoded = decode_request(body(&frame));
        let header = RequestHeader {
            xid: 7,
            opcode: request.opcode(),
        };
        assert_eq!(decoded, Ok((header, request.clone())), "{request:?}");
        assert_eq!(decode_request_header(body(&frame)), Ok(header));
        opcodes.push(request.opcode());
    }
    // Every client opcode of H.6 is covered: 1–9, 11–19, 21, 22, 100–107, −11.
    opcodes.sort_unstable();
    opcodes.dedup();
    let mut expected: Vec<i32> = (1..=9)
        .chain(11..=19)
        .chain([21, 22])
        .chain(100..=107)
        .collect();
    expected.insert(0, opcode::CLOSE_SESSION);
    assert_eq!(opcodes, expected);
}

#[test]
fn every_reply_round_trips() {
    for (op, response) in sample_responses() {
        let header = reply_header(5);
        let frame = encode_reply(&header, Some(&response));
        assert_eq!(
            decode_reply(op, body(&frame)),
            Ok((header, Some(response.clone()))),
            "{op}"
        );
    }
}

#[test]
fn ping_and_simple_requests_have_exact_bytes() {
    // Reference: docs/zookeeper-semantics.md H.5 (ping: xid −2, opcode 11, no body).
    assert_eq!(
        encode_request(xid::PING, &Request::Ping),
        hex("00000008 fffffffe 0000000b")
    );
    let frame = encode_request(
        1,
        &Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
    );
    assert_eq!(
        frame,
        hex("00000012 00000001 00000002 00000002 2f61 ffffffff")
    );
    let frame = encode_request(
        xid::AUTH,
        &Request::Auth {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"u:p".to_vec(),
        },
    );
    assert_eq!(
        frame,
        hex("0000001d fffffffc 00000064 00000000 00000006 646967657374 00000003 753a70")
    );
}

#[test]
fn connect_request_matches_the_reference_example() {
    // Reference: docs/zookeeper-semantics.md H.4, new session, 30 000 ms: 4 + 45 bytes.
    let bytes = hex(
        "0000002d 00000000 0000000000000000 00007530 0000000000000000 00000010
         00000000000000000000000000000000 00",
    );
    let request = sample_connect_request(Some(false));
    assert_eq!(encode_connect_request(&request), bytes);
    assert_eq!(decode_connect_request(body(&bytes)), Ok(request));
}

#[test]
fn connect_response_matches_the_reference_example() {
    // Reference: docs/zookeeper-semantics.md H.4: 4 + 37 bytes.
    let bytes = hex("00000025 00000000 00007530 0100000a1b2c0000 00000010
         0102030405060708090a0b0c0d0e0f10 00");
    let response = sample_connect_response(Some(false));
    assert_eq!(encode_connect_response(&response), bytes);
    assert_eq!(decode_connect_response(body(&bytes)), Ok(response));
}

#[test]
fn connect_read_only_byte_is_optional() {
    // Reference: docs/zookeeper-semantics.md H.4, J.13: old clients omit the byte; it is written only when present.
    for read_only in [None, Some(false), Some(true)] {
        let frame = encode_connect_request(&sample_connect_request(read_only));
        assert_eq!(frame.len(), if read_only.is_some() { 49 } else { 48 });
        assert_eq!(
            decode_connect_request(body(&frame)).unwrap().read_only,
            read_only
        );
        let frame = encode_connect_response(&sample_connect_response(read_only));
        assert_eq!(frame.len(), if read_only.is_some() { 41 } else { 40 });
        assert_eq!(
            decode_connect_response(body(&frame)).unwrap().read_only,
            read_only
        );
    }
    // A non-zero byte reads as true; bytes after it are ignored.
    let mut frame = encode_connect_request(&sample_connect_request(None));
    frame.extend_from_slice(&[5, 0xaa]);
    assert_eq!(
        decode_connect_request(&frame[4..]).unwrap().read_only,
        Some(true)
    );
}

#[test]
fn multi_lists_end_with_the_terminator() {
    // Reference: docs/zookeeper-semantics.md H.7: `ffffffff 01 ffffffff`, for requests and replies alike.
    let frame = encode_request(3, &Request::Multi(Vec::new()));
    assert_eq!(frame, hex("00000011 00000003 0000000e ffffffff01ffffffff"));
    let frame = encode_request(3, &Request::MultiRead(Vec::new()));
    assert_eq!(frame, hex("00000011 00000003 00000016 ffffffff01ffffffff"));
    let frame = encode_reply(
        &ReplyHeader {
            xid: 3,
            zxid: 9,
            err: 0,
        },
        Some(&Response::Multi(Vec::new())),
    );
    assert_eq!(
        frame,
        hex("00000019 00000003 0000000000000009 00000000 ffffffff01ffffffff")
    );
}

#[test]
fn multi_ops_carry_their_type_and_err_minus_one() {
    // Reference: docs/zookeeper-semantics.md H.7: MultiHeader{type = op, done = false, err = -1} + the op's record.
    let op = MultiOp::Check(CheckVersionRequest {
        path: "/a".into(),
        version: 2,
    });
    let frame = encode_request(1, &Request::Multi(vec![op]));
    assert_eq!(
        body(&frame),
        hex("00000001 0000000e 0000000d 00 ffffffff 00000002 2f61 00000002 ffffffff01ffffffff")
    );
}

#[test]
fn failed_multi_results_have_the_reference_shape() {
    // Reference: docs/zookeeper-semantics.md E.3, J.4: header err 0; ops before the failing one → 0, the
    // failing op → its code, ops after → −2; every result is type −1 +
    // ErrorResponse{err}, then the terminator.
    let results = vec![
        MultiResult::Error { err: 0 },
        MultiResult::Error { err: -110 },
        MultiResult::Error { err: -2 },
    ];
    let header = ReplyHeader {
        xid: 4,
        zxid: 0x20,
        err: 0,
    };
    let frame = encode_reply(&header, Some(&Response::Multi(results.clone())));
    let expected = hex("00000004 0000000000000020 00000000
         ffffffff 00 00000000 00000000
         ffffffff 00 ffffff92 ffffff92
         ffffffff 00 fffffffe fffffffe
         ffffffff 01 ffffffff");
    assert_eq!(body(&frame), expected);
    assert_eq!(
        decode_reply(opcode::MULTI, &expected),
        Ok((header, Some(Response::Multi(results))))
    );
}

#[test]
fn multi_success_result_types_follow_the_reference() {
    // Reference: docs/zookeeper-semantics.md E.3: create → 1 + path; create2/container/TTL → 15 + path + stat;
    // delete 2; setData 5 + stat; check 13.
    let results = vec![
        MultiResult::Create { path: "/a".into() },
        MultiResult::Delete,
        MultiResult::Check,
    ];
    let frame = encode_reply(&reply_header(1), Some(&Response::Multi(results)));
    let tail = body(&frame).get(16..).unwrap().to_vec();
    assert_eq!(
        tail,
        hex("00000001 00 00000000 00000002 2f61  00000002 00 00000000  0000000d 00 00000000  ffffffff01ffffffff")
    );
}

#[test]
fn multi_kinds_cannot_be_mixed() {
    // Reference: docs/zookeeper-semantics.md E.1, E.2, H.7: a sub-op outside the multi's kind is a
    // deserialization failure (the server answers MarshallingError).
    let read_in_write = frame_with_ops(
        opcode::MULTI,
        &[(opcode::GET_DATA, &hex("00000002 2f61 00"))],
    );
    let write_in_read = frame_with_ops(
        opcode::MULTI_READ,
        &[(opcode::DELETE, &hex("00000002 2f61 ffffffff"))],
    );
    let unknown = frame_with_ops(opcode::MULTI, &[(opcode::SYNC, &hex("00000002 2f61"))]);
    for frame in [read_in_write, write_in_read, unknown] {
        let err = decode_request(&frame).unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::Malformed);
        assert_eq!(
            (err.offset(), err.reason()),
            (8, "operation type not allowed here")
        );
    }
}

#[test]
fn multi_create_flags_must_name_a_mode() {
    // Reference: docs/zookeeper-semantics.md A.3: a bad flag inside a multi makes the whole request undeserializable,
    // while a single create with a bad flag decodes (the engine answers BadArguments).
    let mut bad = create(CreateKind::Create, "/a", None, 7);
    let frame = encode_request(1, &Request::Multi(vec![MultiOp::Create(bad.clone())]));
    let err = decode_request(body(&frame)).unwrap_err();
    assert_eq!(
        (err.offset(), err.reason()),
        (17, "invalid create flags in multi")
    );
    let frame = encode_request(1, &Request::Create(bad.clone()));
    assert!(decode_request(body(&frame)).is_ok());
    bad.flags = 6;
    let frame = encode_request(1, &Request::Multi(vec![MultiOp::Create(bad)]));
    assert!(decode_request(body(&frame)).is_ok());
}

/// A multi request body built by hand: header, then `(type, record)` per op, then the terminator.
fn frame_with_ops(multi_opcode: i32, ops: &[(i32, &[u8])]) -> Vec<u8> {
    let mut bytes = [1i32.to_be_bytes(), multi_opcode.to_be_bytes()].concat();
    for (op_type, record) in ops {
        bytes.extend_from_slice(&op_type.to_be_bytes());
        bytes.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff]);
        bytes.extend_from_slice(record);
    }
    bytes.extend_from_slice(&hex("ffffffff01ffffffff"));
    bytes
}

#[test]
fn unknown_opcodes_are_told_apart_from_malformed_bodies() {
    // Reference: docs/zookeeper-semantics.md H.9: unknown opcode → −6 and close; malformed body → −5.
    for op in [
        0,
        10,
        opcode::DELETE_CONTAINER,
        23,
        99,
        108,
        opcode::CREATE_SESSION,
        -1,
        i32::MIN,
    ] {
        let bytes = [5i32.to_be_bytes(), op.to_be_bytes()].concat();
        let err = decode_request(&bytes).unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::UnknownOpcode(op), "{op}");
        assert!(err.is_unknown_opcode());
        assert_eq!(err.offset(), 4);
        assert_eq!(
            decode_request_header(&bytes),
            Ok(RequestHeader { xid: 5, opcode: op })
        );
    }
    let err = decode_request(&hex("00000005 00000004 00000009 2f61")).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::Malformed);
    assert_eq!(
        err.to_string(),
        "length exceeds the remaining input at byte 8"
    );
    let err = decode_request(&hex("00000005 000000")).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::Malformed);
    assert!(decode_request_header(&hex("00000005 000000")).is_err());
}

#[test]
fn error_replies_are_header_only() {
    // Reference: docs/zookeeper-semantics.md F.1: an error reply is the bare 16-byte header, multi included.
    let header = ReplyHeader {
        xid: 9,
        zxid: 0x30,
        err: -101,
    };
    let frame = encode_reply(&header, Some(&Response::Exists { stat: stat(1) }));
    assert_eq!(frame, hex("00000010 00000009 0000000000000030 ffffff9b"));
    assert_eq!(
        decode_reply(opcode::EXISTS, body(&frame)),
        Ok((header, None))
    );
    let header = ReplyHeader {
        xid: 9,
        zxid: 0x30,
        err: -5,
    };
    let frame = encode_reply(&header, None);
    assert_eq!(
        decode_reply(opcode::MULTI, body(&frame)),
        Ok((header, None))
    );
    assert_eq!(decode_reply_header(body(&frame)), Ok(header));
}

#[test]
fn add_watch_reply_is_error_response_zero() {
    // Reference: docs/zookeeper-semantics.md H.6: addWatch answers ErrorResponse{err = 0}, 4 bytes.
    let frame = encode_reply(&reply_header(2), Some(&Response::AddWatch));
    assert_eq!(body(&frame).get(16..), Some(&[0u8, 0, 0, 0][..]));
}

#[test]
fn reply_decoding_needs_a_known_opcode() {
    let frame = encode_reply(&reply_header(2), Some(&Response::Empty));
    let err = decode_reply(10, body(&frame)).unwrap_err();
    assert_eq!(err.kind(), DecodeErrorKind::UnknownOpcode(10));
}

#[test]
fn null_and_empty_data_stay_distinct() {
    // Reference: docs/zookeeper-semantics.md H.2, J.14.
    for data in [None, Some(Vec::new()), Some(b"x".to_vec())] {
        let request = Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: data.clone(),
            version: -1,
        });
        let frame = encode_request(1, &request);
        assert_eq!(decode_request(body(&frame)).unwrap().1, request);
        let response = Response::GetData {
            data,
            stat: stat(0),
        };
        let frame = encode_reply(&reply_header(1), Some(&response));
        assert_eq!(
            decode_reply(opcode::GET_DATA, body(&frame)).unwrap().1,
            Some(response)
        );
    }
}

#[test]
fn null_strings_from_kazoo_read_as_empty() {
    // Reference: docs/zookeeper-semantics.md H.2: kazoo encodes an empty string as −1.
    let bytes = hex("00000001 00000067 ffffffff");
    assert_eq!(
        decode_request(&bytes).unwrap().1,
        Request::GetEphemerals {
            prefix_path: String::new()
        }
    );
    let frame = encode_request(
        1,
        &Request::GetEphemerals {
            prefix_path: String::new(),
        },
    );
    assert_eq!(body(&frame), hex("00000001 00000067 00000000"));
}

#[test]
fn notifications_round_trip() {
    // Reference: docs/zookeeper-semantics.md D.7: ReplyHeader{-1, zxid, 0} + WatcherEvent{type, state, path}.
    let event = WatcherEvent {
        event_type: 4,
        state: 3,
        path: "/a".into(),
    };
    let frame = encode_notification(-1, &event);
    assert_eq!(
        frame,
        hex("0000001e ffffffff ffffffffffffffff 00000000 00000004 00000003 00000002 2f61")
    );
    assert_eq!(decode_notification(body(&frame)), Ok((-1, event.clone())));
    assert_eq!(
        decode_reply_header(body(&frame)).map(|h| h.xid),
        Ok(xid::NOTIFICATION)
    );
    let not_a_notification = encode_reply(
        &reply_header(1),
        Some(&Response::Sync { path: "/a".into() }),
    );
    assert!(decode_notification(body(&not_a_notification)).is_err());
}

/// Asserts that `decodes` accepts the whole body of `frame` and rejects every strict prefix.
#[track_caller]
fn assert_every_prefix_fails<T>(frame: &[u8], decodes: impl Fn(&[u8]) -> Result<T, DecodeError>) {
    let full = body(frame);
    assert!(
        decodes(full).is_ok(),
        "the whole body must decode: {full:02x?}"
    );
    for cut in 0..full.len() {
        assert!(
            decodes(&full[..cut]).is_err(),
            "prefix of {cut} bytes decoded: {full:02x?}"
        );
    }
}

#[test]
fn every_truncation_fails_without_panicking() {
    for request in sample_requests() {
        assert_every_prefix_fails(&encode_request(1, &request), decode_request);
    }
    for (op, response) in sample_responses() {
        let frame = encode_reply(&reply_header(1), Some(&response));
        assert_every_prefix_fails(&frame, |b| decode_reply(op, b));
    }
    let event = WatcherEvent {
        event_type: 1,
        state: 3,
        path: "/x".into(),
    };
    assert_every_prefix_fails(&encode_notification(7, &event), decode_notification);
    // Without the optional readOnly byte, every strict prefix is incomplete.
    let frame = encode_connect_request(&sample_connect_request(None));
    assert_every_prefix_fails(&frame, decode_connect_request);
    let frame = encode_connect_response(&sample_connect_response(None));
    assert_every_prefix_fails(&frame, decode_connect_response);
}

#[test]
fn huge_counts_in_requests_fail_fast() {
    // A setWatches claiming a billion paths in a 30-byte frame.
    let bytes = hex("00000001 00000065 0000000000000000 3b9aca00 00000000 00000000 000000");
    let err = decode_request(&bytes).unwrap_err();
    assert_eq!(
        (err.offset(), err.reason()),
        (16, "vector count exceeds the remaining input")
    );
    let bytes = hex("00000001 00000004 7fffffff");
    assert_eq!(
        decode_request(&bytes).unwrap_err().reason(),
        "length exceeds the remaining input"
    );
}

/// xorshift64: a tiny seeded generator, so failures reproduce exactly.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// A random edit of `bytes`: overwrite a byte, plant an interesting length,
/// cut, insert, or duplicate a span.
fn mutate(rng: &mut XorShift, bytes: &mut Vec<u8>) {
    let at = rng.below(bytes.len() + 1);
    match rng.below(5) {
        0 => {
            if let Some(b) = bytes.get_mut(at) {
                *b = rng.byte();
            }
        }
        1 => {
            let lengths = [-1i32, -2, 0, 1, 2, 9, 0x7fff_ffff, i32::MIN, 1_000_000_000];
            let value = lengths[rng.below(lengths.len())].to_be_bytes();
            for (i, v) in value.iter().enumerate() {
                if let Some(b) = bytes.get_mut(at + i) {
                    *b = *v;
                }
            }
        }
        2 => bytes.truncate(at),
        3 => {
            let extra: Vec<u8> = (0..rng.below(12)).map(|_| rng.byte()).collect();
            bytes.splice(at..at, extra);
        }
        _ => {
            let end = (at + rng.below(24)).min(bytes.len());
            let span = bytes[at..end].to_vec();
            bytes.splice(at..at, span);
        }
    }
}

/// The property the fuzz target checks: decoding never panics, and whatever
/// decodes re-encodes to bytes that decode to the same value.
fn check_decoders(bytes: &[u8], reply_opcodes: &[i32]) {
    if let Ok((header, request)) = decode_request(bytes) {
        let frame = encode_request(header.xid, &request);
        assert_eq!(
            decode_request(body(&frame)),
            Ok((header, request)),
            "input {bytes:02x?}"
        );
    }
    for &op in reply_opcodes {
        if let Ok((header, response)) = decode_reply(op, bytes) {
            let frame = encode_reply(&header, response.as_ref());
            assert_eq!(
                decode_reply(op, body(&frame)),
                Ok((header, response)),
                "input {bytes:02x?}"
            );
        }
    }
    if let Ok((zxid, event)) = decode_notification(bytes) {
        assert_eq!(
            decode_notification(body(&encode_notification(zxid, &event))),
            Ok((zxid, event))
        );
    }
    if let Ok(request) = decode_connect_request(bytes) {
        assert_eq!(
            decode_connect_request(body(&encode_connect_request(&request))),
            Ok(request)
        );
    }
    if let Ok(response) = decode_connect_response(bytes) {
        assert_eq!(
            decode_connect_response(body(&encode_connect_response(&response))),
            Ok(response)
        );
    }
    let mut split = FrameSplitter::with_max_len(64);
    split.push(bytes);
    while let Ok(Some(frame)) = split.next_frame() {
        assert!(frame.len() <= 64);
    }
}

#[test]
fn mutated_frames_never_panic_and_round_trip() {
    // Seeded, so a failure reproduces; the seed is in the assertion message.
    const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rng = XorShift(SEED);
    let request_opcodes: Vec<i32> = sample_requests().iter().map(Request::opcode).collect();
    let reply_opcodes: Vec<i32> = sample_responses().iter().map(|(op, _)| *op).collect();
    let mut valid: Vec<Vec<u8>> = sample_requests()
        .iter()
        .map(|r| encode_request(1, r))
        .collect();
    valid.extend(
        sample_responses()
            .iter()
            .map(|(_, r)| encode_reply(&reply_header(1), Some(r))),
    );
    valid.push(encode_connect_request(&sample_connect_request(Some(true))));
    valid.push(encode_connect_response(&sample_connect_response(Some(
        false,
    ))));
    valid.push(encode_notification(
        -1,
        &WatcherEvent {
            event_type: 2,
            state: 3,
            path: "/n".into(),
        },
    ));

    let mut decoded_requests = 0;
    for round in 0..6000 {
        let mut bytes = if round % 10 == 9 {
            // Pure noise behind a known opcode.
            let op = request_opcodes[rng.below(request_opcodes.len())];
            let mut b = [1i32.to_be_bytes(), op.to_be_bytes()].concat();
            b.extend((0..rng.below(64)).map(|_| rng.byte()));
            b
        } else {
            valid[rng.below(valid.len())][4..].to_vec()
        };
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut bytes);
        }
        let result = std::panic::catch_unwind(|| check_decoders(&bytes, &reply_opcodes));
        assert!(
            result.is_ok(),
            "seed {SEED:#x}, round {round}: input {bytes:02x?}"
        );
        decoded_requests += usize::from(decode_request(&bytes).is_ok());
    }
    // The mutations must leave enough frames valid to exercise the round trip.
    assert!(
        decoded_requests > 500,
        "only {decoded_requests} mutated requests decoded"
    );
}
