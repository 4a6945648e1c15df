//! The `innkeeper` command line: `serve` runs a ZooKeeper-wire-compatible
//! server; the other commands work against any ZooKeeper server through
//! `RemoteSession` (`--server`), or offline on a data directory
//! (`--data-dir`).
//!
//! Modules: `serve` (the server, its flags and config file), `client` (the
//! data commands), `dump` (the JSON dump format), `offline` (inspect,
//! backup, restore).

/// `println!` that ignores a closed stdout (`innkeeper ls -R / | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod client;
mod config;
mod dump;
mod offline;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use innkeeper::{Coordinator, Error, ErrorKind, Keeper, RemoteSession, Session};

#[derive(Parser, Debug)]
#[command(
    name = "innkeeper",
    version,
    about = "An embeddable coordination engine that behaves like Apache ZooKeeper"
)]
struct Cli {
    /// The ZooKeeper servers to talk to: `HOST:PORT[,HOST:PORT…][/chroot]`.
    #[arg(
        long,
        global = true,
        env = "INNKEEPER_SERVER",
        default_value = "127.0.0.1:2181"
    )]
    server: String,

    /// A data directory: read it offline instead of asking a server (ls,
    /// tree, get, stat, dump; inspect, backup, restore), or the one `serve`
    /// keeps its store in [default for serve: ./innkeeper-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,

    /// Session timeout asked of the server, in ms; an unreachable server
    /// fails within it.
    #[arg(long, global = true, default_value_t = 10_000)]
    timeout_ms: u64,

    /// A credential sent before any request, `SCHEME:AUTH` (zkCli's
    /// `addauth`), e.g. `digest:user:password`; repeatable.
    #[arg(long, global = true, value_name = "SCHEME:AUTH")]
    auth: Vec<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the ZooKeeper client protocol on a TCP port (a stand-in for a
    /// standalone ZooKeeper 3.8 server).
    Serve(Box<serve::ServeArgs>),
    /// List a node's children, sorted, one per line.
    Ls {
        path: String,
        /// Every descendant's absolute path instead, sorted (the node itself excluded).
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Show a subtree, indented, with data sizes and ephemeral owners.
    Tree {
        #[arg(default_value = "/")]
        path: String,
    },
    /// Write a node's data to stdout, byte for byte.
    Get { path: String },
    /// Print a node's Stat as zkCli does.
    Stat { path: String },
    /// Create a node and print its path; DATA `-` reads stdin.
    Create {
        path: String,
        data: Option<String>,
        /// Owned by this command's session, so deleted as soon as it exits
        /// (useful to see what watchers of it see).
        #[arg(long, short)]
        ephemeral: bool,
        #[arg(long, short)]
        sequential: bool,
        #[arg(long, short)]
        container: bool,
        /// A TTL node (the server needs extended types enabled).
        #[arg(long, value_name = "MS")]
        ttl: Option<u64>,
    },
    /// Set a node's data; DATA `-` reads stdin.
    Set {
        path: String,
        data: String,
        /// Only if the node's version is this.
        #[arg(long, short, default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
    },
    /// Delete a node.
    Rm {
        path: String,
        /// With everything below it.
        #[arg(long, short)]
        recursive: bool,
        /// Only if the node's version is this.
        #[arg(long, short, default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
    },
    /// Print `EventType path` for each change, until N events or Ctrl-C.
    Watch {
        path: String,
        /// Changes anywhere below the node too.
        #[arg(long, short)]
        recursive: bool,
        /// Stop after this many events.
        #[arg(long, short = 'n')]
        count: Option<u64>,
    },
    /// Write a subtree as JSON: paths, data (base64), ACLs, node kinds, Stat.
    Dump {
        #[arg(default_value = "/")]
        path: String,
        /// Write to FILE instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Recreate the nodes of a dump (`-` reads stdin).
    Load {
        file: PathBuf,
        /// Put the dump's root here instead of where it was.
        #[arg(long)]
        at: Option<String>,
        /// Leave nodes that exist already as they are, instead of failing.
        #[arg(long)]
        skip_existing: bool,
    },
    /// The server's srvr and mntr, readable.
    Status,
    /// Check a data directory offline: counts, last zxid, sizes, every record.
    Inspect,
    /// Write a backup of a data directory (offline) to FILE.
    Backup { file: PathBuf },
    /// Create the store in --data-dir (missing or empty) from a backup FILE.
    Restore { file: PathBuf },
}

/// Where the client commands go.
enum Target {
    Remote(RemoteSession),
    Offline(Keeper, Session),
}

impl Target {
    fn coordinator(&self) -> &dyn Coordinator {
        match self {
            Target::Remote(session) => session,
            Target::Offline(_, session) => session,
        }
    }

    fn owner_of(&self, path: &str) -> Option<i64> {
        match self {
            Target::Remote(_) => None,
            Target::Offline(keeper, _) => keeper.stored_ephemeral_owner(path),
        }
    }

    fn close(self) {
        match self {
            Target::Remote(session) => {
                let _ = session.close();
            }
            Target::Offline(_, session) => {
                let _ = session.close();
            }
        }
    }
}

fn connect(cli: &Cli, needs_server: Option<&str>) -> Result<Target, Error> {
    if let Some(dir) = &cli.data_dir {
        if let Some(command) = needs_server {
            return Err(Error::new(ErrorKind::BadArguments).detail(format!(
                "{command} needs a server (--server): {} is only read offline (ls, tree, get, \
                 stat, dump; restore creates a store)",
                dir.display()
            )));
        }
        let keeper = offline::open(dir)?;
        let session = keeper.session()?;
        return Ok(Target::Offline(keeper, session));
    }
    let timeout = Duration::from_millis(cli.timeout_ms.max(1));
    let mut builder = RemoteSession::builder(&cli.server)
        .session_timeout(timeout)
        .connect_timeout(timeout);
    for credential in &cli.auth {
        let Some((scheme, auth)) = credential.split_once(':') else {
            return Err(Error::new(ErrorKind::BadArguments)
                .detail(format!("--auth {credential:?}: expected SCHEME:AUTH")));
        };
        builder = builder.auth(scheme, auth.as_bytes());
    }
    let session = builder.connect().map_err(|e| {
        if e.kind() == ErrorKind::ConnectionLoss {
            Error::new(ErrorKind::ConnectionLoss).detail(format!(
                "no server of {} answered within {} ms",
                cli.server, cli.timeout_ms
            ))
        } else {
            e
        }
    })?;
    Ok(Target::Remote(session))
}

/// The one line an error becomes: ZooKeeper's own wording
/// (`KeeperErrorCode = NoNode for /a`), then any detail.
fn error_line(e: &Error, path: Option<&str>) -> String {
    let mut line = format!("KeeperErrorCode = {:?}", e.kind());
    if let Some(p) = e.path().or(path) {
        line += &format!(" for {p}");
    }
    if let Some(detail) = e.detail_message() {
        line += &format!(": {detail}");
    }
    line
}

fn need_dir(cli: &Cli, command: &str) -> Result<PathBuf, Error> {
    cli.data_dir.clone().ok_or_else(|| {
        Error::new(ErrorKind::BadArguments).detail(format!("{command} needs --data-dir DIR"))
    })
}

fn run(cli: &Cli) -> Result<(), (Error, Option<String>)> {
    let with = |path: &str| {
        let path = path.to_string();
        move |e: Error| (e, Some(path))
    };
    let bare = |e: Error| (e, None);
    match &cli.command {
        Command::Serve(_) => unreachable!("handled in main"),
        Command::Status => {
            client::status(&cli.server, Duration::from_millis(cli.timeout_ms)).map_err(bare)
        }
        Command::Inspect => {
            offline::inspect(&need_dir(cli, "inspect").map_err(bare)?).map_err(bare)
        }
        Command::Backup { file } => {
            offline::backup(&need_dir(cli, "backup").map_err(bare)?, file).map_err(bare)
        }
        Command::Restore { file } => {
            offline::restore(file, &need_dir(cli, "restore").map_err(bare)?).map_err(bare)
        }
        command => {
            let needs_server = match command {
                Command::Create { .. } => Some("create"),
                Command::Set { .. } => Some("set"),
                Command::Rm { .. } => Some("rm"),
                Command::Watch { .. } => Some("watch"),
                Command::Load { .. } => Some("load"),
                _ => None,
            };
            let target = connect(cli, needs_server).map_err(bare)?;
            let result = {
                let c = target.coordinator();
                match command {
                    Command::Ls { path, recursive } => {
                        client::ls(c, path, *recursive).map_err(with(path))
                    }
                    Command::Tree { path } => client::tree(c, path).map_err(with(path)),
                    Command::Get { path } => client::get(c, path).map_err(with(path)),
                    Command::Stat { path } => client::stat(c, path).map_err(with(path)),
                    Command::Create {
                        path,
                        data,
                        ephemeral,
                        sequential,
                        container,
                        ttl,
                    } => client::create(
                        c,
                        &client::CreateArgs {
                            path,
                            data: data.as_deref(),
                            ephemeral: *ephemeral,
                            sequential: *sequential,
                            container: *container,
                            ttl_ms: *ttl,
                        },
                    )
                    .map_err(with(path)),
                    Command::Set {
                        path,
                        data,
                        version,
                    } => client::set(c, path, data, *version).map_err(with(path)),
                    Command::Rm {
                        path,
                        recursive,
                        version,
                    } => client::rm(c, path, *recursive, *version).map_err(with(path)),
                    Command::Watch {
                        path,
                        recursive,
                        count,
                    } => client::watch(c, path, *recursive, *count).map_err(with(path)),
                    Command::Dump { path, output } => {
                        let owner_of = |p: &str| target.owner_of(p);
                        client::dump_cmd(c, path, output.as_deref(), &owner_of).map_err(with(path))
                    }
                    Command::Load {
                        file,
                        at,
                        skip_existing,
                    } => client::load(c, file, at.as_deref(), *skip_existing).map_err(bare),
                    _ => unreachable!("handled above"),
                }
            };
            target.close();
            result
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve(args) = cli.command {
        return serve::serve(*args, cli.data_dir);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((e, path)) => {
            eprintln!("innkeeper: {}", error_line(&e, path.as_deref()));
            ExitCode::FAILURE
        }
    }
}
