//! `innkeeper serve`: a ZooKeeper-wire-compatible server that zkCli,
//! Curator, kazoo and other ZooKeeper clients can use.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use innkeeper::server::{
    FourLetterWords, SaslUsers, SecurePort, Server, ServerConfig, FOUR_LETTER_WORDS,
};
use innkeeper::{ClientAuth, Keeper, ServerTls, TlsFiles};
use tracing::{error, info, warn};

use crate::config::{self, ZooCfg};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A ZooKeeper configuration file (zoo.cfg); flags override its keys.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1; zoo.cfg: clientPortAddress].
    #[arg(long)]
    bind: Option<IpAddr>,

    /// Port to listen on, 0 picks a free one (the ready line names it)
    /// [default: 2181; zoo.cfg: clientPort].
    #[arg(long, short)]
    port: Option<u16>,

    /// Seed the (fresh) keeper with the nodes of a dump file before serving.
    #[arg(long, value_name = "FILE")]
    load: Option<PathBuf>,

    /// Keep everything in memory: nothing survives a restart.
    #[arg(long)]
    in_memory: bool,

    /// How writes reach the disk (ignored with --in-memory).
    #[arg(long, value_enum, default_value_t = Durability::Durable)]
    durability: Durability,

    /// With --durability periodic: how often writes are flushed, in ms.
    #[arg(long, default_value_t = 100)]
    flush_interval_ms: u64,

    /// ZooKeeper's tickTime in ms: session expiry granularity and the base of
    /// the default session timeout range (2 to 20 ticks) [default: 2000].
    #[arg(long)]
    tick_ms: Option<u64>,

    /// Smallest session timeout granted, in ms [default: 2 × tick].
    #[arg(long)]
    session_timeout_min_ms: Option<u64>,

    /// Largest session timeout granted, in ms [default: 20 × tick].
    #[arg(long)]
    session_timeout_max_ms: Option<u64>,

    /// Connections allowed per client address, 0 = unlimited (ZooKeeper's
    /// maxClientCnxns) [default: 60].
    #[arg(long)]
    max_client_connections: Option<usize>,

    /// Largest request frame in bytes (ZooKeeper's jute.maxbuffer); larger
    /// frames close the connection [default: 1048575].
    #[arg(long)]
    max_frame_bytes: Option<usize>,

    /// Four-letter words answered, comma-separated, `*` for all (ZooKeeper's
    /// 4lw.commands.whitelist) [default: srvr].
    #[arg(long = "4lw")]
    four_letter_words: Option<String>,

    /// Allow TTL nodes (ZooKeeper's zookeeper.extendedTypesEnabled);
    /// without it createTTL answers Unimplemented.
    #[arg(long)]
    extended_types: bool,

    /// How often empty containers and expired TTL nodes are deleted, in ms
    /// (ZooKeeper's znode.container.checkIntervalMs).
    #[arg(long, default_value_t = 60_000)]
    reap_interval_ms: u64,

    /// A digest `user:BASE64(SHA1(user:password))` whose holder bypasses
    /// every ACL after `addauth digest user:password` (ZooKeeper's
    /// zookeeper.DigestAuthenticationProvider.superDigest).
    #[arg(long)]
    super_digest: Option<String>,

    /// Serve ZooKeeper's AdminServer (`GET /commands/NAME`, JSON) on this
    /// port (zoo.cfg: admin.serverPort).
    #[arg(long)]
    admin_port: Option<u16>,

    /// Address of the AdminServer [default: 127.0.0.1].
    #[arg(long)]
    admin_bind: Option<IpAddr>,

    /// Serve Prometheus metrics (`GET /metrics`) on this port (zoo.cfg:
    /// metricsProvider.httpPort).
    #[arg(long)]
    metrics_port: Option<u16>,

    /// Address of the metrics endpoint [default: 127.0.0.1].
    #[arg(long)]
    metrics_bind: Option<IpAddr>,

    /// Log requests that take longer than this many ms (warn level).
    #[arg(long, default_value_t = 1000)]
    slow_request_ms: u64,

    /// Log level: error, warn, info, debug, trace, or a tracing filter
    /// [default: RUST_LOG, else info].
    #[arg(long)]
    log_level: Option<String>,

    /// Log as text lines or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Shorthand for --log-level debug: one line per connection opened and closed.
    #[arg(long, short)]
    verbose: bool,

    /// Also serve TLS on this port (ZooKeeper's secureClientPort), on the bind
    /// address. Needs --tls-cert and --tls-key; they are read again on SIGHUP.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    secure_port: Option<u16>,

    /// The TLS port's certificate chain (PEM).
    #[arg(long, requires = "secure_port")]
    tls_cert: Option<PathBuf>,

    /// The TLS port's private key (PEM).
    #[arg(long, requires = "secure_port")]
    tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to; a
    /// verified client is `x509:SUBJECT` in ACLs.
    #[arg(long, requires = "secure_port")]
    tls_client_ca: Option<PathBuf>,

    /// Ask clients for a certificate (ZooKeeper's ssl.clientAuth) [default:
    /// need with --tls-client-ca, none without].
    #[arg(long, value_enum, requires = "tls_client_ca")]
    tls_client_auth: Option<TlsClientAuth>,

    /// Serve only the TLS port: the plain port is not opened.
    #[arg(long, requires = "secure_port")]
    secure_only: bool,

    /// A JAAS file whose Server section lists the SASL DIGEST-MD5 users
    /// (org.apache.zookeeper.server.auth.DigestLoginModule user_NAME="password").
    #[arg(long)]
    jaas: Option<PathBuf>,

    /// Sessions must log in with SASL before anything else (ZooKeeper's
    /// zookeeper.sessionRequireClientSASLAuth).
    #[arg(long, requires = "jaas")]
    sasl_required: bool,

    /// Send a watch event only to sessions that may READ the changed node
    /// (ZooKeeper 3.8.4+, ZOOKEEPER-4799 / CVE-2024-23944, also patched into
    /// Debian's 3.8.0). Off by default, as in upstream 3.8.0.
    #[arg(long)]
    filter_events_by_acl: bool,

    /// Deliberately broken, for tests only: acknowledge writes before they
    /// are written, writing them every N batches, so a kill loses
    /// acknowledged writes (`tests/linearizability` shows it is caught).
    #[arg(long, hide = true, default_value_t = 0)]
    unsafe_hold_back_batches: u32,
}

/// ZooKeeper's ssl.clientAuth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TlsClientAuth {
    None,
    Want,
    Need,
}

/// The TLS port and SASL users the flags ask for.
struct Security {
    secure: Option<SecurePort>,
    sasl_users: SaslUsers,
}

fn security(args: &ServeArgs, bind: IpAddr) -> Result<Security, String> {
    let secure = match (args.secure_port, &args.tls_cert, &args.tls_key) {
        (Some(port), Some(cert), Some(key)) => {
            let files = TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls_client_ca.clone(),
                client_auth: args.tls_client_auth.map(|a| match a {
                    TlsClientAuth::None => ClientAuth::None,
                    TlsClientAuth::Want => ClientAuth::Want,
                    TlsClientAuth::Need => ClientAuth::Need,
                }),
            };
            let tls = ServerTls::new(files).map_err(|e| format!("TLS: {e}"))?;
            Some(SecurePort {
                bind: SocketAddr::new(bind, port),
                tls: Arc::new(tls),
            })
        }
        _ => None,
    };
    let sasl_users = match &args.jaas {
        None => SaslUsers::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the JAAS file {}: {e}", path.display()))?;
            SaslUsers::from_jaas(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    Ok(Security { secure, sasl_users })
}

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The settings after zoo.cfg and flags are merged and checked.
#[derive(Debug)]
struct Settings {
    bind: SocketAddr,
    data_dir: PathBuf,
    tick_ms: u64,
    session_timeout_min_ms: u64,
    session_timeout_max_ms: u64,
    max_client_connections: usize,
    max_frame_bytes: usize,
    four_letter_words: FourLetterWords,
    admin: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
}

/// Merges flags over the config file over the defaults, and refuses values
/// that cannot work, naming them.
fn settings(args: &ServeArgs, cfg: &ZooCfg, data_dir: Option<PathBuf>) -> Result<Settings, String> {
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let tick_ms = args.tick_ms.or(cfg.tick_ms).unwrap_or(2000);
    if tick_ms == 0 {
        return Err("the tick (--tick-ms, tickTime) must be at least 1 ms".to_string());
    }
    let min = args
        .session_timeout_min_ms
        .or(cfg.session_timeout_min_ms)
        .unwrap_or(tick_ms.saturating_mul(2));
    let max = args
        .session_timeout_max_ms
        .or(cfg.session_timeout_max_ms)
        .unwrap_or(tick_ms.saturating_mul(20));
    if min > max {
        return Err(format!(
            "the minimum session timeout ({min} ms) is above the maximum ({max} ms)"
        ));
    }
    if min == 0 {
        return Err("the minimum session timeout must be at least 1 ms".to_string());
    }
    let words = args
        .four_letter_words
        .clone()
        .or_else(|| cfg.four_letter_words.clone())
        .unwrap_or_else(|| "srvr".to_string());
    for word in words.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word != "*" && !FOUR_LETTER_WORDS.contains(&word) {
            return Err(format!(
                "unknown four-letter word {word:?} in --4lw / 4lw.commands.whitelist (known: {})",
                FOUR_LETTER_WORDS.join(",")
            ));
        }
    }
    let max_frame_bytes = args
        .max_frame_bytes
        .or(cfg.max_frame_bytes)
        .unwrap_or(0xF_FFFF);
    if max_frame_bytes < 1024 {
        return Err(format!(
            "the largest frame (--max-frame-bytes, jute.maxbuffer) must be at least 1024 bytes, \
             not {max_frame_bytes}"
        ));
    }
    if args.flush_interval_ms == 0 || args.reap_interval_ms == 0 {
        return Err("--flush-interval-ms and --reap-interval-ms must be at least 1".to_string());
    }
    let port = args.port.or(cfg.client_port).unwrap_or(2181);
    let bind = args.bind.or(cfg.client_port_address).unwrap_or(loopback);
    let admin = args.admin_port.or(cfg.admin_port).map(|port| {
        SocketAddr::new(
            args.admin_bind.or(cfg.admin_address).unwrap_or(loopback),
            port,
        )
    });
    let metrics = args.metrics_port.or(cfg.metrics_port).map(|port| {
        SocketAddr::new(
            args.metrics_bind
                .or(cfg.metrics_address)
                .unwrap_or(loopback),
            port,
        )
    });
    Ok(Settings {
        bind: SocketAddr::new(bind, port),
        data_dir: data_dir
            .or_else(|| cfg.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./innkeeper-data")),
        tick_ms,
        session_timeout_min_ms: min,
        session_timeout_max_ms: max,
        max_client_connections: args
            .max_client_connections
            .or(cfg.max_client_connections)
            .unwrap_or(60),
        max_frame_bytes,
        four_letter_words: FourLetterWords::parse(&words),
        admin,
        metrics,
    })
}

/// Logs to stderr: `--log-level` (or `--verbose`), else `RUST_LOG`, else info.
fn init_logs(args: &ServeArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = match (&args.log_level, args.verbose) {
        (Some(level), _) => EnvFilter::try_new(level),
        (None, true) => EnvFilter::try_new("debug"),
        (None, false) => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    }
    .unwrap_or_else(|e| {
        eprintln!("innkeeper: bad log level ({e}); using info");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn serve(args: ServeArgs, data_dir: Option<PathBuf>) -> ExitCode {
    let started = Instant::now();
    init_logs(&args);
    let cfg = match &args.config {
        Some(path) => match config::read(path) {
            Ok(cfg) => cfg,
            Err(e) => {
                error!("refusing to start: {e}");
                return ExitCode::from(2);
            }
        },
        None => ZooCfg::default(),
    };
    if let Some(path) = &args.config {
        for warning in &cfg.warnings {
            warn!("{}: {warning}", path.display());
        }
    }
    let settings = match settings(&args, &cfg, data_dir) {
        Ok(s) => s,
        Err(e) => {
            error!("refusing to start: {e}");
            return ExitCode::from(2);
        }
    };
    info!(
        "starting innkeeper {} on {} (tick {} ms, session timeouts {}..{} ms)",
        env!("CARGO_PKG_VERSION"),
        settings.bind,
        settings.tick_ms,
        settings.session_timeout_min_ms,
        settings.session_timeout_max_ms
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            error!("cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let (keeper, mode) = match open_keeper(&args, &settings) {
        Ok(k) => k,
        Err(e) => {
            error!("cannot open the keeper: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(file) = &args.load {
        if let Err(e) = seed(&keeper, file) {
            error!("--load {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    }
    let security = match security(&args, settings.bind.ip()) {
        Ok(s) => s,
        Err(e) => {
            error!("refusing to start: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = security.secure.as_ref().map(|s| s.tls.clone());
    let reload = Arc::new(AtomicBool::new(false));
    if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone()) {
        error!("cannot handle SIGHUP: {e}");
        return ExitCode::FAILURE;
    }
    let config = ServerConfig {
        bind: settings.bind,
        secure: security.secure,
        secure_only: args.secure_only,
        sasl_users: security.sasl_users,
        sasl_required: args.sasl_required,
        frame_len_max: settings.max_frame_bytes,
        connections_per_ip_max: settings.max_client_connections,
        four_letter_words: settings.four_letter_words.clone(),
        verbose: args.verbose,
        data_dir: (!args.in_memory).then(|| settings.data_dir.clone()),
        slow_request: Some(Duration::from_millis(args.slow_request_ms)),
        ..ServerConfig::default()
    };
    let server = match Server::start(keeper.clone(), config) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot listen on {}: {e}", settings.bind);
            return ExitCode::FAILURE;
        }
    };
    let admin = match settings.admin.map(|addr| server.serve_admin(addr)) {
        Some(Ok(admin)) => {
            info!("AdminServer on http://{}/commands", admin.local_addr());
            Some(admin)
        }
        Some(Err(e)) => {
            error!("cannot start the AdminServer: {e}");
            return ExitCode::FAILURE;
        }
        None => None,
    };
    let metrics = match settings.metrics.map(|addr| server.serve_metrics(addr)) {
        Some(Ok(metrics)) => {
            info!(
                "Prometheus metrics on http://{}/metrics",
                metrics.local_addr()
            );
            Some(metrics)
        }
        Some(Err(e)) => {
            error!("cannot start the metrics endpoint: {e}");
            return ExitCode::FAILURE;
        }
        None => None,
    };
    info!(
        "serving ZooKeeper clients on {} (data: {}, mode: {mode}) ready in {} µs",
        server.local_addr(),
        describe_dir(&settings.data_dir, args.in_memory),
        started.elapsed().as_micros()
    );
    if let Some(addr) = server.secure_addr() {
        info!("serving TLS on {addr}");
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        if reload.swap(false, Ordering::SeqCst) {
            if let Some(tls) = &tls {
                match tls.reload() {
                    Ok(()) => info!("TLS certificate and key re-read"),
                    Err(e) => warn!("TLS files not re-read, the old ones stay: {e}"),
                }
            }
        }
    }
    info!("shutting down");
    drop(admin);
    drop(metrics);
    server.shutdown();
    if let Err(e) = keeper.shutdown() {
        error!("flushing the store failed: {e}");
        return ExitCode::FAILURE;
    }
    info!("stopped");
    ExitCode::SUCCESS
}

/// How writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Durability {
    /// Every acknowledged write is on disk (group-committed fsync).
    Durable,
    /// Flushed periodically; a crash may lose the last moments, never half a write.
    Periodic,
}

/// Opens the keeper the flags describe: the durable store in `data_dir`
/// (with the chosen durability), or memory with `--in-memory`. The returned
/// mode name goes into the ready line, which `.ci/interop.sh` reads.
fn open_keeper(args: &ServeArgs, settings: &Settings) -> innkeeper::Result<(Keeper, &'static str)> {
    let tick = Duration::from_millis(settings.tick_ms);
    let mut builder = Keeper::builder()
        .tick(tick)
        .extended_types(args.extended_types)
        .filter_events_by_acl(args.filter_events_by_acl)
        .reap_interval(Duration::from_millis(args.reap_interval_ms))
        // ZooKeeper bounds node data only through the frame size (A.7).
        .data_limit(settings.max_frame_bytes)
        .session_timeout_range(
            Duration::from_millis(settings.session_timeout_min_ms),
            Duration::from_millis(settings.session_timeout_max_ms),
        );
    if let Some(digest) = &args.super_digest {
        builder = builder.super_digest(digest.clone());
    }
    if args.in_memory {
        return Ok((builder.build()?, "in-memory"));
    }
    if args.unsafe_hold_back_batches > 0 {
        eprintln!("innkeeper: UNSAFE: acknowledging writes before they are written (test mode)");
        builder = builder.store_faults(innkeeper::StoreFaults {
            unsafe_hold_back_batches: args.unsafe_hold_back_batches,
            ..innkeeper::StoreFaults::default()
        });
    }
    let (durability, mode) = match args.durability {
        Durability::Durable => (innkeeper::Durability::Durable, "durable"),
        Durability::Periodic => {
            let every = Duration::from_millis(args.flush_interval_ms);
            (innkeeper::Durability::Periodic(every), "periodic")
        }
    };
    Ok((
        builder.durability(durability).open(&settings.data_dir)?,
        mode,
    ))
}

fn describe_dir(dir: &Path, in_memory: bool) -> String {
    if in_memory {
        "none".to_string()
    } else {
        dir.display().to_string()
    }
}

/// `--load`: the dump's nodes into a keeper that holds none yet.
fn seed(keeper: &Keeper, file: &Path) -> innkeeper::Result<()> {
    let dump = crate::client::read_dump(file)?;
    let session = keeper.session()?;
    let user_nodes = innkeeper::Coordinator::get_children(&session, "/")?
        .iter()
        .filter(|name| name.as_str() != "zookeeper")
        .count();
    if user_nodes > 0 {
        return Err(innkeeper::Error::new(innkeeper::ErrorKind::NodeExists).detail(
            "the keeper already holds nodes: --load seeds a fresh one (an empty --data-dir, or --in-memory)",
        ));
    }
    let loaded = crate::dump::load(&session, &dump, None, false)?;
    crate::client::report_loaded(&loaded);
    session.close()
}
