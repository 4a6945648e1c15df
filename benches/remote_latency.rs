//! Per-operation latency of the remote client against a ZooKeeper server,
//! the same loop as `.ci/latency/RemoteLatency.java` runs with the Java
//! client (`.ci/latency.sh` runs both and prints the ratios).
//!
//! `INNKEEPER_ZK=127.0.0.1:21810 cargo bench --bench remote_latency [-- ITERATIONS]`;
//! without `INNKEEPER_ZK` it does nothing.

use std::time::{Duration, Instant};

use innkeeper::{Coordinator, CreateMode, CreateOptions, RemoteSession};

type Step = Box<dyn Fn(&RemoteSession, &str, usize)>;

fn main() {
    let Ok(connect) = std::env::var("INNKEEPER_ZK") else {
        eprintln!("INNKEEPER_ZK is not set: nothing to measure");
        return;
    };
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let zk = RemoteSession::connect(&connect, Duration::from_secs(10)).expect("connect");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let root = format!("/latency-rust-{nanos}");
    zk.create(&root, b"", CreateMode::Persistent).expect("root");
    let data = vec![0u8; 100];
    let steps: Vec<(&str, Step)> = vec![
        (
            "create",
            Box::new(move |zk, root, i| {
                let options = CreateOptions::new(CreateMode::Persistent);
                zk.create_with(&format!("{root}/n{i}"), Some(&data), &options)
                    .expect("create");
            }),
        ),
        (
            "exists",
            Box::new(|zk, root, i| {
                zk.exists(&format!("{root}/n{i}")).expect("exists");
            }),
        ),
        (
            "get_data",
            Box::new(|zk, root, i| {
                zk.get_data(&format!("{root}/n{i}")).expect("get_data");
            }),
        ),
        (
            "set_data",
            Box::new(|zk, root, i| {
                zk.set_data(&format!("{root}/n{i}"), &[0u8; 100], -1)
                    .expect("set_data");
            }),
        ),
        (
            "get_children",
            Box::new(|zk, root, _| {
                zk.get_children_with(root, None).expect("get_children");
            }),
        ),
        (
            "delete",
            Box::new(|zk, root, i| {
                zk.delete(&format!("{root}/n{i}"), -1).expect("delete");
            }),
        ),
    ];
    // One warm-up round, then the measured one, as the Java program does.
    for round in 0..2 {
        for (name, step) in &steps {
            let mut durations = Vec::with_capacity(n);
            for i in 0..n {
                let started = Instant::now();
                step(&zk, &root, i);
                durations.push(started.elapsed());
            }
            if round == 1 {
                durations.sort();
                let mean = durations.iter().sum::<Duration>() / u32::try_from(n).unwrap_or(1);
                let micros = |d: Duration| d.as_secs_f64() * 1e6;
                println!(
                    "rust {name:<13} mean {:7.1} us  p50 {:7.1} us  p99 {:7.1} us",
                    micros(mean),
                    micros(durations[n / 2]),
                    micros(durations[n * 99 / 100]),
                );
            }
        }
    }
    zk.delete(&root, -1).expect("delete root");
    zk.close().expect("close");
}
