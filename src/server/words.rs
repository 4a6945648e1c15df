//! Four-letter words (`zookeeper-reference.md` H.11): plain-text answers in
//! ZooKeeper's formats, so monitoring scripts and client libraries that
//! parse them (kazoo's `server_version()` reads `envi`) work unchanged.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::Shared;

/// What `srvr`, `mntr` and `envi` report as the version. Parsers look for
/// leading digits and dots; the suffix names the implementation.
pub(crate) const VERSION: &str = concat!(
    "3.8.0-innkeeper-",
    env!("CARGO_PKG_VERSION"),
    ", built on 1970-01-01 00:00 UTC"
);

/// The text a word answers (the caller writes it and closes).
pub(crate) fn answer(shared: &Shared, word: &str) -> String {
    if !shared.config.four_letter_words.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    match word {
        "ruok" => "imok".to_string(),
        "isro" => "rw".to_string(),
        "srvr" => srvr(shared, false),
        "stat" => srvr(shared, true),
        "mntr" => mntr(shared),
        "cons" => cons(shared),
        "envi" => envi(shared),
        "conf" => conf(shared),
        "wchs" => wchs(shared),
        "wchc" => wchc(shared),
        "wchp" => wchp(shared),
        "dump" => dump(shared),
        "crst" => "Connection stats reset.\n".to_string(),
        "srst" => "Server stats reset.\n".to_string(),
        "dirs" => "datadir_size: 0\nlogdir_size: 0\n".to_string(),
        "gtmk" | "stmk" => "0\n".to_string(),
        _ => String::new(),
    }
}

/// ZooKeeper counts `""` as an alias of `/` in its node map, so a fresh
/// server reports 5 nodes (reference A.2); report the same.
fn node_count(shared: &Shared) -> usize {
    shared.keeper.node_count() + 1
}

fn srvr(shared: &Shared, with_clients: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Zookeeper version: {VERSION}");
    if with_clients {
        out.push_str("Clients:\n");
        for conn in shared.connections() {
            let info = conn.info.lock().clone();
            let (queued, _) = conn.queued();
            let _ = writeln!(
                out,
                " /{}[1](queued={queued},recved={},sent={})",
                conn.peer, info.received, info.sent
            );
        }
        out.push('\n');
    }
    let latency = *shared.stats.latency.lock();
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{:.4}/{}",
        latency.min_ms,
        latency.avg_ms(),
        latency.max_ms
    );
    let _ = writeln!(
        out,
        "Received: {}",
        shared.stats.packets_received.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "Sent: {}",
        shared.stats.packets_sent.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "Connections: {}", shared.connections().len());
    out.push_str("Outstanding: 0\n");
    let _ = writeln!(out, "Zxid: {:#x}", shared.keeper.last_zxid());
    out.push_str("Mode: standalone\n");
    let _ = writeln!(out, "Node count: {}", node_count(shared));
    out
}

fn mntr(shared: &Shared) -> String {
    let latency = *shared.stats.latency.lock();
    let engine = &shared.keeper.engine;
    let (sessions, ephemerals, data_size) = engine.with_state(|s| {
        (
            s.sessions.len(),
            s.tree.ephemeral_count(),
            s.tree.approximate_data_size(),
        )
    });
    let watches = engine.with_watches(|w| w.len());
    let mut out = String::new();
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "zk_{k}\t{v}");
    };
    kv("version", VERSION.to_string());
    kv("server_state", "standalone".to_string());
    kv("avg_latency", format!("{:.1}", latency.avg_ms()));
    kv("max_latency", latency.max_ms.to_string());
    kv("min_latency", latency.min_ms.to_string());
    kv(
        "packets_received",
        shared
            .stats
            .packets_received
            .load(Ordering::Relaxed)
            .to_string(),
    );
    kv(
        "packets_sent",
        shared
            .stats
            .packets_sent
            .load(Ordering::Relaxed)
            .to_string(),
    );
    kv(
        "num_alive_connections",
        shared.connections().len().to_string(),
    );
    kv("outstanding_requests", "0".to_string());
    kv("znode_count", node_count(shared).to_string());
    kv("watch_count", watches.to_string());
    kv("ephemerals_count", ephemerals.to_string());
    kv("approximate_data_size", data_size.to_string());
    kv("open_file_descriptor_count", open_fds().to_string());
    kv("max_file_descriptor_count", "0".to_string());
    kv("uptime", shared.started.elapsed().as_millis().to_string());
    kv("global_sessions", sessions.to_string());
    kv("local_sessions", "0".to_string());
    out
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn cons(shared: &Shared) -> String {
    let mut out = String::new();
    for conn in shared.connections() {
        let info = conn.info.lock().clone();
        let (queued, _) = conn.queued();
        let sid = conn.session_id().unwrap_or(0);
        let _ = writeln!(
            out,
            " /{}[1](queued={queued},recved={},sent={},sid={sid:#x},lop={},est={},to={},lcxid={:#x},lzxid={:#x},lresp={},llat={},minlat={},avglat={:.4},maxlat={})",
            conn.peer,
            info.received,
            info.sent,
            if info.last_op.is_empty() { "NA" } else { info.last_op },
            conn.established_ms,
            info.timeout_ms,
            info.last_cxid,
            info.last_zxid,
            info.last_response_ms,
            info.last_latency_ms,
            info.latency.min_ms,
            info.latency.avg_ms(),
            info.latency.max_ms,
        );
    }
    out.push('\n');
    out
}

fn envi(shared: &Shared) -> String {
    let mut out = String::from("Environment:\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    let dir = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let _ = writeln!(out, "zookeeper.version={VERSION}");
    let _ = writeln!(out, "host.name={host}");
    let _ = writeln!(out, "java.version=none (innkeeper is Rust)");
    let _ = writeln!(out, "os.name={}", std::env::consts::OS);
    let _ = writeln!(out, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(out, "user.dir={dir}");
    let _ = writeln!(
        out,
        "innkeeper.data.dir={}",
        shared
            .config
            .data_dir
            .as_ref()
            .map_or("(in memory)".to_string(), |d| d.display().to_string())
    );
    out
}

fn conf(shared: &Shared) -> String {
    let engine = &shared.keeper.engine;
    let data_dir = shared
        .config
        .data_dir
        .as_ref()
        .map_or(String::new(), |d| d.display().to_string());
    let mut out = String::new();
    let _ = writeln!(out, "clientPort={}", shared.local_addr.port());
    out.push_str("secureClientPort=-1\n");
    let _ = writeln!(out, "dataDir={data_dir}");
    out.push_str("dataDirSize=0\n");
    let _ = writeln!(out, "dataLogDir={data_dir}");
    out.push_str("dataLogSize=0\n");
    let _ = writeln!(out, "tickTime={}", engine.config.tick_ms);
    let _ = writeln!(
        out,
        "maxClientCnxns={}",
        shared.config.connections_per_ip_max
    );
    let _ = writeln!(
        out,
        "minSessionTimeout={}",
        engine.config.session_timeout_min_ms
    );
    let _ = writeln!(
        out,
        "maxSessionTimeout={}",
        engine.config.session_timeout_max_ms
    );
    out.push_str("clientPortListenBacklog=-1\n");
    out.push_str("serverId=0\n");
    out
}

fn wchs(shared: &Shared) -> String {
    let (sessions, paths, total) = shared
        .keeper
        .engine
        .with_watches(|w| (w.sessions().len(), w.sessions_by_path().len(), w.len()));
    format!("{sessions} connections watching {paths} paths\nTotal watches:{total}\n")
}

fn wchc(shared: &Shared) -> String {
    let mut out = String::new();
    shared.keeper.engine.with_watches(|w| {
        for sid in w.sessions() {
            let _ = writeln!(out, "{sid:#x}");
            for p in w.paths_of(sid) {
                let _ = writeln!(out, "\t{p}");
            }
        }
    });
    out
}

fn wchp(shared: &Shared) -> String {
    let mut out = String::new();
    shared.keeper.engine.with_watches(|w| {
        for (p, sids) in w.sessions_by_path() {
            let _ = writeln!(out, "{p}");
            for sid in sids {
                let _ = writeln!(out, "\t{sid:#x}");
            }
        }
    });
    out
}

fn dump(shared: &Shared) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    let engine = &shared.keeper.engine;
    engine.with_state(|s| {
        let ids = s.sessions.ids();
        let _ = writeln!(out, "Global Sessions({}):", ids.len());
        for id in &ids {
            if let Some(entry) = s.sessions.get(*id) {
                let _ = writeln!(out, "{id:#x}\t{}ms", entry.timeout_ms);
            }
        }
        out.push_str("ephemeral nodes dump:\n");
        let mut owners: Vec<i64> = s.tree.ephemeral_owners().collect();
        owners.sort_unstable();
        owners.dedup();
        let _ = writeln!(out, "Sessions with Ephemerals ({}):", owners.len());
        for owner in owners {
            let _ = writeln!(out, "{owner:#x}:");
            let mut paths: Vec<&String> = s.tree.ephemerals_of(owner).collect();
            paths.sort();
            for p in paths {
                let _ = writeln!(out, "\t{p}");
            }
        }
    });
    out.push_str("Connections dump:\n");
    let conns = shared.connections();
    let _ = writeln!(out, "Connections ({}):", conns.len());
    for conn in conns {
        let _ = writeln!(
            out,
            "\t{} sid={:#x}",
            conn.peer,
            conn.session_id().unwrap_or(0)
        );
    }
    out
}
