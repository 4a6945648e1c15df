//! One client load against any ZooKeeper-compatible server, for
//! `benches/compare-zookeeper.sh`. Prints `metric<TAB>value` lines; the
//! metric name ends in its unit and says whether lower or higher is better
//! (`_us`, `_ms`: lower; `_per_s`: higher).
//!
//! ```text
//! zkbench --addr 127.0.0.1:2181            # the workloads
//! zkbench --addr 127.0.0.1:2181 --ready-since-ns <epoch ns>   # start-to-ready
//! zkbench --addr 127.0.0.1:2181 --fill 100000                 # nodes for RSS
//! ```

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
