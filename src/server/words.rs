//! Four-letter words (`docs/zookeeper-semantics.md` H.11): plain-text answers in
//! ZooKeeper's formats, so monitoring scripts and client libraries that
//! parse them (kazoo's `server_version()` reads `envi`) work unchanged.

use std::collections::{BTreeMap, BTreeSet};
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

/// Every word ZooKeeper 3.8 knows.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst",
    "srvr", "stat", "stmk", "wchc", "wchp", "wchs",
];

/// ZooKeeper 3.8's `mntr` keys after `version` and `server_state`, in its
/// order, with the kind of value and what an idle standalone server
/// reports (taken from a ZooKeeper 3.8.0 server's `mntr`).
const MNTR_KEYS: &str = include_str!("mntr_keys.tsv");

/// One `mntr` value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Float(v) => java_double(*v),
            Value::Text(v) => v.clone(),
        }
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        match self {
            Value::Int(v) => serde_json::Value::from(*v),
            Value::Float(v) => serde_json::Value::from(*v),
            Value::Text(v) => serde_json::Value::from(v.as_str()),
        }
    }
}

/// The text a word answers (the caller writes it and closes).
pub(crate) fn answer(shared: &Shared, word: &str) -> String {
    if !shared.config.four_letter_words.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    answer_unchecked(shared, word)
}

/// The text of a word, whitelist or not (the AdminServer is not subject
/// to `4lw.commands.whitelist`).
pub(crate) fn answer_unchecked(shared: &Shared, word: &str) -> String {
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
        "dirs" => {
            let size = data_dir_bytes(shared);
            format!("datadir_size: {size}\nlogdir_size: {size}\n")
        }
        "gtmk" | "stmk" => "0\n".to_string(),
        _ => String::new(),
    }
}

/// ZooKeeper counts `""` as an alias of `/` in its node map, so a fresh
/// server reports 5 nodes (docs/zookeeper-semantics.md A.2); report the same.
pub(crate) fn node_count(shared: &Shared) -> usize {
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
                " /{}[{}](queued={queued},recved={},sent={})",
                conn.peer,
                u8::from(conn.session_id().is_some()),
                info.received,
                info.sent
            );
        }
        out.push('\n');
    }
    let latency = *shared.stats.latency.lock();
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        latency.min_ms,
        java_double(latency.avg_ms_rounded()),
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
    let _ = writeln!(out, "Outstanding: {}", outstanding(shared));
    let _ = writeln!(out, "Zxid: {:#x}", shared.keeper.last_zxid());
    out.push_str("Mode: standalone\n");
    let _ = writeln!(out, "Node count: {}", node_count(shared));
    out
}

fn mntr(shared: &Shared) -> String {
    let mut out = String::new();
    for (key, value) in monitor(shared) {
        let _ = writeln!(out, "zk_{key}\t{}", value.text());
    }
    out
}

/// Every `mntr` key with its value, in ZooKeeper 3.8's order. Keys for
/// parts innkeeper does not have (quorum, request throttling, processor
/// queues, …) carry what an idle standalone ZooKeeper reports.
pub(crate) fn monitor(shared: &Shared) -> Vec<(String, Value)> {
    let latency = *shared.stats.latency.lock();
    let engine = &shared.keeper.engine;
    let (sessions, ephemerals, data_size) = engine.with_state(|s| {
        (
            s.sessions.len(),
            s.tree.ephemeral_count(),
            s.tree.approximate_data_size(),
        )
    });
    let watches = engine.watch_count();
    let count = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let counter = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let real = |key: &str| -> Option<Value> {
        Some(match key {
            "avg_latency" => Value::Float(latency.avg_ms_rounded()),
            "max_latency" => counter(latency.max_ms),
            "min_latency" => counter(latency.min_ms),
            "packets_received" => counter(shared.stats.packets_received.load(Ordering::Relaxed)),
            "packets_sent" => counter(shared.stats.packets_sent.load(Ordering::Relaxed)),
            "num_alive_connections" => count(shared.connections().len()),
            "outstanding_requests" => counter(outstanding(shared)),
            "znode_count" => count(node_count(shared)),
            "watch_count" => count(watches),
            "ephemerals_count" => count(ephemerals),
            "approximate_data_size" => counter(data_size),
            "open_file_descriptor_count" => count(open_fds()),
            "max_file_descriptor_count" => counter(max_fds()),
            "uptime" => counter(u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(0)),
            "global_sessions" => count(sessions),
            "local_sessions" => Value::Int(0),
            _ => return None,
        })
    };
    let mut out = vec![
        ("version".to_string(), Value::Text(VERSION.to_string())),
        (
            "server_state".to_string(),
            Value::Text("standalone".to_string()),
        ),
    ];
    for line in MNTR_KEYS.lines() {
        let mut fields = line.split('\t');
        let (Some(key), Some(kind), Some(idle)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let value = real(key).unwrap_or_else(|| {
            if kind == "f" {
                Value::Float(idle.parse().unwrap_or(0.0))
            } else {
                Value::Int(idle.parse().unwrap_or(0))
            }
        });
        out.push((key.to_string(), value));
    }
    out
}

/// Bytes under the data directory (0 in memory), as `conf` and `dirs`
/// report ZooKeeper's data and log directory sizes.
pub(crate) fn data_dir_bytes(shared: &Shared) -> u64 {
    shared
        .config
        .data_dir
        .as_deref()
        .map_or(0, crate::store::disk::dir_bytes)
}

/// The soft limit on open files, from `/proc/self/limits` (0 if unknown).
pub(crate) fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn cons(shared: &Shared) -> String {
    let mut out = String::new();
    for conn in shared.connections() {
        let info = conn.info.lock().clone();
        let (queued, _) = conn.queued();
        let Some(sid) = conn.session_id() else {
            // A connection without a session (like this one) gets the short form.
            let _ = writeln!(
                out,
                " /{}[0](queued={queued},recved={},sent={})",
                conn.peer, info.received, info.sent
            );
            continue;
        };
        let avg = info
            .latency
            .total_ms
            .checked_div(info.latency.count)
            .unwrap_or(0);
        let _ = writeln!(
            out,
            " /{}[1](queued={queued},recved={},sent={},sid={sid:#x},lop={},est={},to={},lcxid={:#x},lzxid={:#x},lresp={},llat={},minlat={},avglat={avg},maxlat={})",
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
    let size = data_dir_bytes(shared);
    let _ = writeln!(out, "dataDirSize={size}");
    let _ = writeln!(out, "dataLogDir={data_dir}");
    let _ = writeln!(out, "dataLogSize={size}");
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

/// Requests received and not yet answered, server-wide.
pub(crate) fn outstanding(shared: &Shared) -> u64 {
    shared.stats.outstanding.load(Ordering::Relaxed)
}

/// `wchs`, `wchc` and `wchp` report the data table (getData/exists and
/// persistent watches), as ZooKeeper's do.
pub(crate) fn data_watches(shared: &Shared) -> BTreeMap<String, Vec<i64>> {
    shared.keeper.engine.data_watches_by_path()
}

fn wchs(shared: &Shared) -> String {
    let by_path = data_watches(shared);
    let sessions: BTreeSet<i64> = by_path.values().flatten().copied().collect();
    let total: usize = by_path.values().map(Vec::len).sum();
    format!(
        "{} connections watching {} paths\nTotal watches:{total}\n",
        sessions.len(),
        by_path.len()
    )
}

fn wchc(shared: &Shared) -> String {
    let mut by_session: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (p, sids) in data_watches(shared) {
        for sid in sids {
            by_session.entry(sid).or_default().push(p.clone());
        }
    }
    let mut out = String::new();
    for (sid, paths) in by_session {
        let _ = writeln!(out, "{sid:#x}");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push('\n');
    out
}

fn wchp(shared: &Shared) -> String {
    let mut out = String::new();
    for (p, sids) in data_watches(shared) {
        let _ = writeln!(out, "{p}");
        for sid in sids {
            let _ = writeln!(out, "\t{sid:#x}");
        }
    }
    out.push('\n');
    out
}

fn dump(shared: &Shared) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    let engine = &shared.keeper.engine;
    // Sessions with a deadline (attached in-process handles have none).
    let buckets: BTreeMap<i64, Vec<i64>> = engine.with_liveness(|live| {
        live.buckets()
            .map(|(deadline, ids)| (deadline, ids.iter().copied().collect()))
            .collect()
    });
    engine.with_state(|s| {
        let _ = writeln!(
            out,
            "Session Sets ({})/({}):",
            buckets.len(),
            s.sessions.len()
        );
        for (deadline, ids) in &buckets {
            let _ = writeln!(out, "{} expire at {}:", ids.len(), java_date(*deadline));
            for id in ids {
                let _ = writeln!(out, "\t{id:#x}");
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
    let _ = writeln!(out, "Connections Sets (1)/({}):", conns.len());
    let _ = writeln!(
        out,
        "{} expire at {}:",
        conns.len(),
        java_date(super::wall_ms())
    );
    for conn in conns {
        let _ = writeln!(
            out,
            "\tip: /{} sessionId: {:#x}",
            conn.peer,
            conn.session_id().unwrap_or(0)
        );
    }
    out
}

/// A double as Java prints it: `0.0`, `5.5`, `1.25`.
pub(crate) fn java_double(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

/// Milliseconds since the epoch as Java's `Date.toString()` in UTC:
/// `Wed Nov 25 19:35:57 UTC 2026`.
pub fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday} {month_name} {day:02} {:02}:{:02}:{:02} UTC {year}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_formats() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(5.5), "5.5");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_635_357_000), "Wed Nov 25 19:35:57 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }
}
