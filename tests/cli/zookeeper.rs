//! The CLI against Apache ZooKeeper 3.8 (`INNKEEPER_ZK=host:port`, set by
//! `.ci/cli.sh`): a tree built there, dumped, loaded into innkeeper and
//! dumped again must be equal path by path and byte by byte; watch and the
//! error lines behave the same on both servers. Without the variable these
//! tests return at once.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::{cli, dump_nodes, fails, ok, Server, BIN};

fn zookeeper() -> Option<String> {
    let zk = std::env::var("INNKEEPER_ZK").ok();
    if zk.is_none() {
        eprintln!("INNKEEPER_ZK not set: ZooKeeper test skipped");
    }
    zk
}

/// A prefix no other run used.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("/{name}-{}-{nanos}", std::process::id())
}

fn on(server: &str, args: &[&str]) -> String {
    ok(cli(&["--server", server], args, None), args)
}

#[test]
fn a_tree_dumped_from_zookeeper_loads_into_innkeeper_byte_for_byte() {
    let Some(zk) = zookeeper() else { return };
    let root = unique("cli-dump");
    let tmp = tempfile::tempdir().unwrap();
    on(&zk, &["create", &root, "root data"]);
    let binary: Vec<u8> = (0..=255u8).rev().chain([0, 0, b'\n']).collect();
    assert!(cli(
        &["--server", &zk],
        &["create", &format!("{root}/binary"), "-"],
        Some(&binary)
    )
    .status
    .success());
    on(&zk, &["create", &format!("{root}/empty")]);
    on(
        &zk,
        &["create", &format!("{root}/seq-"), "s", "--sequential"],
    );
    on(&zk, &["create", &format!("{root}/c"), "", "--container"]);
    on(&zk, &["create", &format!("{root}/c/kid"), "k"]);
    on(&zk, &["create", &format!("{root}/deep")]);
    let mut path = format!("{root}/deep");
    for level in 0..20 {
        path = format!("{path}/l{level}");
        on(&zk, &["create", &path, &format!("level {level}")]);
    }
    let from_zk = tmp.path().join("zk.json");
    on(&zk, &["dump", &root, "-o", from_zk.to_str().unwrap()]);

    let server = Server::start(&["--in-memory"]);
    server.ok(&["load", from_zk.to_str().unwrap()]);
    let from_innkeeper = tmp.path().join("innkeeper.json");
    server.ok(&["dump", &root, "-o", from_innkeeper.to_str().unwrap()]);

    let strip = |nodes: Vec<serde_json::Value>| {
        nodes
            .into_iter()
            .map(|n| {
                (
                    n["path"].as_str().unwrap().to_string(),
                    n["data"].as_str().unwrap().to_string(),
                    n["acl"].clone(),
                    n["kind"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (
        strip(dump_nodes(&from_zk)),
        strip(dump_nodes(&from_innkeeper)),
    );
    assert_eq!(a.len(), 27);
    assert_eq!(a, b);
    assert_eq!(
        server.run(&["get", &format!("{root}/binary")]).stdout,
        binary
    );
    // `ls -R` agrees between the two servers too.
    assert_eq!(
        on(&zk, &["ls", "-R", &root]),
        server.ok(&["ls", "-R", &root])
    );
    on(&zk, &["rm", "-r", &root]);
}

#[test]
fn watch_on_zookeeper_prints_the_same_lines() {
    let Some(zk) = zookeeper() else { return };
    let root = unique("cli-watch");
    on(&zk, &["create", &root]);
    let mut watch = Command::new(BIN)
        .args(["--server", &zk, "watch", &root, "-r", "-n", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(watch.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, format!("innkeeper: watching {root}\n"));
    on(&zk, &["set", &root, "1"]);
    on(&zk, &["create", &format!("{root}/k")]);
    on(&zk, &["rm", &format!("{root}/k")]);
    let out = watch.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("NodeDataChanged {root}\nNodeCreated {root}/k\nNodeDeleted {root}/k\n")
    );
    on(&zk, &["rm", &root]);
}

#[test]
fn errors_read_the_same_on_zookeeper_and_innkeeper() {
    let Some(zk) = zookeeper() else { return };
    let root = unique("cli-errors");
    let server = Server::start(&["--in-memory"]);
    for addr in [&zk, &server.addr] {
        on(addr, &["create", &root, "v"]);
        on(addr, &["create", &format!("{root}/k")]);
    }
    let cases: Vec<Vec<String>> = vec![
        vec!["get".into(), format!("{root}/missing")],
        vec!["create".into(), format!("{root}/no/parent")],
        vec!["create".into(), root.clone()],
        vec!["rm".into(), root.clone()],
        vec![
            "set".into(),
            root.clone(),
            "x".into(),
            "--version".into(),
            "9".into(),
        ],
    ];
    for case in &cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        let theirs = fails(cli(&["--server", &zk], &args, None));
        let ours = fails(server.run(&args));
        assert_eq!(ours, theirs, "{args:?}");
    }
    on(&zk, &["rm", "-r", &root]);
}

#[test]
fn status_reads_zookeepers_srvr_and_mntr() {
    let Some(zk) = zookeeper() else { return };
    let status = on(&zk, &["status"]);
    assert!(status.contains("mode: standalone"), "{status}");
    assert!(status.contains("zookeeper version: 3.8"), "{status}");
    assert!(status.contains("zk_znode_count"), "{status}");
}
