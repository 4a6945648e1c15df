//! Linearizability over the wire: concurrent `RemoteSession` clients
//! against `innkeeper serve` (a child process with a durable store in a
//! temporary directory) through a fault-injecting proxy, while the server
//! is SIGKILLed and restarted. Every call is recorded with its call and
//! return time (no return: ConnectionLoss or a timeout, outcome unknown),
//! and the histories are checked (`checker.rs`): per key a versioned
//! register with compare-and-set (getData, setData with and without a
//! version), sequential creates under one parent, and per session its
//! ephemeral (there while the session lives, gone once it is closed).
//!
//! Runs, each printing `histories: N passed, M failed`:
//! - the checker's own tests, histories it must accept and reject;
//! - `innkeeper serve` under kills and network faults;
//! - `innkeeper serve --unsafe-hold-back-batches` (acknowledges writes
//!   before writing them): the run must FAIL, or the check proves nothing;
//! - with `INNKEEPER_ZK=HOST:PORT`, that server (e.g. Apache ZooKeeper
//!   3.8) through the proxy, without kills (it is not ours to kill).
//!
//! `LIN_SECONDS` (default 3) is the length of each workload run,
//! `LIN_CLIENTS` (default 4) the clients, `LIN_SEED` the fault schedule.

mod checker;
mod proxy;
/// The library's own generator (`src/random.rs`), so seeded runs draw from
/// the same code as the library.
#[allow(dead_code)]
#[path = "../../src/random.rs"]
mod random;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use checker::{check, Entry, RegIn, RegOut, Register, Sequence, Verdict};
use innkeeper::{Coordinator, CreateMode, ErrorKind, RemoteSession};
use proxy::{Chaos, Proxy};

const KEYS: usize = 3;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `innkeeper serve` as a child process on a fixed port and directory.
struct Served {
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    hold_back: u32,
    child: Option<Child>,
    kills: u32,
}

impl Served {
    fn start(dir: &Path, hold_back: u32) -> Served {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut s = Served {
            bin: PathBuf::from(env!("CARGO_BIN_EXE_innkeeper")),
            port,
            dir: dir.to_path_buf(),
            hold_back,
            child: None,
            kills: 0,
        };
        s.spawn();
        s
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"))
            .expect("server log");
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "serve",
            "--port",
            &self.port.to_string(),
            "--tick-ms",
            "500",
        ])
        .arg("--data-dir")
        .arg(&self.dir)
        .args(["--max-client-connections", "0"])
        .stdout(Stdio::null())
        .stderr(log);
        if self.hold_back > 0 {
            cmd.args(["--unsafe-hold-back-batches", &self.hold_back.to_string()]);
        }
        self.child = Some(cmd.spawn().expect("spawn innkeeper serve"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "innkeeper serve did not come up; see {}",
                self.dir.with_extension("log").display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, then start again on the same port and directory.
    fn kill_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.kills += 1;
        self.spawn();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Default)]
struct Histories {
    keys: Vec<Vec<Entry<RegIn, RegOut>>>,
    seq: Vec<Entry<(), i64>>,
    /// (client, session id, ephemeral path)
    ephemerals: Vec<(usize, i64, String)>,
    /// Calls that got no answer, by error.
    errors: std::collections::BTreeMap<String, usize>,
}

fn connect(addr: &str) -> innkeeper::Result<RemoteSession> {
    RemoteSession::builder(addr)
        .session_timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(15))
        .request_timeout(Duration::from_secs(2))
        .connect()
}

fn unknown(e: &innkeeper::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionLoss | ErrorKind::OperationTimeout
    )
}

/// Retries a setup step across restarts and faults.
fn retry<T>(mut f: impl FnMut() -> innkeeper::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("setup failed: {e}"),
        }
    }
}

/// One client's loop: random reads, writes and CAS on the keys, and
/// sequential creates, until `stop`.
#[allow(clippy::too_many_arguments)]
fn client(
    id: usize,
    addr: String,
    root: String,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Histories>>,
    seed: u64,
) {
    let now = || epoch.elapsed().as_micros() as u64;
    let mut rng = random::Rng::seeded(seed);
    let mut next = move || rng.next_u64();
    let mut session = retry(|| connect(&addr));
    let eph = format!("{root}/eph/c{id}");
    retry(|| match session.create(&eph, b"", CreateMode::Ephemeral) {
        Err(e) if e.kind() == ErrorKind::NodeExists => Ok(eph.clone()),
        r => r,
    });
    let mut counter = 0u64;
    let mut known_version = [0i32; KEYS];
    while !stop.load(Ordering::Relaxed) {
        let key = (next() % KEYS as u64) as usize;
        let path = format!("{root}/k{key}");
        let call = now();
        let roll = next() % 100;
        if roll < 10 {
            let r = session.create(
                &format!("{root}/seq/s-"),
                b"",
                CreateMode::PersistentSequential,
            );
            let ret = now();
            let entry = match r {
                Ok(name) => {
                    let k: i64 = name[name.len() - 10..].parse().expect("suffix");
                    Entry {
                        client: id,
                        call,
                        ret: Some(ret),
                        input: (),
                        output: Some(k),
                    }
                }
                Err(e) if unknown(&e) || e.kind() == ErrorKind::SessionExpired => Entry {
                    client: id,
                    call,
                    ret: None,
                    input: (),
                    output: None,
                },
                // The parent should be there: an impossible answer.
                Err(e) if e.kind() == ErrorKind::NoNode => Entry {
                    client: id,
                    call,
                    ret: Some(ret),
                    input: (),
                    output: Some(-1),
                },
                Err(e) => panic!("client {id}: sequential create: {e}"),
            };
            out.lock().unwrap().seq.push(entry);
        } else {
            let input = match roll {
                10..=49 => RegIn::Read,
                50..=74 => {
                    counter += 1;
                    RegIn::Write(((id as u64 + 1) << 32) | counter)
                }
                _ => {
                    counter += 1;
                    RegIn::Cas(((id as u64 + 1) << 32) | counter, known_version[key])
                }
            };
            let result = match &input {
                RegIn::Read => session.get_data(&path).map(|(data, st)| {
                    let v = <[u8; 8]>::try_from(data.as_slice())
                        .ok()
                        .map_or(0, u64::from_be_bytes);
                    known_version[key] = st.version;
                    RegOut::Got(v, st.version)
                }),
                RegIn::Write(v) => session
                    .set_data(&path, &v.to_be_bytes(), -1)
                    .map(|st| RegOut::Written(st.version)),
                RegIn::Cas(v, exp) => match session.set_data(&path, &v.to_be_bytes(), *exp) {
                    Ok(st) => Ok(RegOut::Written(st.version)),
                    Err(e) if e.kind() == ErrorKind::BadVersion => Ok(RegOut::BadVersion),
                    Err(e) => Err(e),
                },
            };
            let ret = now();
            if std::env::var_os("LIN_DEBUG").is_some() {
                eprintln!(
                    "{} client {id} {:#x} {input:?} on {path}: {result:?}",
                    epoch.elapsed().as_millis(),
                    session.session_id()
                );
            }
            let entry = match result {
                Ok(o) => Entry {
                    client: id,
                    call,
                    ret: Some(ret),
                    input,
                    output: Some(o),
                },
                // A node that should be there is not: an impossible read.
                Err(e) if e.kind() == ErrorKind::NoNode => Entry {
                    client: id,
                    call,
                    ret: Some(ret),
                    input: RegIn::Read,
                    output: Some(RegOut::Got(u64::MAX, -1)),
                },
                Err(e) if unknown(&e) || e.kind() == ErrorKind::SessionExpired => {
                    *out.lock()
                        .unwrap()
                        .errors
                        .entry(format!("{:?}", e.kind()))
                        .or_default() += 1;
                    if matches!(input, RegIn::Read) {
                        continue;
                    }
                    Entry {
                        client: id,
                        call,
                        ret: None,
                        input,
                        output: None,
                    }
                }
                Err(e) => panic!("client {id}: {input:?}: {e}"),
            };
            out.lock().unwrap().keys[key].push(entry);
        }
        if session.state() == innkeeper::KeeperState::Expired {
            // Its ephemeral is gone with it; start over with a new session.
            session = retry(|| connect(&addr));
            retry(|| match session.create(&eph, b"", CreateMode::Ephemeral) {
                Err(e) if e.kind() == ErrorKind::NodeExists => Ok(eph.clone()),
                r => r,
            });
        }
        std::thread::sleep(Duration::from_micros(500 + next() % 1500));
    }
    out.lock()
        .unwrap()
        .ephemerals
        .push((id, session.session_id(), eph));
    // Keep the session until the ephemeral check ran: hand it over.
    SESSIONS.lock().unwrap().push(session);
}

static SESSIONS: Mutex<Vec<RemoteSession>> = Mutex::new(Vec::new());

/// The outcome of one run: histories checked and failed, with reasons.
struct Outcome {
    checked: usize,
    failed: Vec<String>,
    ops: usize,
    unknown: usize,
}

/// Runs the workload on `target` (a connect string reaching the server
/// through `proxy`), with `kill` called every so often, then checks.
fn workload(
    name: &str,
    proxy: &Proxy,
    seconds: u64,
    seed: u64,
    mut kill: impl FnMut(u32) -> bool,
) -> Outcome {
    let proxy_addr = &proxy.addr().to_string();
    let root = format!(
        "/lin-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    {
        let s = retry(|| connect(proxy_addr));
        for p in [root.clone(), format!("{root}/seq"), format!("{root}/eph")]
            .into_iter()
            .chain((0..KEYS).map(|k| format!("{root}/k{k}")))
        {
            retry(|| match s.create(&p, b"", CreateMode::Persistent) {
                Err(e) if e.kind() == ErrorKind::NodeExists => Ok(p.clone()),
                r => r,
            });
        }
        let _ = s.close();
    }
    let clients = env_u64("LIN_CLIENTS", 4) as usize;
    let out = Arc::new(Mutex::new(Histories {
        keys: (0..KEYS).map(|_| Vec::new()).collect(),
        ..Histories::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|id| {
            let (addr, root, stop, out) = (
                proxy_addr.to_string(),
                root.clone(),
                stop.clone(),
                out.clone(),
            );
            std::thread::spawn(move || client(id, addr, root, epoch, stop, out, seed + id as u64))
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut round = 0u32;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(400 + u64::from(round % 5) * 100));
        round += 1;
        if kill(round) {
            // A fresh session has seen no zxid, so the server cannot
            // refuse it the way it refuses clients that saw more than it
            // has (ZooKeeper's rule): its reads show what survived.
            fresh_reads(proxy_addr, &root, epoch, 1_000 + round as usize, &out);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("client thread");
    }
    let h = std::mem::take(&mut *out.lock().unwrap());
    proxy.calm();
    let mut failed = Vec::new();
    let mut checked = 0;
    let mut ops = 0;
    let mut unknown_ops = 0;
    for (k, history) in h.keys.iter().enumerate() {
        checked += 1;
        ops += history.len();
        unknown_ops += history.iter().filter(|e| e.ret.is_none()).count();
        match check(&Register, history, 20_000_000) {
            Verdict::Linearizable => {}
            Verdict::Violation { longest } => failed.push(format!(
                "{name}: key k{k}: not linearizable ({} ops; linearized {} before getting stuck; next ops: {:?})",
                history.len(),
                longest.len(),
                next_ops(history, &longest)
            )),
            Verdict::Unknown => println!("{name}: key k{k}: search budget exhausted (counted as passed)"),
        }
    }
    checked += 1;
    ops += h.seq.len();
    unknown_ops += h.seq.iter().filter(|e| e.ret.is_none()).count();
    if let Verdict::Violation { longest } = check(&Sequence, &h.seq, 20_000_000) {
        failed.push(format!(
            "{name}: sequential creates not linearizable ({} ops, stuck after {})",
            h.seq.len(),
            longest.len()
        ));
    }
    // Sessions: each live session's ephemeral is there, owned by it; once
    // the sessions close, every ephemeral is gone.
    let observer = retry(|| connect(proxy_addr));
    for (client, sid, path) in &h.ephemerals {
        checked += 1;
        match retry(|| observer.exists(path)) {
            Some(st) if st.ephemeral_owner == *sid => {}
            other => failed.push(format!(
                "{name}: client {client}: ephemeral {path} of live session {sid:#x}: {other:?}"
            )),
        }
    }
    let mut closed = std::collections::HashSet::new();
    for s in SESSIONS.lock().unwrap().drain(..) {
        let id = s.session_id();
        let before = s.state();
        let r = s.close();
        if std::env::var_os("LIN_DEBUG").is_some() {
            eprintln!("close {id:#x} in {before:?}: {r:?}");
        }
        // A close whose reply was lost has an unknown outcome.
        if r.is_ok() {
            closed.insert(id);
        }
    }
    for (client, sid, path) in &h.ephemerals {
        if !closed.contains(sid) {
            continue;
        }
        checked += 1;
        if let Some(st) = retry(|| observer.exists(path)) {
            failed.push(format!(
                "{name}: client {client}: {path} outlived its closed session {sid:#x} \
                 (owner {:#x}, czxid {:#x})",
                st.ephemeral_owner, st.czxid
            ));
        }
    }
    let _ = observer.delete_all(&root);
    println!("{name}: unanswered calls by error: {:?}", h.errors);
    Outcome {
        checked,
        failed,
        ops,
        unknown: unknown_ops,
    }
}

/// Reads every key (and the sequence's next number is not read: a read
/// of children would do, but the creates already check it) with a new
/// session, recording the reads.
fn fresh_reads(addr: &str, root: &str, epoch: Instant, id: usize, out: &Mutex<Histories>) {
    let Ok(s) = connect(addr) else { return };
    for key in 0..KEYS {
        let call = epoch.elapsed().as_micros() as u64;
        let r = s.get_data(&format!("{root}/k{key}"));
        let ret = epoch.elapsed().as_micros() as u64;
        let output = match r {
            Ok((data, st)) => RegOut::Got(
                <[u8; 8]>::try_from(data.as_slice())
                    .ok()
                    .map_or(0, u64::from_be_bytes),
                st.version,
            ),
            Err(e) if e.kind() == ErrorKind::NoNode => RegOut::Got(u64::MAX, -1),
            Err(_) => continue,
        };
        out.lock().unwrap().keys[key].push(Entry {
            client: id,
            call,
            ret: Some(ret),
            input: RegIn::Read,
            output: Some(output),
        });
    }
    let _ = s.close();
}

fn next_ops(h: &[Entry<RegIn, RegOut>], done: &[usize]) -> Vec<String> {
    let mut rest: Vec<usize> = (0..h.len()).filter(|i| !done.contains(i)).collect();
    rest.sort_by_key(|&i| h[i].call);
    rest.iter()
        .take(4)
        .map(|&i| {
            format!(
                "c{} {:?} -> {:?} [{}..{:?}]",
                h[i].client, h[i].input, h[i].output, h[i].call, h[i].ret
            )
        })
        .collect()
}

fn chaos() -> Chaos {
    Chaos {
        delay_percent: 5,
        delay_max_ms: 20,
        drop_percent: 1,
        reset_percent: 1,
        stall_percent: 1,
        stall_ms: 2_500,
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.iter().any(|a| !"linearizability".contains(a.as_str())) {
        println!("linearizability: filtered out");
        return;
    }
    let seconds = env_u64("LIN_SECONDS", 3);
    let seed = env_u64("LIN_SEED", 1);
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut bad = false;

    match checker::self_test() {
        Ok(n) => {
            println!("checker self-test: {n} passed, 0 failed");
            passed += n;
        }
        Err(e) => {
            println!("checker self-test FAILED: {e}");
            failed += 1;
            bad = true;
        }
    }

    let tmp = tempfile::tempdir().expect("tempdir");

    // innkeeper serve, killed and restarted, behind the faulty proxy.
    {
        let mut served = Served::start(&tmp.path().join("store"), 0);
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), served.addr(), chaos(), seed);
        let started = Instant::now();
        let o = workload("innkeeper serve", &proxy, seconds, seed, |round| {
            let due = round % 2 == 0;
            if due {
                served.kill_and_restart();
            }
            due
        });
        println!(
            "innkeeper serve: {} passed, {} failed ({} ops, {} unknown outcomes, {} SIGKILLs, proxy: {}; {:.1} s)",
            o.checked - o.failed.len(),
            o.failed.len(),
            o.ops,
            o.unknown,
            served.kills,
            proxy.summary(),
            started.elapsed().as_secs_f64()
        );
        for f in &o.failed {
            println!("  {f}");
        }
        passed += o.checked - o.failed.len();
        failed += o.failed.len();
        bad |= !o.failed.is_empty();
    }

    // The deliberately broken server must be caught.
    {
        let mut served = Served::start(&tmp.path().join("broken"), 1_000_000);
        let proxy = Proxy::start(
            "127.0.0.1:0".parse().unwrap(),
            served.addr(),
            Chaos::none(),
            seed,
        );
        let o = workload("broken serve", &proxy, seconds.min(3), seed, |round| {
            let due = round % 2 == 0;
            if due {
                served.kill_and_restart();
            }
            due
        });
        if o.failed.is_empty() {
            println!("broken serve (acks before writing): NOT caught: the checks are too weak");
            failed += 1;
            bad = true;
        } else {
            println!(
                "broken serve (acks before writing): caught, {} of {} histories rejected ({} ops, {} unknown, {} SIGKILLs):",
                o.failed.len(),
                o.checked,
                o.ops,
                o.unknown,
                served.kills
            );
            for f in &o.failed {
                println!("  {f}");
            }
            passed += 1;
        }
    }

    // A server named by INNKEEPER_ZK (the control: Apache ZooKeeper).
    match std::env::var("INNKEEPER_ZK").ok().filter(|s| !s.is_empty()) {
        Some(target) => {
            let target: SocketAddr = target
                .split(',')
                .next()
                .and_then(|a| std::net::ToSocketAddrs::to_socket_addrs(a).ok()?.next())
                .expect("INNKEEPER_ZK=HOST:PORT");
            let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), target, chaos(), seed);
            let o = workload("INNKEEPER_ZK", &proxy, seconds, seed, |_| false);
            println!(
                "INNKEEPER_ZK={target}: {} passed, {} failed ({} ops, {} unknown outcomes, proxy: {})",
                o.checked - o.failed.len(),
                o.failed.len(),
                o.ops,
                o.unknown,
                proxy.summary()
            );
            for f in &o.failed {
                println!("  {f}");
            }
            passed += o.checked - o.failed.len();
            failed += o.failed.len();
            bad |= !o.failed.is_empty();
        }
        None => println!("INNKEEPER_ZK not set: no run against another server (not counted)"),
    }

    println!("linearizability: {passed} passed, {failed} failed");
    drop(tmp);
    if bad {
        std::process::exit(1);
    }
}
