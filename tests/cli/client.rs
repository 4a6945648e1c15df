//! The data commands against `innkeeper serve`: what they print, what they
//! change, and how they fail.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cli, dump_nodes, fails, Server, BIN};

#[test]
fn create_ls_get_and_stat_print_what_zkcli_would() {
    let server = Server::start(&["--in-memory"]);
    assert_eq!(server.ok(&["create", "/app", "hello"]), "/app\n");
    assert_eq!(server.ok(&["create", "/app/b", "2"]), "/app/b\n");
    assert_eq!(server.ok(&["create", "/app/a"]), "/app/a\n");
    assert_eq!(
        server.ok(&["create", "/app/job-", "x", "--sequential"]),
        "/app/job-0000000002\n"
    );
    server.ok(&["create", "/app/a/deep", "d"]);

    assert_eq!(server.ok(&["ls", "/app"]), "a\nb\njob-0000000002\n");
    assert_eq!(server.ok(&["ls", "/"]), "app\nzookeeper\n");
    assert_eq!(
        server.ok(&["ls", "-R", "/app"]),
        "/app/a\n/app/a/deep\n/app/b\n/app/job-0000000002\n"
    );
    assert_eq!(server.ok(&["get", "/app"]), "hello");

    let stat = server.ok(&["stat", "/app"]);
    let names: Vec<&str> = stat
        .lines()
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cZxid",
            "ctime",
            "mZxid",
            "mtime",
            "pZxid",
            "cversion",
            "dataVersion",
            "aclVersion",
            "ephemeralOwner",
            "dataLength",
            "numChildren"
        ]
    );
    assert!(stat.contains("dataLength = 5\n"), "{stat}");
    assert!(stat.contains("numChildren = 3\n"), "{stat}");
    assert!(stat.contains("ephemeralOwner = 0x0\n"), "{stat}");

    let tree = server.ok(&["tree", "/app"]);
    assert_eq!(
        tree,
        "/app (5 B)\n  a (0 B)\n    deep (1 B)\n  b (1 B)\n  job-0000000002 (1 B)\n"
    );
}

#[test]
fn data_from_stdin_is_binary_safe() {
    let server = Server::start(&["--in-memory"]);
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, 10, 13]).collect();
    let out = server.run_with_input(&["create", "/bin", "-"], &bytes);
    assert!(out.status.success());
    assert_eq!(server.run(&["get", "/bin"]).stdout, bytes);
    let out = server.run_with_input(&["set", "/bin", "-"], b"\xff\x00");
    assert!(out.status.success());
    assert_eq!(server.run(&["get", "/bin"]).stdout, b"\xff\x00");
}

#[test]
fn set_and_rm_honour_versions() {
    let server = Server::start(&["--in-memory"]);
    server.ok(&["create", "/v", "0"]);
    server.ok(&["set", "/v", "1", "--version", "0"]);
    let line = fails(server.run(&["set", "/v", "2", "--version", "0"]));
    assert_eq!(line, "innkeeper: KeeperErrorCode = BadVersion for /v");
    assert_eq!(server.ok(&["get", "/v"]), "1");

    server.ok(&["create", "/v/c", ""]);
    let line = fails(server.run(&["rm", "/v"]));
    assert_eq!(line, "innkeeper: KeeperErrorCode = NotEmpty for /v");
    let line = fails(server.run(&["rm", "/v", "--recursive", "--version", "7"]));
    assert_eq!(line, "innkeeper: KeeperErrorCode = BadVersion for /v");
    assert_eq!(
        server.ok(&["ls", "/v"]),
        "c\n",
        "a refused rm deletes nothing"
    );
    server.ok(&["rm", "/v", "--recursive", "--version", "1"]);
    assert_eq!(server.ok(&["ls", "/"]), "zookeeper\n");
}

#[test]
fn errors_are_one_line_with_the_code_name_and_path() {
    let server = Server::start(&["--in-memory"]);
    for (args, line) in [
        (
            &["get", "/missing"][..],
            "innkeeper: KeeperErrorCode = NoNode for /missing",
        ),
        (
            &["create", "/a/b"][..],
            "innkeeper: KeeperErrorCode = NoNode for /a/b",
        ),
        (
            &["ls", "/nope"][..],
            "innkeeper: KeeperErrorCode = NoNode for /nope",
        ),
        (
            &["stat", "/nope"][..],
            "innkeeper: KeeperErrorCode = NoNode for /nope",
        ),
    ] {
        assert_eq!(fails(server.run(args)), line, "{args:?}");
    }
    server.ok(&["create", "/e", "", "--ephemeral"]);
    server.ok(&["create", "/dup"]);
    assert_eq!(
        fails(server.run(&["create", "/dup"])),
        "innkeeper: KeeperErrorCode = NodeExists for /dup"
    );
    let line = fails(server.run(&["create", "bad"]));
    assert!(line.starts_with("innkeeper: KeeperErrorCode = "), "{line}");
    assert!(line.contains("bad"), "{line}");
    // TTL nodes need the server's extended types.
    let line = fails(server.run(&["create", "/t", "--ttl", "1000"]));
    assert_eq!(line, "innkeeper: KeeperErrorCode = Unimplemented for /t");
}

#[test]
fn an_unreachable_server_fails_within_the_session_timeout() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = cli(
        &[
            "--server",
            &format!("127.0.0.1:{port}"),
            "--timeout-ms",
            "1500",
        ],
        &["ls", "/"],
        None,
    );
    let line = fails(out);
    assert!(
        line.starts_with("innkeeper: KeeperErrorCode = ConnectionLoss"),
        "{line}"
    );
    // A guard against hanging, far above the 1.5 s asked for.
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn the_server_comes_from_innkeeper_server_too() {
    let server = Server::start(&["--in-memory"]);
    let out = Command::new(BIN)
        .args(["ls", "/"])
        .env("INNKEEPER_SERVER", &server.addr)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "zookeeper\n");
}

#[test]
fn watch_prints_one_line_per_event_and_stops_after_count() {
    let server = Server::start(&["--in-memory"]);
    server.ok(&["create", "/w", ""]);
    let mut watch = Command::new(BIN)
        .args([
            "--server",
            &server.addr,
            "watch",
            "/w",
            "--recursive",
            "--count",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command says when its watch is registered.
    let mut stderr = BufReader::new(watch.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line, "innkeeper: watching /w\n");
    server.ok(&["set", "/w", "1"]);
    server.ok(&["create", "/w/child", ""]);
    server.ok(&["rm", "/w/child"]);
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "NodeDataChanged /w\nNodeCreated /w/child\nNodeDeleted /w/child\n"
    );
}

#[test]
fn status_reads_srvr_and_mntr() {
    let server = Server::start(&["--in-memory", "--4lw", "srvr,mntr"]);
    let status = server.ok(&["status"]);
    assert!(status.contains("mode: standalone"), "{status}");
    assert!(status.contains("zk_znode_count"), "{status}");
    let server = Server::start(&["--in-memory"]);
    let status = server.ok(&["status"]);
    assert!(status.contains("mntr is not in the server's 4lw.commands.whitelist"));
}

#[test]
fn dump_and_load_round_trip_data_acls_and_kinds() {
    let server = Server::start(&["--in-memory"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.json");
    server.ok(&["create", "/app", "top"]);
    let bytes: Vec<u8> = (0..=255u8).collect();
    assert!(server
        .run_with_input(&["create", "/app/bin", "-"], &bytes)
        .status
        .success());
    server.ok(&["create", "/app/c", "", "--container"]);
    server.ok(&["create", "/app/c/x", "1"]);
    server.ok(&["dump", "/app", "--output", file.to_str().unwrap()]);

    let nodes = dump_nodes(&file);
    let paths: Vec<&str> = nodes.iter().map(|n| n["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/app", "/app/bin", "/app/c", "/app/c/x"]);
    assert_eq!(nodes[0]["acl"][0]["perms"], "cdrwa");
    assert_eq!(nodes[0]["acl"][0]["scheme"], "world");

    server.ok(&["load", file.to_str().unwrap(), "--at", "/copy"]);
    assert_eq!(server.run(&["get", "/copy/bin"]).stdout, bytes);
    assert_eq!(server.ok(&["get", "/copy"]), "top");
    assert_eq!(
        server.ok(&["ls", "-R", "/copy"]),
        "/copy/bin\n/copy/c\n/copy/c/x\n"
    );
    // Loading again: NodeExists, unless asked to keep what exists.
    let line = fails(server.run(&["load", file.to_str().unwrap(), "--at", "/copy"]));
    assert_eq!(line, "innkeeper: KeeperErrorCode = NodeExists for /copy");
    let out = server.run(&[
        "load",
        file.to_str().unwrap(),
        "--at",
        "/copy",
        "--skip-existing",
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 existed already"));
}

#[test]
fn load_sets_restrictive_acls_after_the_children_exist() {
    let server = Server::start(&["--in-memory"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.json");
    std::fs::write(
        &file,
        r#"{"format":"innkeeper-dump","version":1,"root":"/ro","nodes":[
          {"path":"/ro","data":"","kind":"persistent",
           "acl":[{"perms":"r","scheme":"world","id":"anyone"}],
           "stat":{"czxid":0,"mzxid":0,"ctime":0,"mtime":0,"version":0,"cversion":0,"aversion":0,
                   "ephemeral_owner":0,"data_length":0,"num_children":1,"pzxid":0}},
          {"path":"/ro/kid","data":"aGk=","kind":"persistent",
           "acl":[{"perms":"cdrwa","scheme":"world","id":"anyone"}],
           "stat":{"czxid":0,"mzxid":0,"ctime":0,"mtime":0,"version":0,"cversion":0,"aversion":0,
                   "ephemeral_owner":0,"data_length":2,"num_children":0,"pzxid":0}}]}"#,
    )
    .unwrap();
    server.ok(&["load", file.to_str().unwrap()]);
    assert_eq!(server.ok(&["get", "/ro/kid"]), "hi");
    assert_eq!(
        fails(server.run(&["create", "/ro/other"])),
        "innkeeper: KeeperErrorCode = NoAuth for /ro/other"
    );
    let out = dir.path().join("again.json");
    server.ok(&["dump", "/ro", "-o", out.to_str().unwrap()]);
    assert_eq!(dump_nodes(&out)[0]["acl"][0]["perms"], "r");
}

#[test]
fn a_file_that_is_not_a_dump_is_refused_by_name() {
    let server = Server::start(&["--in-memory"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.json");
    std::fs::write(&file, "{}").unwrap();
    let line = fails(server.run(&["load", file.to_str().unwrap()]));
    assert!(line.contains("not a dump"), "{line}");
    assert_eq!(server.ok(&["ls", "/"]), "zookeeper\n");
}

#[test]
fn auth_reaches_nodes_an_acl_protects() {
    let server = Server::start(&["--in-memory"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.json");
    // A node readable only by digest user `app` with password `pw`.
    let id = innkeeper::digest_id("app", "pw");
    std::fs::write(
        &file,
        format!(
            r#"{{"format":"innkeeper-dump","version":1,"root":"/secret","nodes":[
              {{"path":"/secret","data":"czM=","kind":"persistent",
               "acl":[{{"perms":"cdrwa","scheme":"digest","id":"{id}"}}],
               "stat":{{"czxid":0,"mzxid":0,"ctime":0,"mtime":0,"version":0,"cversion":0,
                       "aversion":0,"ephemeral_owner":0,"data_length":2,"num_children":0,"pzxid":0}}}}]}}"#
        ),
    )
    .unwrap();
    server.ok(&["load", file.to_str().unwrap()]);
    assert_eq!(
        fails(server.run(&["get", "/secret"])),
        "innkeeper: KeeperErrorCode = NoAuth for /secret"
    );
    assert_eq!(
        server.ok(&["--auth", "digest:app:pw", "get", "/secret"]),
        "s3"
    );
}
