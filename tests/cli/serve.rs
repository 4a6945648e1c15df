//! `innkeeper serve`: seeding from a dump, the config file, refused values,
//! logs.

use crate::{dump_nodes, Server};

#[test]
fn serve_load_seeds_a_fresh_keeper_from_a_dump() {
    let source = Server::start(&["--in-memory"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("seed.json");
    source.ok(&["create", "/seed", "s"]);
    source.ok(&["create", "/seed/a", "1"]);
    source.ok(&["dump", "-o", file.to_str().unwrap()]);
    let seeded = Server::start(&["--in-memory", "--load", file.to_str().unwrap()]);
    assert_eq!(seeded.ok(&["ls", "-R", "/seed"]), "/seed/a\n");
    assert_eq!(seeded.ok(&["get", "/seed/a"]), "1");
    let again = tmp.path().join("again.json");
    seeded.ok(&["dump", "-o", again.to_str().unwrap()]);
    let strip = |nodes: Vec<serde_json::Value>| {
        nodes
            .into_iter()
            .map(|n| (n["path"].clone(), n["data"].clone(), n["acl"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(dump_nodes(&file)), strip(dump_nodes(&again)));
}

/// Runs `innkeeper serve ARGS` expecting it to refuse to start; returns stderr.
fn refused(args: &[&str]) -> String {
    let out = std::process::Command::new(crate::BIN)
        .arg("serve")
        .args(["--in-memory", "--port", "0"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?} must be refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn invalid_settings_are_refused_at_start_with_the_reason() {
    assert!(refused(&["--4lw", "srvr,bogus"]).contains("unknown four-letter word \"bogus\""));
    assert!(refused(&["--tick-ms", "0"]).contains("tick"));
    assert!(refused(&[
        "--session-timeout-min-ms",
        "5000",
        "--session-timeout-max-ms",
        "4000"
    ])
    .contains("minimum session timeout (5000 ms) is above the maximum (4000 ms)"));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("zoo.cfg");
    std::fs::write(&cfg, "tickTime=often\n").unwrap();
    let stderr = refused(&["--config", cfg.to_str().unwrap()]);
    assert!(
        stderr.contains("tickTime=\"often\" is not a number of ms"),
        "{stderr}"
    );
}

#[test]
fn zoo_cfg_sets_the_server_and_flags_override_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("zoo.cfg");
    let data = tmp.path().join("data");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\nclientPort=1\nminSessionTimeout=1500\nmaxSessionTimeout=6000\n\
             dataDir={}\n4lw.commands.whitelist=conf,srvr\nmaxClientCnxns=7\n\
             initLimit=10\nfrobnicate=yes\n",
            data.display()
        ),
    )
    .unwrap();
    // --port overrides clientPort=1.
    let server = Server::start(&["--config", cfg.to_str().unwrap()]);
    let conf = four_letter(&server.addr, "conf");
    assert!(conf.contains("tickTime=500\n"), "{conf}");
    assert!(conf.contains("minSessionTimeout=1500\n"), "{conf}");
    assert!(conf.contains("maxSessionTimeout=6000\n"), "{conf}");
    assert!(conf.contains("maxClientCnxns=7\n"), "{conf}");
    assert!(
        conf.contains(&format!("dataDir={}\n", data.display())),
        "{conf}"
    );
    // The data directory is real, and conf reports its size.
    let size: u64 = conf
        .lines()
        .find_map(|l| l.strip_prefix("dataDirSize="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 0, "{conf}");
    assert!(four_letter(&server.addr, "mntr").contains("not in the whitelist"));
    let (status, log) = server.stop();
    assert!(status.success());
    let _ = log;
}

#[test]
fn unknown_config_keys_are_warned_about_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("zoo.cfg");
    std::fs::write(&cfg, "initLimit=10\nfrobnicate=yes\n").unwrap();
    let out = std::process::Command::new(crate::BIN)
        .args(["serve", "--in-memory", "--port", "0", "--config"])
        .arg(&cfg)
        .args(["--4lw", "bogus"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown key frobnicate"), "{stderr}");
    assert!(stderr.contains("initLimit has no effect"), "{stderr}");
}

#[test]
fn logs_are_json_on_request_and_name_sessions_and_shutdown() {
    let server = Server::start(&["--in-memory", "--log-format", "json"]);
    server.ok(&["create", "/x"]);
    let (status, lines) = server.stop();
    assert!(status.success());
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["fields"]["message"].as_str().unwrap_or(""))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.ends_with("opened (timeout 10000 ms)")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.ends_with(" closed")),
        "{messages:?}"
    );
    assert_eq!(messages[messages.len() - 2..], ["shutting down", "stopped"]);
    assert!(events.iter().all(|e| e["level"] == "INFO"));
}

#[test]
fn slow_requests_are_logged_at_warn() {
    // A threshold of 0 ms makes every request slow.
    let server = Server::start(&["--in-memory", "--slow-request-ms", "0"]);
    server.ok(&["create", "/x"]);
    let (_, lines) = server.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("slow request: CREA")),
        "{lines:?}"
    );
}

/// A four-letter word's answer.
pub fn four_letter(addr: &str, word: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(word.as_bytes()).unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failed_write_is_logged_at_error_level() {
    use innkeeper::{Coordinator, CreateMode, Keeper, StoreFaults};
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::ERROR)
        .finish();
    let dir = tempfile::tempdir().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        // The second batch (the first is the session) fails, as a full disk would.
        let keeper = Keeper::builder()
            .store_faults(StoreFaults {
                fail_before_write: Some(2),
                ..StoreFaults::default()
            })
            .open(dir.path())
            .unwrap();
        let session = keeper.session().unwrap();
        assert!(session.create("/x", b"", CreateMode::Persistent).is_err());
        keeper.shutdown().unwrap();
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains("storage failure"), "{log}");
    assert!(log.contains("injected fault before the write"), "{log}");
}

#[test]
fn connection_errors_are_logged_at_warn() {
    use std::io::{Read, Write};
    let server = Server::start(&["--in-memory"]);
    let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
    // A frame of 5 bytes cannot hold a ConnectRequest.
    stream.write_all(&[0, 0, 0, 5, 1, 2, 3, 4, 5]).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let (_, lines) = server.stop();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("malformed ConnectRequest")),
        "{lines:?}"
    );
}

#[test]
fn filter_events_by_acl_keeps_events_from_sessions_without_read() {
    // Reference: docs/zookeeper-semantics.md D.3 (ZOOKEEPER-4799): with the
    // flag, a change reaches only sessions that may READ the node.
    use innkeeper::{Acl, AddWatchMode, Coordinator, CreateOptions, Perms, RemoteSession, Watcher};
    use std::time::Duration;
    for filter in [false, true] {
        let args: &[&str] = if filter {
            &["--in-memory", "--filter-events-by-acl"]
        } else {
            &["--in-memory"]
        };
        let server = Server::start(args);
        let owner = RemoteSession::connect(&server.addr, Duration::from_secs(10)).unwrap();
        let other = RemoteSession::connect(&server.addr, Duration::from_secs(10)).unwrap();
        owner.add_auth("digest", b"o:pw").unwrap();
        let options = CreateOptions::new(innkeeper::CreateMode::Persistent).acl(vec![Acl::digest(
            Perms::ALL,
            "o",
            "pw",
        )]);
        owner.create_with("/secret", Some(b""), &options).unwrap();
        let (watcher, events) = Watcher::channel();
        other
            .add_watch("/secret", AddWatchMode::Persistent, &watcher)
            .unwrap();
        owner.set_data("/secret", b"x", -1).unwrap();
        // A notification precedes every later reply on its connection, so
        // once this read is answered an unfiltered event has arrived.
        other.sync("/").unwrap();
        other.exists("/").unwrap();
        let got = events.drain().len();
        assert_eq!(got, if filter { 0 } else { 1 }, "filter {filter}");
    }
}
