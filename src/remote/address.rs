//! The connect string (`host[:port],host[:port]…[/chroot]`) and the chroot
//! mapping between client and server paths.

use crate::error::{Error, ErrorKind, Result};
use crate::path;

use super::DEFAULT_PORT;

/// A parsed connect string: `host[:port],host[:port]…[/chroot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectString {
    /// `(host, port)` pairs in the order given.
    pub(crate) hosts: Vec<(String, u16)>,
    /// The chroot, or `None` for `/` or none given.
    pub(crate) chroot: Option<String>,
}

impl ConnectString {
    /// Parses a connect string like the Java client's `ConnectStringParser`:
    /// the chroot starts at the first `/`, hosts are separated by commas,
    /// a missing port is 2181, IPv6 addresses go in brackets.
    pub(crate) fn parse(text: &str) -> Result<ConnectString> {
        let bad = |why: String| Error::new(ErrorKind::BadArguments).detail(why);
        let (hosts_text, chroot) = match text.find('/') {
            Some(idx) => (&text[..idx], Some(&text[idx..])),
            None => (text, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                path::validate(c).map_err(|e| {
                    bad(format!(
                        "invalid chroot {c:?}: {}",
                        e.detail_message().unwrap_or("")
                    ))
                })?;
                Some(c.to_string())
            }
        };
        let mut hosts = Vec::new();
        for part in hosts_text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (host, port) = if let Some(rest) = part.strip_prefix('[') {
                let Some((host, after)) = rest.split_once(']') else {
                    return Err(bad(format!("unclosed '[' in host {part:?}")));
                };
                match after {
                    "" => (host, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return Err(bad(format!("junk after ']' in host {part:?}"))),
                    },
                }
            } else {
                match part.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (part, None),
                }
            };
            if host.is_empty() {
                return Err(bad(format!("empty host name in {part:?}")));
            }
            let port = match port {
                None => DEFAULT_PORT,
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| bad(format!("invalid port in host {part:?}")))?,
            };
            hosts.push((host.to_string(), port));
        }
        if hosts.is_empty() {
            return Err(bad(format!("no host in connect string {text:?}")));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

/// The server path for a client path: the chroot prepended (`/` is the chroot itself).
pub(super) fn to_server(chroot: Option<&str>, client_path: &str) -> String {
    match chroot {
        None => client_path.to_string(),
        Some(root) if client_path == "/" => root.to_string(),
        Some(root) => format!("{root}{client_path}"),
    }
}

/// The client path for a server path: the chroot stripped. A path outside
/// the chroot (which a server should never send) is returned unchanged, as
/// the Java client does.
pub(super) fn to_client(chroot: Option<&str>, server_path: &str) -> String {
    match chroot {
        None => server_path.to_string(),
        Some(root) => match server_path.strip_prefix(root) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => server_path.to_string(),
        },
    }
}
