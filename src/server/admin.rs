//! HTTP endpoints beside the client port, on `tiny_http`: ZooKeeper's
//! AdminServer (`GET /commands/NAME`, JSON with ZooKeeper 3.8's command
//! names and keys) and the Prometheus endpoint (`GET /metrics`).
//!
//! Both read the server through `Shared` and the engine's read functions
//! only, the same ones the four-letter words use (`words.rs`), so the two
//! always agree; neither touches the connection code.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{json, Map, Value as Json};

use super::words::{self, Value, VERSION};
use super::Shared;

/// Which endpoint a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Admin,
    Metrics,
}

/// A running HTTP endpoint; dropping it stops it.
pub struct HttpEndpoint {
    http: Arc<tiny_http::Server>,
    local_addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl HttpEndpoint {
    /// The address it listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for HttpEndpoint {
    fn drop(&mut self) {
        self.http.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for HttpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEndpoint")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

pub(crate) fn start(shared: Arc<Shared>, addr: SocketAddr, kind: Kind) -> io::Result<HttpEndpoint> {
    let http = tiny_http::Server::http(addr).map_err(io::Error::other)?;
    let local_addr = http
        .server_addr()
        .to_ip()
        .ok_or_else(|| io::Error::other("not an IP listener"))?;
    let http = Arc::new(http);
    let serving = http.clone();
    let thread = std::thread::Builder::new()
        .name(format!("innkeeper-{kind:?}").to_lowercase())
        .spawn(move || {
            for request in serving.incoming_requests() {
                let (status, content_type, body) = answer(&shared, kind, request.url());
                let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type)
                    .unwrap_or_else(|()| {
                        tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"text/plain"[..])
                            .unwrap_or_else(|()| unreachable!("a valid header"))
                    });
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(header);
                if let Err(e) = request.respond(response) {
                    tracing::debug!(target: "innkeeper::server", "{kind:?} endpoint: {e}");
                }
            }
        })?;
    Ok(HttpEndpoint {
        http,
        local_addr,
        thread: Some(thread),
    })
}

fn answer(shared: &Shared, kind: Kind, url: &str) -> (u16, &'static str, String) {
    let path = url.split('?').next().unwrap_or("");
    match kind {
        Kind::Metrics if path == "/metrics" => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics(shared),
        ),
        Kind::Metrics => (404, "text/plain", "try /metrics\n".to_string()),
        Kind::Admin => {
            let name = path.trim_start_matches("/commands").trim_matches('/');
            if name.is_empty() {
                let names: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
                return (200, "application/json", pretty(&json!(names)));
            }
            match command(shared, name) {
                Some(body) => (200, "application/json", pretty(&body)),
                None => (
                    404,
                    "application/json",
                    pretty(&json!({
                        "command": name,
                        "error": format!("Unknown command: {name}"),
                    })),
                ),
            }
        }
    }
}

fn pretty(value: &Json) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// ZooKeeper 3.8's AdminServer commands: primary name and short alias.
const COMMANDS: &[(&str, &str)] = &[
    ("ruok", "ruok"),
    ("server_stats", "srvr"),
    ("stats", "stat"),
    ("monitor", "mntr"),
    ("connections", "cons"),
    ("configuration", "conf"),
    ("environment", "envi"),
    ("watch_summary", "wchs"),
    ("watches", "wchc"),
    ("watches_by_path", "wchp"),
    ("dump", "dump"),
    ("dirs", "dirs"),
];

/// The JSON of one command, by name or alias; `None` if unknown.
pub(crate) fn command(shared: &Shared, name: &str) -> Option<Json> {
    let (primary, _) = COMMANDS
        .iter()
        .find(|(primary, alias)| *primary == name || *alias == name)?;
    let mut body = match *primary {
        "ruok" => Map::new(),
        "server_stats" => server_stats(shared),
        "stats" => {
            let mut body = server_stats(shared);
            body.insert("connections".into(), json!(connections(shared, true)));
            body.insert("secure_connections".into(), json!([]));
            body
        }
        "monitor" => words::monitor(shared)
            .into_iter()
            .map(|(k, v)| (k, v.json()))
            .collect(),
        "connections" => object(json!({
            "connections": connections(shared, false),
            "secure_connections": [],
        })),
        "configuration" => configuration(shared),
        "environment" => environment(shared),
        "watch_summary" => {
            let by_path = words::data_watches(shared);
            let sessions: std::collections::BTreeSet<i64> =
                by_path.values().flatten().copied().collect();
            object(json!({
                "num_connections": sessions.len(),
                "num_paths": by_path.len(),
                "num_total_watches": by_path.values().map(Vec::len).sum::<usize>(),
            }))
        }
        "watches" => {
            let mut by_session: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (path, sids) in words::data_watches(shared) {
                for sid in sids {
                    by_session
                        .entry(sid.to_string())
                        .or_default()
                        .push(path.clone());
                }
            }
            object(json!({ "session_id_to_watched_paths": by_session }))
        }
        "watches_by_path" => object(json!({ "path_to_session_ids": words::data_watches(shared) })),
        "dump" => dump(shared),
        "dirs" => {
            let size = words::data_dir_bytes(shared);
            object(json!({ "datadir_size": size, "logdir_size": size }))
        }
        _ => return None,
    };
    body.insert("command".into(), json!(primary));
    body.insert("error".into(), Json::Null);
    Some(Json::Object(body))
}

fn object(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

fn server_stats(shared: &Shared) -> Map<String, Json> {
    let latency = *shared.stats.latency.lock();
    let size = words::data_dir_bytes(shared);
    let client_response = json!({
        "last_buffer_size": -1,
        "min_buffer_size": -1,
        "max_buffer_size": -1,
    });
    object(json!({
        "version": VERSION,
        "read_only": false,
        "server_stats": {
            "packets_sent": shared.stats.packets_sent.load(Ordering::Relaxed),
            "packets_received": shared.stats.packets_received.load(Ordering::Relaxed),
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": client_response,
            "data_dir_size": size,
            "log_dir_size": size,
            "provider_null": false,
            "server_state": "standalone",
            "last_processed_zxid": shared.keeper.last_zxid(),
            "outstanding_requests": words::outstanding(shared),
            "avg_latency": latency.avg_ms_rounded(),
            "max_latency": latency.max_ms,
            "min_latency": latency.min_ms,
            "num_alive_client_connections": shared.connections().len(),
            "uptime": u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(0),
            "auth_failed_count": 0,
            "non_mtlsremote_conn_count": 0,
            "non_mtlslocal_conn_count": 0,
        },
        "client_response": client_response,
        "node_count": words::node_count(shared),
    }))
}

/// Connections as ZooKeeper 3.8's `cons` lists them; `brief` is the shorter
/// form of `stat` (and of connections without a session).
fn connections(shared: &Shared, brief: bool) -> Vec<Json> {
    shared
        .connections()
        .into_iter()
        .map(|conn| {
            let info = conn.info.lock().clone();
            let mut entry = object(json!({
                "remote_socket_address": conn.peer.to_string(),
                "interest_ops": 1,
                "outstanding_requests": info.outstanding,
                "packets_received": info.received,
                "packets_sent": info.sent,
            }));
            let Some(session_id) = conn.session_id().filter(|_| !brief) else {
                return Json::Object(entry);
            };
            let avg = info
                .latency
                .total_ms
                .checked_div(info.latency.count)
                .unwrap_or(0);
            entry.extend(object(json!({
                "session_id": session_id,
                "last_operation": if info.last_op.is_empty() { "NA" } else { info.last_op },
                "established": conn.established_ms,
                "session_timeout": info.timeout_ms,
                "last_cxid": info.last_cxid,
                "last_zxid": info.last_zxid,
                "last_response_time": info.last_response_ms,
                "last_latency": info.last_latency_ms,
                "min_latency": info.latency.min_ms,
                "avg_latency": avg,
                "max_latency": info.latency.max_ms,
            })));
            Json::Object(entry)
        })
        .collect()
}

fn configuration(shared: &Shared) -> Map<String, Json> {
    let engine = &shared.keeper.engine;
    let data_dir = shared
        .config
        .data_dir
        .as_ref()
        .map_or(String::new(), |d| d.display().to_string());
    object(json!({
        "client_port": shared.local_addr.port(),
        "data_dir": data_dir,
        "data_log_dir": data_dir,
        "tick_time": engine.config.tick_ms,
        "max_client_cnxns": shared.config.connections_per_ip_max,
        "min_session_timeout": engine.config.session_timeout_min_ms,
        "max_session_timeout": engine.config.session_timeout_max_ms,
        "server_id": 0,
        "client_port_listen_backlog": -1,
    }))
}

fn environment(shared: &Shared) -> Map<String, Json> {
    let mut map = Map::new();
    for line in words::answer_unchecked(shared, "envi").lines().skip(1) {
        if let Some((k, v)) = line.split_once('=') {
            map.insert(k.to_string(), json!(v));
        }
    }
    map
}

fn dump(shared: &Shared) -> Map<String, Json> {
    let mut expiry: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut ephemerals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // Sessions with a deadline (attached in-process handles have none).
    shared.keeper.engine.with_liveness(|live| {
        for (deadline, ids) in live.buckets() {
            expiry.insert(deadline.to_string(), ids.iter().copied().collect());
        }
    });
    shared.keeper.engine.with_state(|s| {
        for owner in s.tree.ephemeral_owners() {
            let mut paths: Vec<String> = s.tree.ephemerals_of(owner).cloned().collect();
            paths.sort();
            ephemerals.insert(owner.to_string(), paths);
        }
    });
    object(json!({
        "expiry_time_to_session_ids": expiry,
        "session_id_to_ephemeral_paths": ephemerals,
    }))
}

/// The Prometheus text: every numeric `mntr` key as a gauge of the same
/// name (as ZooKeeper's Prometheus provider names them), then the
/// histograms.
fn metrics(shared: &Shared) -> String {
    let mut registry = Registry::default();
    for (key, value) in words::monitor(shared) {
        match value {
            Value::Int(v) => {
                let gauge: Gauge<i64> = Gauge::default();
                gauge.set(v);
                registry.register(key, "ZooKeeper mntr value", gauge);
            }
            Value::Float(v) => {
                let gauge: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
                gauge.set(v);
                registry.register(key, "ZooKeeper mntr value", gauge);
            }
            Value::Text(_) => {}
        }
    }
    registry.register(
        "innkeeper_request_latency_seconds",
        "Request latency by operation (ZooKeeper's short op names, as cons shows them)",
        shared.stats.requests.latency.clone(),
    );
    let slow: Gauge<i64> = Gauge::default();
    slow.set(i64::try_from(shared.stats.slow_requests.load(Ordering::Relaxed)).unwrap_or(0));
    registry.register(
        "innkeeper_slow_requests",
        "Requests slower than --slow-request-ms",
        slow,
    );
    let store = &*crate::metrics::STORE;
    registry.register(
        "innkeeper_commit_batch_txns",
        "Txns per committed batch (group commit)",
        store.batch_txns.clone(),
    );
    registry.register(
        "innkeeper_flush_latency_seconds",
        "Time to write (and in durable mode fsync) one batch",
        store.flush_seconds.clone(),
    );
    registry.register(
        "innkeeper_snapshot_seconds",
        "Time to write one snapshot",
        store.snapshot_seconds.clone(),
    );
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(target: "innkeeper::server", "encoding metrics: {e}");
    }
    out
}
