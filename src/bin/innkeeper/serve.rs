//! `innkeeper serve`: a ZooKeeper-wire-compatible server that zkCli,
//! Curator, kazoo and other ZooKeeper clients can use.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use innkeeper::server::{FourLetterWords, Server, ServerConfig};
use innkeeper::Keeper;

/// How writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Durability {
    /// Every acknowledged write is on disk (group-committed fsync).
    Durable,
    /// Flushed periodically; a crash may lose the last moments, never half a write.
    Periodic,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,

    /// Port to listen on (0 picks a free one; the ready line names it).
    #[arg(long, short, default_value_t = 2181)]
    port: u16,

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
    /// the default session timeout range (2 to 20 ticks).
    #[arg(long, default_value_t = 2000)]
    tick_ms: u64,

    /// Smallest session timeout granted, in ms [default: 2 × tick].
    #[arg(long)]
    session_timeout_min_ms: Option<u64>,

    /// Largest session timeout granted, in ms [default: 20 × tick].
    #[arg(long)]
    session_timeout_max_ms: Option<u64>,

    /// Connections allowed per client address (ZooKeeper's maxClientCnxns); 0 = unlimited.
    #[arg(long, default_value_t = 60)]
    max_client_connections: usize,

    /// Largest request frame in bytes (ZooKeeper's jute.maxbuffer); larger
    /// frames close the connection.
    #[arg(long, default_value_t = 0xF_FFFF)]
    max_frame_bytes: usize,

    /// Four-letter words answered, comma-separated (`*` for all; ZooKeeper's
    /// 4lw.commands.whitelist).
    #[arg(long = "4lw", default_value = "srvr")]
    four_letter_words: String,

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

    /// Log one line per connection opened and closed.
    #[arg(long, short)]
    verbose: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to the `STOP` flag the main thread polls.
#[allow(unsafe_code)]
fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe, and it lives for the whole process.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

/// Opens the keeper the flags describe: the durable store in `data_dir`
/// (with the chosen durability), or memory with `--in-memory`. The returned
/// mode name goes into the ready line, which `.ci/interop.sh` reads.
fn open_keeper(args: &ServeArgs, data_dir: &Path) -> innkeeper::Result<(Keeper, &'static str)> {
    let tick = Duration::from_millis(args.tick_ms.max(1));
    let mut builder = Keeper::builder()
        .tick(tick)
        .extended_types(args.extended_types)
        .reap_interval(Duration::from_millis(args.reap_interval_ms.max(1)))
        // ZooKeeper bounds node data only through the frame size (A.7).
        .data_limit(args.max_frame_bytes);
    if let Some(digest) = &args.super_digest {
        builder = builder.super_digest(digest.clone());
    }
    if args.session_timeout_min_ms.is_some() || args.session_timeout_max_ms.is_some() {
        let min = args.session_timeout_min_ms.unwrap_or(args.tick_ms * 2);
        let max = args.session_timeout_max_ms.unwrap_or(args.tick_ms * 20);
        builder =
            builder.session_timeout_range(Duration::from_millis(min), Duration::from_millis(max));
    }
    if args.in_memory {
        return Ok((builder.build()?, "in-memory"));
    }
    let (durability, mode) = match args.durability {
        Durability::Durable => (innkeeper::Durability::Durable, "durable"),
        Durability::Periodic => {
            let every = Duration::from_millis(args.flush_interval_ms.max(1));
            (innkeeper::Durability::Periodic(every), "periodic")
        }
    };
    Ok((builder.durability(durability).open(data_dir)?, mode))
}

pub fn serve(args: ServeArgs, data_dir: PathBuf) -> ExitCode {
    let started = Instant::now();
    install_signal_handlers();
    let (keeper, mode) = match open_keeper(&args, &data_dir) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("innkeeper: cannot open the keeper: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(file) = &args.load {
        if let Err(e) = seed(&keeper, file) {
            eprintln!("innkeeper: --load {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    }
    let config = ServerConfig {
        bind: SocketAddr::new(args.bind, args.port),
        frame_len_max: args.max_frame_bytes,
        connections_per_ip_max: args.max_client_connections,
        four_letter_words: FourLetterWords::parse(&args.four_letter_words),
        verbose: args.verbose,
        data_dir: (!args.in_memory).then(|| data_dir.clone()),
        ..ServerConfig::default()
    };
    let server = match Server::start(keeper.clone(), config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "innkeeper: cannot listen on {}:{}: {e}",
                args.bind, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "innkeeper: serving ZooKeeper clients on {} (data: {}, mode: {mode}) ready in {} µs",
        server.local_addr(),
        describe_dir(&data_dir, args.in_memory),
        started.elapsed().as_micros()
    );
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("innkeeper: shutting down");
    server.shutdown();
    if let Err(e) = keeper.shutdown() {
        eprintln!("innkeeper: flushing the store failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
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
