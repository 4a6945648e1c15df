//! Offline commands on a data directory: read-only reads, `inspect`,
//! `backup` and `restore`, and the refusal while a server holds it.

use std::path::Path;

use crate::{cli, dump_nodes, fails, ok, Server};

/// A durable server in `dir` with a small tree, stopped again.
fn populate(dir: &Path) {
    let server = Server::start(&["--data-dir", dir.to_str().unwrap()]);
    server.ok(&["create", "/app", "v1"]);
    server.ok(&["create", "/app/cfg", "x=1"]);
    server.ok(&["create", "/app/c", "", "--container"]);
    server.ok(&["create", "/app/c/k", ""]);
    // A directory held by a running server is refused, clearly.
    let line = fails(cli(
        &["--data-dir", dir.to_str().unwrap()],
        &["ls", "/"],
        None,
    ));
    assert!(
        line.starts_with("innkeeper: KeeperErrorCode = StoreLocked"),
        "{line}"
    );
    assert!(line.contains("held by a running server"), "{line}");
    let (status, _) = server.stop();
    assert!(status.success());
}

fn offline(dir: &Path, args: &[&str]) -> String {
    ok(
        cli(&["--data-dir", dir.to_str().unwrap()], args, None),
        args,
    )
}

#[test]
fn ls_tree_get_stat_and_dump_read_a_stopped_servers_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populate(&dir);
    assert_eq!(offline(&dir, &["ls", "/app"]), "c\ncfg\n");
    assert_eq!(
        offline(&dir, &["ls", "-R", "/"]),
        "/app\n/app/c\n/app/c/k\n/app/cfg\n/zookeeper\n/zookeeper/config\n/zookeeper/quota\n"
    );
    assert_eq!(offline(&dir, &["get", "/app/cfg"]), "x=1");
    assert!(offline(&dir, &["stat", "/app"]).contains("numChildren = 2\n"));
    assert!(offline(&dir, &["tree"]).contains("  app (2 B)\n"));

    // Offline, the dump knows what the wire cannot say: the container.
    let file = tmp.path().join("d.json");
    offline(&dir, &["dump", "/app", "-o", file.to_str().unwrap()]);
    let nodes = dump_nodes(&file);
    let kinds: Vec<(&str, &str)> = nodes
        .iter()
        .map(|n| (n["path"].as_str().unwrap(), n["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("/app", "persistent"),
            ("/app/c", "container"),
            ("/app/c/k", "persistent"),
            ("/app/cfg", "persistent")
        ]
    );

    // Writes are refused offline, and nothing changed on disk.
    let line = fails(cli(
        &["--data-dir", dir.to_str().unwrap()],
        &["create", "/x"],
        None,
    ));
    assert!(line.contains("create needs a server"), "{line}");
    assert_eq!(offline(&dir, &["ls", "/"]), "app\nzookeeper\n");
}

#[test]
fn inspect_reports_counts_sizes_and_checks_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populate(&dir);
    let report = offline(&dir, &["inspect"]);
    // 4 user nodes + "/" + /zookeeper, /zookeeper/quota, /zookeeper/config.
    assert!(report.contains("nodes:      8\n"), "{report}");
    assert!(report.contains("integrity:  ok"), "{report}");
    assert!(report.contains("log:        "), "{report}");
    assert!(report.contains("last zxid:  0x"), "{report}");

    let line = fails(cli(&[], &["inspect"], None));
    assert!(line.contains("needs --data-dir"), "{line}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let line = fails(cli(
        &["--data-dir", empty.to_str().unwrap()],
        &["inspect"],
        None,
    ));
    assert!(line.contains("holds no innkeeper store"), "{line}");
}

#[test]
fn backup_then_restore_gives_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populate(&dir);
    let backup = tmp.path().join("b.backup");
    let restored = tmp.path().join("restored");
    offline(&dir, &["backup", backup.to_str().unwrap()]);
    ok(
        cli(
            &["--data-dir", restored.to_str().unwrap()],
            &["restore", backup.to_str().unwrap()],
            None,
        ),
        &["restore"],
    );
    let a = tmp.path().join("a.json");
    let b = tmp.path().join("b.json");
    offline(&dir, &["dump", "-o", a.to_str().unwrap()]);
    offline(&restored, &["dump", "-o", b.to_str().unwrap()]);
    assert_eq!(dump_nodes(&a), dump_nodes(&b), "Stat included");
    // A restore never overwrites a store.
    let line = fails(cli(
        &["--data-dir", restored.to_str().unwrap()],
        &["restore", backup.to_str().unwrap()],
        None,
    ));
    assert!(line.contains("already holds a store"), "{line}");
}

#[test]
fn inspect_names_a_damaged_snapshot_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    populate(&dir);
    // A backup is a snapshot file: put one in with a byte flipped, as the
    // newest snapshot (the log still holds everything, so the state itself
    // is recovered).
    let backup = tmp.path().join("b");
    offline(&dir, &["backup", backup.to_str().unwrap()]);
    let report = offline(&dir, &["inspect"]);
    let zxid = report
        .lines()
        .find_map(|l| l.strip_prefix("last zxid:  0x"))
        .unwrap();
    let name = format!("snap-{:0>16}", zxid);
    let mut bytes = std::fs::read(&backup).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    let snapshots = dir.join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    std::fs::write(snapshots.join(&name), &bytes).unwrap();

    let out = cli(&["--data-dir", dir.to_str().unwrap()], &["inspect"], None);
    assert!(!out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!("{name}  zxid 0x{zxid}")),
        "{report}"
    );
    assert!(report.contains("DAMAGED"), "{report}");
    assert!(report.contains("integrity:  1 problems"), "{report}");
    assert!(
        report.contains("nodes:      8\n"),
        "recovered from the log: {report}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 damaged records"), "{stderr}");
    // Read-only: the damaged file is still where it was, under its name.
    assert!(snapshots.join(&name).exists());
}
