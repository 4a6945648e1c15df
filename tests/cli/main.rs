//! The `innkeeper` command line, run as users run it: the binary against an
//! `innkeeper serve` started by each test on a free port, offline on data
//! directories, and, when `INNKEEPER_ZK` names an Apache ZooKeeper 3.8
//! server (`.ci/cli.sh`), against it too.

mod admin;
mod client;
mod offline;
mod serve;
mod zookeeper;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_innkeeper");

/// A running `innkeeper serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The stderr lines after the ready line, read on demand.
    pub log: std::sync::mpsc::Receiver<String>,
    /// The stderr lines before it.
    pub early: Vec<String>,
}

impl Server {
    /// Starts `innkeeper serve --port 0 ARGS` and waits for its ready line.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn innkeeper serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no ready line from innkeeper serve; it said: {seen:#?}")
            });
            if let Some(addr) = ready_address(&line) {
                return Server {
                    child,
                    addr,
                    log: rx,
                    early: seen,
                };
            }
            seen.push(line);
        }
    }

    /// Runs `innkeeper --server ADDR ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        cli(&["--server", &self.addr], args, None)
    }

    /// Same, with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        cli(&["--server", &self.addr], args, Some(input))
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.run(args), args)
    }

    /// SIGTERM, then waits for the exit; returns the stderr lines it
    /// printed after the ready line.
    pub fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = self.child.wait().expect("wait");
        let mut lines = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        (status, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The `host:port` an early log line names after `marker`
    /// (`AdminServer on http://`).
    pub fn early_address(&self, marker: &str) -> String {
        self.early
            .iter()
            .find_map(|l| l.split(marker).nth(1))
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect()
            })
            .unwrap_or_else(|| panic!("no {marker:?} in {:#?}", self.early))
    }
}

/// The `host:port` of innkeeper's ready line (text or JSON log format).
fn ready_address(line: &str) -> Option<String> {
    let rest = line.split("serving ZooKeeper clients on ").nth(1)?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    Some(addr)
}

/// Runs the binary with `global` then `args`.
pub fn cli(global: &[&str], args: &[&str], input: Option<&[u8]>) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(global)
        .args(args)
        .env_remove("INNKEEPER_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = command.spawn().expect("spawn innkeeper");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

/// Stdout of a command that must succeed.
#[track_caller]
pub fn ok(output: Output, args: &[&str]) -> String {
    assert!(
        output.status.success(),
        "innkeeper {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

/// The single stderr line of a command that must fail.
#[track_caller]
pub fn fails(output: Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    let stderr = String::from_utf8(output.stderr).expect("utf-8 stderr");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    stderr.trim_end().to_string()
}

/// A dump file's nodes, parsed.
pub fn dump_nodes(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("read dump");
    let dump: serde_json::Value = serde_json::from_str(&text).expect("json");
    dump["nodes"].as_array().expect("nodes").clone()
}
