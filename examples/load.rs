//! Many idle-but-watching connections while others write.
//!
//! Starts `innkeeper serve` (release build next to this example; durable on
//! a temporary directory unless `--in-memory`) or uses `--addr`/`--pid` for
//! another server, opens `--connections` sessions each with a persistent
//! watch on one of 100 nodes and a data watch on `/load/all`, sends one
//! setData of `/load/all` and times until every session has its event,
//! then runs `--writers` writer threads setting the 100 nodes for
//! `--seconds`, while a prober pings. Reports connect time, the broadcast
//! notify time, the writers' latency percentiles, ping latency,
//! notifications delivered versus expected, and the server's RSS and
//! thread count.
//!
//! ```text
//! cargo build --release --bin innkeeper --example load
//! ulimit -n 30000   # one descriptor per connection on each side
//! target/release/examples/load --connections 10000 --seconds 10
//! # beyond ~28,000 connections one loopback address runs out of ports:
//! ulimit -n 120000; target/release/examples/load --connections 50000 --spread 4
//! ```

#[path = "support/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use innkeeper::proto::Request;
use wire::{create, percentile, rss_kib, set, threads, Client};

#[derive(Parser, Debug)]
struct Args {
    /// Watching connections to hold.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Seconds of writing while they are held.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Writer threads (one connection each).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Use a running server instead of spawning innkeeper.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Its pid, for RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Run the spawned server in memory instead of durable.
    #[arg(long)]
    in_memory: bool,
    /// Threads opening connections.
    #[arg(long, default_value_t = 16)]
    openers: usize,
    /// Connect to 127.0.0.1 .. 127.0.0.N (the spawned server listens on
    /// all addresses), for more connections than one address has ports.
    #[arg(long, default_value_t = 1)]
    spread: u8,
}

/// The address connection `i` uses.
fn addr_for(addr: SocketAddr, spread: u8, i: usize) -> SocketAddr {
    if spread <= 1 {
        return addr;
    }
    let last = 1 + (i % usize::from(spread)) as u8;
    SocketAddr::from(([127, 0, 0, last], addr.port()))
}

const NODES: usize = 100;

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let data_dir = std::env::temp_dir().join(format!("innkeeper-load-{}", std::process::id()));
    let (mut child, addr, pid) = match args.addr {
        Some(addr) => (None, addr, args.pid.unwrap_or(0)),
        None => {
            let dir = data_dir.to_string_lossy().into_owned();
            let mut flags = if args.in_memory {
                vec!["--in-memory"]
            } else {
                vec!["--data-dir", dir.as_str()]
            };
            if args.spread > 1 {
                flags.extend(["--bind", "0.0.0.0"]);
            }
            let (child, addr, _) = wire::spawn_innkeeper_with(&wire::innkeeper_bin(), &flags)?;
            let pid = child.id();
            let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
            (Some(child), addr, pid)
        }
    };
    let rss_idle = rss_kib(pid);

    let mut setup = Client::connect_retry(addr, 30_000, Duration::from_secs(10))?;
    if setup.call_code(&create("/load", b"", 0))? != 0 {
        eprintln!("/load exists; reusing it");
    }
    for n in 0..NODES {
        setup.call_code(&create(&format!("/load/n-{n}"), b"0", 0))?;
    }
    setup.call_code(&create("/load/all", b"0", 0))?;

    // Open the watching connections from a few threads.
    let started = Instant::now();
    let watchers: Arc<Mutex<Vec<Client>>> = Arc::new(Mutex::new(Vec::new()));
    let connect_lat: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let n_openers = args.openers.max(1);
    let spread = args.spread;
    let openers: Vec<_> = (0..n_openers)
        .map(|t| {
            let watchers = watchers.clone();
            let connect_lat = connect_lat.clone();
            let n = args.connections;
            std::thread::spawn(move || -> std::io::Result<()> {
                for i in (t..n).step_by(n_openers) {
                    let t0 = Instant::now();
                    let mut c = Client::connect_patiently(
                        addr_for(addr, spread, i),
                        30_000,
                        Duration::from_secs(30),
                    )
                    .map_err(|e| {
                        eprintln!("connection {i}: {e} (is `ulimit -n` high enough?)");
                        e
                    })?;
                    c.call(&Request::AddWatch {
                        path: format!("/load/n-{}", i % NODES),
                        mode: 0,
                    })?;
                    c.call(&wire::get("/load/all", true))?;
                    connect_lat.lock().unwrap().push(t0.elapsed());
                    watchers.lock().unwrap().push(c);
                }
                Ok(())
            })
        })
        .collect();
    for o in openers {
        o.join().expect("opener thread")?;
    }
    let open_time = started.elapsed();
    let rss_connected = rss_kib(pid);
    let threads_connected = threads(pid);

    // One setData of /load/all: every session has a data watch on it.
    let notify_started = Instant::now();
    setup.send(&set("/load/all", b"1"))?;
    let mut notified = 0;
    let mut last_event = notify_started;
    {
        let mut list = watchers.lock().unwrap();
        let mut waiting: Vec<usize> = (0..list.len()).collect();
        let give_up = Instant::now() + Duration::from_secs(120);
        while !waiting.is_empty() && Instant::now() < give_up {
            waiting.retain(|&i| {
                let c = &mut list[i];
                if c.poll_events().is_err() {
                    return false;
                }
                match c.events.iter().find(|(_, e)| e.path == "/load/all") {
                    Some((at, _)) => {
                        notified += 1;
                        last_event = last_event.max(*at);
                        false
                    }
                    None => true,
                }
            });
        }
        for c in list.iter_mut() {
            c.events.clear();
        }
    }
    let notify_time = last_event - notify_started;
    setup.reply(innkeeper::proto::opcode::SET_DATA)?;
    let rss_notified = rss_kib(pid);

    // Poll watchers for notifications while writers write.
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let dead = Arc::new(AtomicU64::new(0));
    let poller = {
        let (watchers, stop, delivered, dead) = (
            watchers.clone(),
            stop.clone(),
            delivered.clone(),
            dead.clone(),
        );
        std::thread::spawn(move || {
            let mut last_round = false;
            loop {
                let mut list = watchers.lock().unwrap();
                let mut dead_now = 0;
                for c in list.iter_mut() {
                    match c.poll_events() {
                        Ok(n) => {
                            delivered.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(_) => dead_now += 1,
                    }
                }
                dead.store(dead_now, Ordering::Relaxed);
                drop(list);
                if last_round {
                    break;
                }
                if stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    last_round = true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let writers: Vec<_> = (0..args.writers)
        .map(|w| {
            std::thread::spawn(move || -> std::io::Result<Vec<Duration>> {
                let mut c = Client::connect(addr, 30_000)?;
                let mut lat = Vec::new();
                let mut i = w;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    c.call(&set(&format!("/load/n-{}", i % NODES), b"x"))?;
                    lat.push(t0.elapsed());
                    i += args.writers;
                }
                Ok(lat)
            })
        })
        .collect();
    let prober = std::thread::spawn(move || -> std::io::Result<Vec<Duration>> {
        let mut c = Client::connect(addr, 30_000)?;
        let mut lat = Vec::new();
        while Instant::now() < deadline {
            let t0 = Instant::now();
            c.call(&Request::Ping)?;
            lat.push(t0.elapsed());
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(lat)
    });
    let mut write_lat = Vec::new();
    for w in writers {
        write_lat.extend(w.join().expect("writer thread")?);
    }
    let mut ping_lat = prober.join().expect("prober thread")?;
    let rss_loaded = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    poller.join().expect("poller thread");

    write_lat.sort();
    ping_lat.sort();
    let mut connect_lat = connect_lat.lock().unwrap().clone();
    connect_lat.sort();
    let writes = write_lat.len() as u64;
    let per_node = args.connections as u64 / NODES as u64;
    let remainder = args.connections as u64 % NODES as u64;
    // Writes spread round-robin over the nodes; every node has per_node or
    // per_node + 1 watchers.
    let expected_low = writes * per_node;
    let expected_high = writes * (per_node + u64::from(remainder > 0));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("server: {addr} pid {pid}");
    println!(
        "connections: {} opened with a persistent watch each in {:.2} s (per connection p50 {:.2} ms, p99 {:.2} ms)",
        args.connections,
        open_time.as_secs_f64(),
        ms(percentile(&connect_lat, 50.0)),
        ms(percentile(&connect_lat, 99.0))
    );
    println!(
        "broadcast: one setData of /load/all notified {notified} of {} sessions; last event {:.1} ms after the write was sent",
        args.connections,
        ms(notify_time)
    );
    println!(
        "writes: {writes} setData by {} writers in {} s = {:.0}/s; latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        args.writers,
        args.seconds,
        writes as f64 / args.seconds as f64,
        ms(percentile(&write_lat, 50.0)),
        ms(percentile(&write_lat, 99.0)),
        ms(percentile(&write_lat, 100.0))
    );
    println!(
        "ping during load: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(percentile(&ping_lat, 50.0)),
        ms(percentile(&ping_lat, 99.0)),
        ms(percentile(&ping_lat, 100.0))
    );
    println!(
        "notifications delivered: {} (expected {expected_low}..={expected_high}); connections lost: {}",
        delivered.load(Ordering::Relaxed),
        dead.load(Ordering::Relaxed)
    );
    println!(
        "server RSS: {} KiB idle, {} KiB with {} connections ({} threads), {} KiB after the broadcast, {} KiB after the writes",
        rss_idle, rss_connected, args.connections, threads_connected, rss_notified, rss_loaded
    );
    drop(watchers);
    if let Some(child) = child.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}
