//! Session expiry and container/TTL reaping cost O(due), not O(all): with
//! 10 000 and then 100 000 sessions and as many containers and TTL nodes,
//! the time of a clock tick that expires nothing and reaps nothing, beside
//! one that expires 1 000 sessions and one that reaps 1 000 nodes. Each
//! size runs twice: with every session's heartbeats paused (only their
//! deadlines keep them) and with the long-lived sessions' heartbeats
//! running (attached in-process handles, which have no deadline at all).
//! Manual clock; timings only printed, never asserted.
//!
//! Run: `cargo bench --bench expiry`.

use std::time::{Duration, Instant};

use innkeeper::{Coordinator, CreateMode, CreateOptions, Keeper, ManualClock, Op};

const SIZES: [usize; 2] = [10_000, 100_000];
const DUE: usize = 1_000;
const TICK: Duration = Duration::from_millis(100);

fn main() {
    for size in SIZES {
        run(size, size, false);
        run(size, size, true);
    }
}

fn run(sessions_n: usize, special_nodes: usize, heartbeats: bool) {
    let kind = if heartbeats { "attached" } else { "paused" };
    let clock = ManualClock::new(1_700_000_000_000);
    let keeper = Keeper::builder()
        .clock(clock.clone())
        .tick(TICK)
        .reap_interval(TICK)
        .session_timeout_range(Duration::from_millis(200), Duration::from_secs(3600))
        .build()
        .expect("keeper");
    let admin = keeper
        .session_with_timeout(Duration::from_secs(3600))
        .expect("admin");
    // Containers with a child each (never due) and TTL nodes with a child
    // each (never due); DUE of each kind lose their child below.
    admin
        .create("/c", b"", CreateMode::Persistent)
        .expect("dir");
    let ttl = CreateOptions::new(CreateMode::PersistentWithTtl).ttl(Duration::from_millis(1));
    for chunk in (0..special_nodes).collect::<Vec<_>>().chunks(500) {
        let mut ops = Vec::new();
        for &i in chunk {
            let p = format!("/c/n{i}");
            if i % 2 == 0 {
                ops.push(Op::create(&p, b"", CreateMode::Container));
            } else {
                ops.push(Op::create_with(&p, Some(b""), &ttl));
            }
            ops.push(Op::create(format!("{p}/k"), b"", CreateMode::Persistent));
        }
        admin.multi(&ops).expect("special nodes");
    }
    // Sessions: DUE with a short timeout, the rest with an hour.
    let mut sessions = Vec::with_capacity(sessions_n);
    for i in 0..sessions_n {
        let timeout = if i < DUE {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(3600)
        };
        let s = keeper.session_with_timeout(timeout).expect("session");
        if i < DUE || !heartbeats {
            s.pause_heartbeats();
        }
        sessions.push(s);
    }
    let tick = |what: &str| {
        let before = keeper.session_ids().len();
        let nodes_before = keeper.node_count();
        let t = Instant::now();
        clock.advance(TICK);
        let took = t.elapsed();
        println!(
            "expiry/{sessions_n} sessions ({kind}), {special_nodes} containers+TTL: tick {what}: {took:.2?} \
             ({} sessions expired, {} nodes reaped)",
            before - keeper.session_ids().len(),
            nodes_before - keeper.node_count()
        );
    };
    tick("with nothing due");
    tick("with nothing due");
    // Their deadline is the first tick boundary after 0.5 s: the next
    // tick after this advance.
    clock.advance(Duration::from_millis(300));
    tick("expiring the short sessions");
    tick("with nothing due");
    let mut ops = Vec::new();
    for i in 0..DUE {
        ops.push(Op::delete(format!("/c/n{i}/k"), -1));
    }
    admin.multi(&ops).expect("unlink");
    tick("reaping");
    tick("with nothing due");
    drop(sessions);
}
