//! How a durable keeper scales: N nodes of 16 bytes at
//! `/pop/b<i/1000>/n<i%1000>` (the layout of the ZooKeeper comparison),
//! loaded through multis of 100 creates; then, in a fresh process, the
//! restart (open + recovery → first getData), the resident memory per
//! node, and the write latency of a writer while a snapshot of the whole
//! state is taken.
//!
//! Run: `cargo run --release --example store_scale -- --nodes 1000000`
//! (repeat `--nodes` for several sizes; default 100 000 and 1 000 000), or
//! `-- --deep 20000` for one chain of 20 000 levels.
//! Stores live in the system temp dir (`TMPDIR`).
//!
//! Figures printed per size:
//! - load: time, rate, RSS growth of the loading process;
//! - disk: bytes of the store directory (log + snapshots);
//! - restart: `Keeper::open` until the first `getData` answered, and the
//!   RSS of the reopened keeper per node;
//! - snapshot: how long the snapshot thread took to write the file, and
//!   the worst latency of durable single `setData` writes issued while it
//!   ran (beside the worst of those before it started and in the 200 ms
//!   after it ended).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use innkeeper::{Coordinator, CreateMode, Durability, Keeper, Op};

/// Children per directory node.
const PER_DIR: usize = 1000;
/// Creates per multi while loading.
const PER_MULTI: usize = 100;
/// Snapshots while loading: about ten (every tenth of the nodes, at least
/// every 1 000 multis), so a restart loads a snapshot and replays a short
/// log.
const LOAD_SNAPSHOTS: usize = 10;
/// After the restart, a snapshot is due after this many single writes.
const MEASURE_SNAPSHOT_EVERY_TXNS: u64 = 200;
const VALUE: &[u8] = b"sixteen bytes!!!";
const SIZES_DEFAULT: [usize; 2] = [100_000, 1_000_000];
/// Longest the snapshot phase may last.
const SNAPSHOT_PHASE_MAX: Duration = Duration::from_secs(300);

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--reopen") {
        let nodes = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(0);
        reopen(Path::new(&args[2]), nodes);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--load-only") {
        // `--load-only DIR N`: build a store in DIR and stop (profiling).
        let nodes = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(0);
        load(Path::new(&args[2]), nodes);
        return;
    }
    if args.get(1).map(String::as_str) == Some("--reopen-deep") {
        reopen_deep(Path::new(&args[2]));
        return;
    }
    if let Some(levels) = args
        .windows(2)
        .find(|w| w[0] == "--deep")
        .and_then(|w| w[1].replace('_', "").parse::<usize>().ok())
    {
        deep(levels);
        return;
    }
    let mut sizes: Vec<usize> = args
        .windows(2)
        .filter(|w| w[0] == "--nodes")
        .filter_map(|w| w[1].replace('_', "").parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = SIZES_DEFAULT.to_vec();
    }
    for nodes in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        load(dir.path(), nodes);
        let bytes = disk_bytes(dir.path());
        let snapshots = disk_bytes(&dir.path().join("snapshots"));
        println!(
            "{nodes} nodes: disk {:.1} MiB ({:.1} MiB log, {:.1} MiB snapshots), {:.0} bytes/node",
            mib(bytes),
            mib(bytes - snapshots),
            mib(snapshots),
            bytes as f64 / nodes as f64
        );
        // Let sled's background threads of the closed keeper wind down
        // (they hold its file lock briefly), so the restart measures
        // recovery, not lock retries.
        std::thread::sleep(Duration::from_secs(2));
        let out = Command::new(std::env::current_exe().expect("exe"))
            .arg("--reopen")
            .arg(dir.path())
            .arg(nodes.to_string())
            .output()
            .expect("child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn node_path(i: usize) -> String {
    format!("/pop/b{}/n{}", i / PER_DIR, i % PER_DIR)
}

fn load(dir: &Path, nodes: usize) {
    let rss_before = rss_bytes();
    let started = Instant::now();
    let keeper = Keeper::builder()
        .durability(Durability::Periodic(Duration::from_millis(100)))
        .snapshot_every_txns((nodes / PER_MULTI / LOAD_SNAPSHOTS).max(1_000) as u64)
        .open(dir)
        .expect("open");
    let s = keeper.session().expect("session");
    s.create("/pop", b"", CreateMode::Persistent).expect("root");
    let mut worst = Duration::ZERO;
    let mut i = 0;
    while i < nodes {
        if i % PER_DIR == 0 {
            s.create(
                &format!("/pop/b{}", i / PER_DIR),
                b"",
                CreateMode::Persistent,
            )
            .expect("dir");
        }
        let n = PER_MULTI.min(nodes - i).min(PER_DIR - i % PER_DIR);
        let ops: Vec<Op> = (i..i + n)
            .map(|j| Op::create(node_path(j), VALUE, CreateMode::Persistent))
            .collect();
        let t = Instant::now();
        s.multi(&ops).expect("multi");
        worst = worst.max(t.elapsed());
        i += n;
    }
    let took = started.elapsed();
    let rss = rss_bytes().saturating_sub(rss_before);
    println!(
        "{nodes} nodes: loaded in {took:.1?} ({:.0} nodes/s, worst multi of {PER_MULTI} {worst:.1?}); \
         RSS +{:.1} MiB ({:.0} bytes/node)",
        nodes as f64 / took.as_secs_f64(),
        mib(rss),
        rss as f64 / nodes as f64
    );
    s.close().expect("close");
    keeper.shutdown().expect("shutdown");
}

fn reopen(dir: &Path, nodes: usize) {
    let before = rss_bytes();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let keeper = Keeper::builder()
        .durability(Durability::Durable)
        .snapshot_every_txns(MEASURE_SNAPSHOT_EVERY_TXNS)
        .open(dir)
        .expect("reopen");
    let s = keeper.session().expect("session");
    s.get_data(&node_path(0)).expect("first read");
    let took = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let rss = rss_bytes().saturating_sub(before);
    let count = keeper.node_count();
    println!(
        "{count} nodes: restart to first getData {took:.2?} ({cpu:.2?} CPU, all threads); \
         RSS +{:.1} MiB, {:.0} bytes/node",
        mib(rss),
        rss as f64 / count as f64
    );

    // A watcher notes when the snapshot thread starts its file (`.tmp`)
    // and when the file gets its final name.
    let snapshots = dir.join("snapshots");
    let known = snapshot_names(&snapshots);
    let window: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (window, stop) = (window.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let names = snapshot_names(&snapshots);
                let now = Instant::now();
                let mut w = window.lock().expect("window");
                if w.0.is_none() && names.iter().any(|n| n.ends_with(".tmp")) {
                    w.0 = Some(now);
                }
                if w.1.is_none()
                    && names
                        .iter()
                        .any(|n| !n.ends_with(".tmp") && !known.contains(n))
                {
                    w.1 = Some(now);
                    w.0.get_or_insert(now);
                    return;
                }
                drop(w);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut writes: Vec<(Instant, Duration)> = Vec::new();
    let phase = Instant::now();
    let mut k = 0usize;
    loop {
        let done = window.lock().expect("window").1;
        if done.is_some_and(|d| d.elapsed() > Duration::from_millis(200))
            || phase.elapsed() > SNAPSHOT_PHASE_MAX
        {
            break;
        }
        let t = Instant::now();
        s.set_data(&node_path(k % nodes.max(1)), VALUE, -1)
            .expect("write");
        writes.push((t, t.elapsed()));
        k = k.wrapping_add(7919);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let (start, end) = *window.lock().expect("window");
    match (start, end) {
        (Some(start), Some(end)) => {
            let during: Vec<Duration> = writes
                .iter()
                .filter(|(t, d)| *t + *d >= start && *t <= end)
                .map(|(_, d)| *d)
                .collect();
            let outside: Vec<Duration> = writes
                .iter()
                .filter(|(t, d)| *t + *d < start || *t > end)
                .map(|(_, d)| *d)
                .collect();
            let worst = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
            println!(
                "{count} nodes: snapshot written in {:.2?}; durable setData while it ran: {} writes, \
                 worst {:.1?}; outside it: {} writes, worst {:.1?}",
                end - start,
                during.len(),
                worst(&during),
                outside.len(),
                worst(&outside)
            );
        }
        _ => println!("{count} nodes: no snapshot seen within {SNAPSHOT_PHASE_MAX:?}"),
    }
    s.close().expect("close");
    keeper.shutdown().expect("shutdown");
}

/// `--deep N`: one chain of N levels (`/d/d/d/...`), loaded one create at
/// a time in the periodic mode; RSS, disk, and a restart in a fresh
/// process.
fn deep(levels: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let rss_before = rss_bytes();
    let started = Instant::now();
    let keeper = Keeper::builder()
        .durability(Durability::Periodic(Duration::from_millis(100)))
        .open(dir.path())
        .expect("open");
    let s = keeper.session().expect("session");
    let mut p = String::new();
    for _ in 0..levels {
        p.push_str("/d");
        s.create(&p, b"", CreateMode::Persistent).expect("create");
    }
    let took = started.elapsed();
    let rss = rss_bytes().saturating_sub(rss_before);
    s.close().expect("close");
    keeper.shutdown().expect("shutdown");
    drop(keeper);
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "deep tree of {levels} levels: loaded in {took:.1?}; RSS +{:.1} MiB; disk {:.1} MiB \
         ({:.1} MiB snapshots)",
        mib(rss),
        mib(disk_bytes(dir.path())),
        mib(disk_bytes(&dir.path().join("snapshots")))
    );
    let out = Command::new(std::env::current_exe().expect("exe"))
        .arg("--reopen-deep")
        .arg(dir.path())
        .output()
        .expect("child");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

fn reopen_deep(dir: &Path) {
    let before = rss_bytes();
    let cpu_before = cpu_time();
    let started = Instant::now();
    let keeper = Keeper::open(dir).expect("reopen");
    let s = keeper.session().expect("session");
    s.get_data("/d").expect("first read");
    let took = started.elapsed();
    println!(
        "deep tree of {} nodes: restart to first getData {took:.2?} ({:.2?} CPU); RSS +{:.1} MiB",
        keeper.node_count(),
        cpu_time().saturating_sub(cpu_before),
        mib(rss_bytes().saturating_sub(before))
    );
}

fn snapshot_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// User + system CPU time of this process (all threads), from
/// /proc/self/stat (in clock ticks, taken as 100 per second).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
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
