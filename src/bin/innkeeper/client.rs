//! The client commands: each runs against a `Coordinator`, which is a
//! `RemoteSession` to any ZooKeeper server or, with `--data-dir`, a session
//! on a read-only in-memory copy of a data directory.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use innkeeper::{
    AddWatchMode, Coordinator, CreateMode, CreateOptions, Error, ErrorKind, EventType, Stat,
    Watcher,
};

use crate::dump;

/// What `create` was asked for.
pub struct CreateArgs<'a> {
    pub path: &'a str,
    pub data: Option<&'a str>,
    pub ephemeral: bool,
    pub sequential: bool,
    pub container: bool,
    pub ttl_ms: Option<u64>,
}

/// `DATA`, or stdin's bytes for `-`.
pub fn data_arg(data: Option<&str>) -> Result<Vec<u8>, Error> {
    match data {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Error::new(ErrorKind::Io).detail(format!("reading stdin: {e}")))?;
            Ok(bytes)
        }
        Some(text) => Ok(text.as_bytes().to_vec()),
    }
}

pub fn ls(c: &dyn Coordinator, path: &str, recursive: bool) -> Result<(), Error> {
    let lines = if recursive {
        dump::descendants(c, path, true)?
    } else {
        let mut children = c.get_children(path)?;
        children.sort();
        children
    };
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}

pub fn tree(c: &dyn Coordinator, root: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    let depth_of = |path: &str| {
        if path == root {
            0
        } else {
            let rest = if root == "/" {
                path
            } else {
                &path[root.len()..]
            };
            rest.matches('/').count()
        }
    };
    dump::walk(c, root, true, |path, _| {
        let Some(stat) = c.exists(path)? else {
            return Ok(());
        };
        let depth = depth_of(path);
        let name = if depth == 0 {
            path
        } else {
            path.rsplit('/').next().unwrap_or(path)
        };
        let mut marks = vec![format!("{} B", stat.data_length)];
        if stat.ephemeral_owner != 0 {
            marks.push(format!("ephemeral {:#x}", stat.ephemeral_owner));
        }
        let _ = writeln!(out, "{}{name} ({})", "  ".repeat(depth), marks.join(", "));
        Ok(())
    })
}

pub fn get(c: &dyn Coordinator, path: &str) -> Result<(), Error> {
    let (data, _) = c.get_data(path)?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&data);
    let _ = out.flush();
    Ok(())
}

/// A Stat as zkCli prints it.
pub fn stat_text(stat: &Stat) -> String {
    let date = innkeeper::server::java_date;
    format!(
        "cZxid = {:#x}\nctime = {}\nmZxid = {:#x}\nmtime = {}\npZxid = {:#x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = {:#x}\ndataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        date(stat.ctime),
        stat.mzxid,
        date(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

pub fn stat(c: &dyn Coordinator, path: &str) -> Result<(), Error> {
    match c.exists(path)? {
        Some(stat) => {
            let _ = std::io::stdout().write_all(stat_text(&stat).as_bytes());
            Ok(())
        }
        None => Err(Error::with_path(ErrorKind::NoNode, path)),
    }
}

pub fn create(c: &dyn Coordinator, args: &CreateArgs<'_>) -> Result<(), Error> {
    let mode =
        match (args.ephemeral, args.sequential, args.container, args.ttl_ms) {
            (false, false, true, None) => CreateMode::Container,
            (false, seq, false, Some(_)) => {
                if seq {
                    CreateMode::PersistentSequentialWithTtl
                } else {
                    CreateMode::PersistentWithTtl
                }
            }
            (true, seq, false, None) => {
                if seq {
                    CreateMode::EphemeralSequential
                } else {
                    CreateMode::Ephemeral
                }
            }
            (false, seq, false, None) => {
                if seq {
                    CreateMode::PersistentSequential
                } else {
                    CreateMode::Persistent
                }
            }
            _ => return Err(Error::with_path(ErrorKind::BadArguments, args.path).detail(
                "--container, --ttl and --ephemeral exclude each other (--sequential goes with \
                 --ephemeral or --ttl)",
            )),
        };
    let data = data_arg(args.data)?;
    let mut options = CreateOptions::new(mode);
    if let Some(ttl) = args.ttl_ms {
        options = options.ttl(Duration::from_millis(ttl));
    }
    let (created, _) = c.create_with(args.path, Some(&data), &options)?;
    outln!("{created}");
    Ok(())
}

pub fn set(c: &dyn Coordinator, path: &str, data: &str, version: i32) -> Result<(), Error> {
    let data = data_arg(Some(data))?;
    c.set_data(path, &data, version)?;
    Ok(())
}

pub fn rm(c: &dyn Coordinator, path: &str, recursive: bool, version: i32) -> Result<(), Error> {
    if !recursive {
        return c.delete(path, version);
    }
    if version != -1 {
        // The version guards the top node: check it before deleting below.
        let Some(stat) = c.exists(path)? else {
            return Err(Error::with_path(ErrorKind::NoNode, path));
        };
        if stat.version != version {
            return Err(Error::with_path(ErrorKind::BadVersion, path));
        }
    }
    // Deepest first; a node that vanished meanwhile is fine.
    let mut all = dump::descendants(c, path, false)?;
    all.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in all {
        match c.delete(&p, -1) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NoNode => {}
            Err(e) => return Err(dump::with_path(e, &p)),
        }
    }
    c.delete(path, version)
}

/// Prints `EventType path` per event until `count` events (or forever).
pub fn watch(
    c: &dyn Coordinator,
    path: &str,
    recursive: bool,
    count: Option<u64>,
) -> Result<(), Error> {
    let mode = if recursive {
        AddWatchMode::PersistentRecursive
    } else {
        AddWatchMode::Persistent
    };
    let (watcher, events) = Watcher::channel();
    c.add_watch(path, mode, &watcher)?;
    // Ready: tests and scripts wait for this line on stderr.
    eprintln!("innkeeper: watching {path}");
    let mut seen = 0;
    let mut out = std::io::stdout();
    while count.is_none_or(|n| seen < n) {
        let Some(event) = events.wait(Duration::from_millis(500)) else {
            if c.state() == innkeeper::KeeperState::Expired {
                return Err(Error::new(ErrorKind::SessionExpired));
            }
            continue;
        };
        if event.event_type == EventType::None {
            if event.state == innkeeper::KeeperState::Expired {
                return Err(Error::new(ErrorKind::SessionExpired));
            }
            continue;
        }
        let _ = writeln!(
            out,
            "{:?} {}",
            event.event_type,
            event.path.as_deref().unwrap_or("")
        );
        let _ = out.flush();
        seen += 1;
    }
    Ok(())
}

pub fn dump_cmd(
    c: &dyn Coordinator,
    path: &str,
    output: Option<&Path>,
    owner_of: &dyn Fn(&str) -> Option<i64>,
) -> Result<(), Error> {
    let dump = dump::take(c, path, owner_of)?;
    let text = serde_json::to_string_pretty(&dump)
        .map_err(|e| Error::new(ErrorKind::SystemError).detail(e.to_string()))?;
    match output {
        Some(file) => std::fs::write(file, text + "\n").map_err(|e| {
            Error::new(ErrorKind::Io).detail(format!("writing {}: {e}", file.display()))
        })?,
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.write_all(b"\n");
        }
    }
    Ok(())
}

/// Reads a dump file (`-` for stdin).
pub fn read_dump(file: &Path) -> Result<dump::Dump, Error> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::new(ErrorKind::Io).detail(format!("reading stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| {
            Error::new(ErrorKind::Io).detail(format!("reading {}: {e}", file.display()))
        })?
    };
    dump::parse(&text, &file.display().to_string())
}

pub fn load(
    c: &dyn Coordinator,
    file: &Path,
    at: Option<&str>,
    skip_existing: bool,
) -> Result<(), Error> {
    let dump = read_dump(file)?;
    let loaded = dump::load(c, &dump, at, skip_existing)?;
    report_loaded(&loaded);
    Ok(())
}

pub fn report_loaded(loaded: &dump::Loaded) {
    let mut line = format!("innkeeper: loaded {} nodes", loaded.created);
    if loaded.existing > 0 {
        line += &format!(", {} existed already (kept)", loaded.existing);
    }
    if loaded.ephemerals > 0 {
        line += &format!(
            ", skipped {} ephemeral nodes (their sessions do not exist here)",
            loaded.ephemerals
        );
    }
    eprintln!("{line}");
}

/// One four-letter word's answer from the first server of `connect`.
pub fn four_letter(connect: &str, word: &str, timeout: Duration) -> Result<String, Error> {
    let host = connect
        .split('/')
        .next()
        .unwrap_or("")
        .split(',')
        .next()
        .unwrap_or("");
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:2181")
    };
    let lost =
        |e: std::io::Error| Error::new(ErrorKind::ConnectionLoss).detail(format!("{host}: {e}"));
    let addr = host
        .to_socket_addrs()
        .map_err(lost)?
        .next()
        .ok_or_else(|| Error::new(ErrorKind::BadArguments).detail(format!("{host}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(lost)?;
    stream.set_read_timeout(Some(timeout)).map_err(lost)?;
    stream.write_all(word.as_bytes()).map_err(lost)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(lost)?;
    Ok(answer)
}

/// `status`: srvr as `name: value` lines, then mntr's keys when the server
/// answers it.
pub fn status(connect: &str, timeout: Duration) -> Result<(), Error> {
    let srvr = four_letter(connect, "srvr", timeout)?;
    outln!("server: {}", connect.split(',').next().unwrap_or(connect));
    for line in srvr.lines() {
        if let Some((k, v)) = line.split_once(": ") {
            outln!("{}: {}", k.to_lowercase(), v.trim());
        }
    }
    let mntr = four_letter(connect, "mntr", timeout)?;
    if mntr.contains("is not executed") {
        outln!("(mntr is not in the server's 4lw.commands.whitelist)");
        return Ok(());
    }
    let pairs: Vec<(&str, &str)> = mntr.lines().filter_map(|l| l.split_once('\t')).collect();
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    outln!();
    for (k, v) in pairs {
        outln!("{k:width$}  {v}");
    }
    Ok(())
}
