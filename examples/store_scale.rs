//! How a durable keeper scales: for 100 000 and 1 000 000 nodes, the time
//! to build the store, its size on disk, the time to reopen it (recovery:
//! newest snapshot plus the log after it) and the resident memory per node
//! of the reopened keeper.
//!
//! Run: `cargo run --release --example store_scale` (both sizes, a few
//! minutes), or `cargo run --release --example store_scale -- 250000` for
//! other sizes. Each reopen runs in a fresh child process so its memory is
//! measured alone. Stores live in the system temp dir (`TMPDIR`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use innkeeper::{Coordinator, CreateMode, Durability, Keeper, Op};

/// Children per directory node.
const PER_DIR: usize = 1000;
/// Creates per multi while building.
const PER_MULTI: usize = 100;
/// A snapshot every this many multis while building (every 100 000 nodes),
/// so recovery loads a snapshot and replays a short log, as it would after
/// a long run with the default settings.
const BUILD_SNAPSHOT_EVERY_TXNS: u64 = 1_000;
const VALUE: &[u8] = b"a thirty-two byte value........!";
const SIZES_DEFAULT: [usize; 2] = [100_000, 1_000_000];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--reopen") {
        reopen(Path::new(&args[2]));
        return;
    }
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        SIZES_DEFAULT.to_vec()
    };
    for nodes in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let built = build(dir.path(), nodes);
        let bytes = disk_bytes(dir.path());
        let snapshots = disk_bytes(&dir.path().join("snapshots"));
        println!(
            "{nodes} nodes: built in {built:.1?} ({:.0} nodes/s); on disk {:.1} MiB \
             ({:.1} MiB log, {:.1} MiB snapshots, {:.0} bytes/node)",
            nodes as f64 / built.as_secs_f64(),
            mib(bytes),
            mib(bytes - snapshots),
            mib(snapshots),
            bytes as f64 / nodes as f64
        );
        let out = Command::new(std::env::current_exe().expect("exe"))
            .arg("--reopen")
            .arg(dir.path())
            .output()
            .expect("child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn build(dir: &Path, nodes: usize) -> Duration {
    let started = Instant::now();
    let keeper = Keeper::builder()
        .durability(Durability::Periodic(Duration::from_millis(100)))
        .snapshot_every_txns(BUILD_SNAPSHOT_EVERY_TXNS)
        .open(dir)
        .expect("open");
    let s = keeper.session().expect("session");
    s.create("/scale", b"", CreateMode::Persistent)
        .expect("root");
    let mut created = 0;
    while created < nodes {
        let parent = format!("/scale/d{:05}", created / PER_DIR);
        if created % PER_DIR == 0 {
            s.create(&parent, b"", CreateMode::Persistent).expect("dir");
        }
        let n = PER_MULTI
            .min(nodes - created)
            .min(PER_DIR - created % PER_DIR);
        let ops: Vec<Op> = (created..created + n)
            .map(|i| Op::create(format!("{parent}/n{i:07}"), VALUE, CreateMode::Persistent))
            .collect();
        s.multi(&ops).expect("multi");
        created += n;
    }
    s.close().expect("close");
    keeper.shutdown().expect("shutdown");
    started.elapsed()
}

fn reopen(dir: &Path) {
    let before = rss_bytes();
    let started = Instant::now();
    let keeper = Keeper::open(dir).expect("reopen");
    let took = started.elapsed();
    let after = rss_bytes();
    let nodes = keeper.node_count();
    println!(
        "{nodes} nodes: reopened (recovered) in {took:.2?}; resident memory {:.1} MiB -> {:.1} MiB, \
         {:.0} bytes/node",
        mib(before),
        mib(after),
        after.saturating_sub(before) as f64 / nodes as f64
    );
    keeper.shutdown().expect("shutdown");
}

/// VmRSS of this process, from /proc/self/status.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Bytes of all files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
