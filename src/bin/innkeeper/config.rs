//! `serve --config zoo.cfg`: the keys of a ZooKeeper configuration file that
//! innkeeper supports. The file is Java properties (`key=value`, `#` and
//! `!` comments); flags given on the command line override it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The values a zoo.cfg set, each `None` when the file does not name it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ZooCfg {
    pub client_port: Option<u16>,
    pub client_port_address: Option<IpAddr>,
    pub data_dir: Option<PathBuf>,
    pub tick_ms: Option<u64>,
    pub session_timeout_min_ms: Option<u64>,
    pub session_timeout_max_ms: Option<u64>,
    pub max_client_connections: Option<usize>,
    pub four_letter_words: Option<String>,
    pub max_frame_bytes: Option<usize>,
    /// `admin.serverPort`, or `None` when `admin.enableServer=false`.
    pub admin_port: Option<u16>,
    pub admin_address: Option<IpAddr>,
    pub metrics_port: Option<u16>,
    pub metrics_address: Option<IpAddr>,
    /// Keys this file holds that innkeeper does not use, with why.
    pub warnings: Vec<String>,
}

/// ZooKeeper keys that mean nothing for a standalone in-process server.
const WITHOUT_EFFECT: &[&str] = &[
    "initLimit",
    "syncLimit",
    "dataLogDir",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "standaloneEnabled",
    "reconfigEnabled",
    "forceSync",
    "snapCount",
    "preAllocSize",
    "globalOutstandingLimit",
    "leaderServes",
    "electionAlg",
    "admin.enableServer",
    "admin.idleTimeout",
    "admin.commandURL",
    "metricsProvider.className",
    "metricsProvider.exportJvmInfo",
    "serverCnxnFactory",
    "clientPortListenBacklog",
];

/// Reads and checks `path`. Errors name the key and the bad value.
pub fn read(path: &Path) -> Result<ZooCfg, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the text of a zoo.cfg.
pub fn parse(text: &str) -> Result<ZooCfg, String> {
    let mut pairs: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err(format!("line {}: no '=' in {line:?}", n + 1));
        };
        pairs.insert(key.trim().to_string(), (n + 1, value.trim().to_string()));
    }
    let mut cfg = ZooCfg::default();
    let mut admin_enabled = true;
    let mut admin_port = None;
    for (key, (line, value)) in &pairs {
        let bad = |what: &str| format!("line {line}: {key}={value:?} is not {what}");
        let number = |what: &str| value.parse::<u64>().map_err(|_| bad(what));
        match key.as_str() {
            "clientPort" => {
                cfg.client_port = Some(value.parse().map_err(|_| bad("a port"))?);
            }
            "clientPortAddress" => {
                cfg.client_port_address = Some(value.parse().map_err(|_| bad("an IP address"))?);
            }
            "dataDir" => cfg.data_dir = Some(PathBuf::from(value)),
            "tickTime" => cfg.tick_ms = Some(number("a number of ms")?),
            "minSessionTimeout" => cfg.session_timeout_min_ms = Some(number("a number of ms")?),
            "maxSessionTimeout" => cfg.session_timeout_max_ms = Some(number("a number of ms")?),
            "maxClientCnxns" => {
                cfg.max_client_connections =
                    Some(usize::try_from(number("a count")?).map_err(|_| bad("a count"))?);
            }
            "4lw.commands.whitelist" => cfg.four_letter_words = Some(value.clone()),
            "jute.maxbuffer" => {
                let n = if let Some(hex) = value.strip_prefix("0x") {
                    u64::from_str_radix(hex, 16).map_err(|_| bad("a number of bytes"))?
                } else {
                    number("a number of bytes")?
                };
                cfg.max_frame_bytes =
                    Some(usize::try_from(n).map_err(|_| bad("a number of bytes"))?);
            }
            "admin.serverPort" => admin_port = Some(value.parse().map_err(|_| bad("a port"))?),
            "admin.serverAddress" => {
                cfg.admin_address = Some(value.parse().map_err(|_| bad("an IP address"))?);
            }
            "metricsProvider.httpPort" => {
                cfg.metrics_port = Some(value.parse().map_err(|_| bad("a port"))?);
            }
            "metricsProvider.httpHost" => {
                cfg.metrics_address = Some(value.parse().map_err(|_| bad("an IP address"))?);
            }
            _ => {}
        }
        if key == "admin.enableServer" {
            admin_enabled = value.eq_ignore_ascii_case("true");
        }
        if key.starts_with("server.") || WITHOUT_EFFECT.contains(&key.as_str()) {
            if !matches!(
                key.as_str(),
                "admin.enableServer" | "metricsProvider.className"
            ) {
                cfg.warnings
                    .push(format!("{key} has no effect on innkeeper (ignored)"));
            }
        } else if !is_supported(key) {
            cfg.warnings.push(format!("unknown key {key} (ignored)"));
        }
    }
    // ZooKeeper's AdminServer is on unless disabled; innkeeper's only
    // when the file names a port.
    cfg.admin_port = if admin_enabled { admin_port } else { None };
    Ok(cfg)
}

fn is_supported(key: &str) -> bool {
    matches!(
        key,
        "clientPort"
            | "clientPortAddress"
            | "dataDir"
            | "tickTime"
            | "minSessionTimeout"
            | "maxSessionTimeout"
            | "maxClientCnxns"
            | "4lw.commands.whitelist"
            | "jute.maxbuffer"
            | "admin.serverPort"
            | "admin.serverAddress"
            | "metricsProvider.httpPort"
            | "metricsProvider.httpHost"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_supported_keys_and_names_the_others() {
        let cfg = parse(
            "# a comment\ntickTime=1000\nclientPort = 2182\nclientPortAddress=127.0.0.1\n\
             dataDir=/var/lib/zk\nminSessionTimeout=3000\nmaxSessionTimeout=9000\n\
             maxClientCnxns=0\n4lw.commands.whitelist=srvr,mntr\njute.maxbuffer=0x100000\n\
             admin.serverPort=9090\nmetricsProvider.httpPort=7000\ninitLimit=10\nfrobnicate=1\n",
        )
        .unwrap();
        assert_eq!(cfg.tick_ms, Some(1000));
        assert_eq!(cfg.client_port, Some(2182));
        assert_eq!(cfg.data_dir, Some(PathBuf::from("/var/lib/zk")));
        assert_eq!(cfg.session_timeout_min_ms, Some(3000));
        assert_eq!(cfg.max_client_connections, Some(0));
        assert_eq!(cfg.four_letter_words.as_deref(), Some("srvr,mntr"));
        assert_eq!(cfg.max_frame_bytes, Some(0x10_0000));
        assert_eq!(cfg.admin_port, Some(9090));
        assert_eq!(cfg.metrics_port, Some(7000));
        assert_eq!(
            cfg.warnings,
            [
                "unknown key frobnicate (ignored)",
                "initLimit has no effect on innkeeper (ignored)"
            ]
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = parse("tickTime=soon\n").unwrap_err();
        assert_eq!(e, "line 1: tickTime=\"soon\" is not a number of ms");
        let e = parse("clientPort=99999\n").unwrap_err();
        assert!(e.contains("clientPort"), "{e}");
        assert_eq!(
            parse("admin.enableServer=false\nadmin.serverPort=1\n")
                .unwrap()
                .admin_port,
            None
        );
    }
}
