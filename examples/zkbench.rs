//! One client load against any ZooKeeper-compatible server, for
//! `benches/compare-zookeeper.sh`. Prints `metric<TAB>value` lines; the
//! metric name ends in its unit and says whether lower or higher is better
//! (`_us`, `_ms`: lower; `_per_s`: higher).
//!
//! ```text
//! zkbench --addr 127.0.0.1:2181            # the workloads
//! zkbench --addr 127.0.0.1:2181 --ready-since-ns <epoch ns>   # start-to-ready
//! zkbench --addr 127.0.0.1:2181 --fill 100000                 # nodes for RSS
//! zkbench --addr 127.0.0.1:2181 --populate 1000000 --window 100
//! zkbench --addr 127.0.0.1:2181 --first-get /pop/b0/n0 --ready-since-ns <epoch ns>
//! ```
//!
//! `--populate N` (for `benches/compare-scale.sh`) creates N nodes of 16 B
//! at `/pop/b<i/1000>/n<i%1000>` (each `/pop/b<k>` created just before its
//! first child, in the same pipeline) and prints the load rate and the
//! worst and 99th-percentile write latency. `--first-get PATH` retries a
//! connect and a getData of PATH until one succeeds and prints the time
//! since `--ready-since-ns` (a restarting server's start).

#[path = "support/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use innkeeper::proto::{opcode, Request};
use wire::{create, delete, get, percentile, set, Client};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    addr: SocketAddr,
    /// Wait for the first session and print the time since this instant.
    #[arg(long)]
    ready_since_ns: Option<u128>,
    /// Create this many 100-byte nodes (pipelined) and exit.
    #[arg(long)]
    fill: Option<usize>,
    /// Create this many 16-byte nodes under /pop, `--window` outstanding,
    /// print the rate and write latencies, and exit.
    #[arg(long)]
    populate: Option<usize>,
    /// With `--populate`: print to stderr, per second of the load, the
    /// writes sent in it and the worst reply time among them (to line slow
    /// writes up with a server's log).
    #[arg(long)]
    timeline: bool,
    /// With `--ready-since-ns`: the time until a getData of this path
    /// succeeds, not only a session.
    #[arg(long)]
    first_get: Option<String>,
    /// Operations per latency series.
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Operations per pipelined throughput run.
    #[arg(long, default_value_t = 20000)]
    pipelined: usize,
    /// Requests outstanding at once in the pipelined runs (an async client
    /// with this many in flight).
    #[arg(long, default_value_t = 1000)]
    window: usize,
    /// Seconds per concurrency level.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn emit(metric: &str, value: f64) {
    println!("{metric}\t{value:.1}");
}

fn latency_series(
    c: &mut Client,
    name: &str,
    requests: impl Iterator<Item = Request>,
) -> std::io::Result<()> {
    let mut lat = Vec::new();
    for r in requests {
        let t0 = Instant::now();
        let code = c.call_code(&r)?;
        lat.push(t0.elapsed());
        assert_eq!(code, 0, "{name}: error {code}");
    }
    lat.sort();
    emit(&format!("{name}_sync_p50_us"), us(percentile(&lat, 50.0)));
    emit(&format!("{name}_sync_p99_us"), us(percentile(&lat, 99.0)));
    Ok(())
}

fn throughput(
    c: &mut Client,
    name: &str,
    window: usize,
    requests: Vec<Request>,
) -> std::io::Result<()> {
    let n = requests.len();
    let t0 = Instant::now();
    c.pipeline_window(&requests, window)?;
    emit(
        &format!("{name}_pipelined_ops_per_s"),
        n as f64 / t0.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let addr = args.addr;
    if let (Some(since), Some(path)) = (args.ready_since_ns, &args.first_get) {
        return first_get(addr, since, path);
    }
    if let Some(n) = args.populate {
        return populate(addr, n, args.window, args.timeline);
    }
    if let Some(since) = args.ready_since_ns {
        let c = Client::connect_retry(addr, 30_000, Duration::from_secs(60))?;
        drop(c);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        emit("start_to_first_session_ms", (now - since) as f64 / 1e6);
        return Ok(());
    }
    let mut c = Client::connect_retry(addr, 30_000, Duration::from_secs(30))?;
    if let Some(n) = args.fill {
        c.call_code(&create("/fill", b"", 0))?;
        let data = [b'x'; 100];
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let reqs: Vec<Request> = chunk
                .iter()
                .map(|i| create(&format!("/fill/node-{i:08}"), &data, 0))
                .collect();
            c.pipeline(&reqs)?;
        }
        emit("filled_nodes", n as f64);
        return Ok(());
    }
    let base = format!("/bench-{}", std::process::id());
    c.call(&create(&base, b"", 0))?;

    // Sync latency, one client.
    let n = args.ops;
    latency_series(
        &mut c,
        "create",
        (0..n).map(|i| create(&format!("{base}/s-{i}"), b"0123456789", 0)),
    )?;
    latency_series(
        &mut c,
        "getData",
        (0..n).map(|i| get(&format!("{base}/s-{i}"), false)),
    )?;
    latency_series(
        &mut c,
        "setData",
        (0..n).map(|i| set(&format!("{base}/s-{i}"), b"abcdefghij")),
    )?;

    // Pipelined throughput, one client.
    let p = args.pipelined;
    let w = args.window;
    throughput(
        &mut c,
        "create",
        w,
        (0..p)
            .map(|i| create(&format!("{base}/p-{i}"), b"0123456789", 0))
            .collect(),
    )?;
    throughput(
        &mut c,
        "getData",
        w,
        (0..p)
            .map(|i| get(&format!("{base}/p-{i}"), false))
            .collect(),
    )?;
    throughput(
        &mut c,
        "setData",
        w,
        (0..p)
            .map(|i| set(&format!("{base}/p-{i}"), b"abcdefghij"))
            .collect(),
    )?;
    throughput(
        &mut c,
        "delete",
        w,
        (0..p).map(|i| delete(&format!("{base}/p-{i}"))).collect(),
    )?;

    // Concurrent clients, each alternating sync getData and setData.
    for clients in [1usize, 4, 16] {
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
        let started = Instant::now();
        let workers: Vec<_> = (0..clients)
            .map(|w| {
                let base = base.clone();
                std::thread::spawn(move || -> std::io::Result<u64> {
                    let mut c = Client::connect(addr, 30_000)?;
                    let mut ops = 0u64;
                    let mut i = w;
                    while Instant::now() < deadline {
                        let path = format!("{base}/s-{}", i % n);
                        if ops % 2 == 0 {
                            c.call(&get(&path, false))?;
                        } else {
                            c.call(&set(&path, b"x"))?;
                        }
                        ops += 1;
                        i += clients;
                    }
                    Ok(ops)
                })
            })
            .collect();
        let mut total = 0;
        for w in workers {
            total += w.join().expect("worker")?;
        }
        emit(
            &format!("mixed_{clients}_clients_ops_per_s"),
            total as f64 / started.elapsed().as_secs_f64(),
        );
    }

    // Watch notification latency: writer's send to watcher's receipt.
    let mut watcher = Client::connect(addr, 30_000)?;
    let watched = format!("{base}/watched");
    c.call(&create(&watched, b"", 0))?;
    let mut lat = Vec::new();
    for _ in 0..(n / 4).max(10) {
        watcher.call(&get(&watched, true))?;
        let t0 = Instant::now();
        c.send(&set(&watched, b"w"))?;
        // The watcher has nothing else outstanding: the next frame is the event.
        let frame = watcher.read_frame()?;
        assert!(innkeeper::proto::decode_notification(&frame).is_ok());
        lat.push(t0.elapsed());
        watcher.events.clear();
        c.reply(opcode::SET_DATA)?;
    }
    lat.sort();
    emit("watch_notify_p50_us", us(percentile(&lat, 50.0)));
    emit("watch_notify_p99_us", us(percentile(&lat, 99.0)));

    // Connect: TCP connect + session handshake; then closeSession.
    let mut lat = Vec::new();
    for _ in 0..100 {
        let t0 = Instant::now();
        let mut s = Client::connect(addr, 30_000)?;
        lat.push(t0.elapsed());
        s.call(&Request::CloseSession)?;
    }
    lat.sort();
    emit("connect_p50_us", us(percentile(&lat, 50.0)));
    emit("connect_p99_us", us(percentile(&lat, 99.0)));
    Ok(())
}

fn epoch_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Connect and getData `path`, retried until one succeeds (a server that is
/// still starting refuses, resets or cannot serve yet); at most 10 minutes.
fn first_get(addr: SocketAddr, since_ns: u128, path: &str) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let attempt = Client::connect_retry(addr, 30_000, Duration::from_secs(600))
            .and_then(|mut c| c.call_code(&get(path, false)));
        match attempt {
            Ok(0) => break,
            Ok(code) if Instant::now() >= deadline => {
                return Err(std::io::Error::other(format!(
                    "getData {path}: error {code}"
                )))
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    emit(
        "restart_to_first_get_ms",
        (epoch_ns() - since_ns) as f64 / 1e6,
    );
    Ok(())
}

/// The population of the scale comparison: `n` nodes of 16 bytes at
/// `/pop/b<i/1000>/n<i%1000>`, `window` requests outstanding.
fn populate(addr: SocketAddr, n: usize, window: usize, timeline: bool) -> std::io::Result<()> {
    let mut c = Client::connect_retry(addr, 30_000, Duration::from_secs(60))?;
    c.call(&create("/pop", b"", 0))?;
    let data = [b'v'; 16];
    // Request j: the bucket create before each thousandth node, else a node.
    let buckets = n.div_ceil(1000);
    let total = n + buckets;
    let t0 = Instant::now();
    let lat = c.pipeline_window_timed(total, window, |j| {
        let (bucket, slot) = (j / 1001, j % 1001);
        if slot == 0 {
            create(&format!("/pop/b{bucket}"), b"", 0)
        } else {
            create(&format!("/pop/b{bucket}/n{}", slot - 1), &data, 0)
        }
    })?;
    let took = t0.elapsed();
    if timeline {
        print_timeline(t0, &lat);
    }
    let mut sorted: Vec<Duration> = lat.iter().map(|t| t.latency).collect();
    sorted.sort();
    emit("load_nodes_per_s", n as f64 / took.as_secs_f64());
    emit(
        "load_worst_write_ms",
        sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    emit(
        "load_p99_write_ms",
        percentile(&sorted, 99.0).as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Per second since `t0`: writes sent, worst reply time, wall clock of the
/// second's start (to match a server's log timestamps).
fn print_timeline(t0: Instant, lat: &[wire::Timed]) {
    let wall0 = SystemTime::now() - t0.elapsed();
    let mut second = 0u64;
    let (mut sent, mut worst) = (0usize, Duration::ZERO);
    let flush = |second: u64, sent: usize, worst: Duration| {
        let at = (wall0 + Duration::from_secs(second))
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "t+{second:>4}s (epoch {}.000): {sent:>6} writes, worst {:>7.1} ms",
            at.as_secs(),
            worst.as_secs_f64() * 1e3
        );
    };
    for t in lat {
        let s = (t.sent - t0).as_secs();
        while s > second {
            flush(second, sent, worst);
            (sent, worst) = (0, Duration::ZERO);
            second += 1;
        }
        sent += 1;
        worst = worst.max(t.latency);
    }
    flush(second, sent, worst);
}
