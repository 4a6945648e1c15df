//! Replays operation traces recorded from Apache ZooKeeper 3.8.0
//! (`tests/data/zookeeper-traces/README.md`) against the in-process engine
//! and compares every result, Stat field (zxids by rank) and watch event.
//!
//! How: one fresh keeper per seed; each slot is a session with the
//! `ip:127.0.0.1` identity the recorded connections had; watches use the
//! session's default watcher, like the recorder's Java client; after each
//! step every session's event stream is drained and compared.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use innkeeper::{
    Acl, AddWatchMode, Coordinator, CreateMode, CreateOptions, ErrorKind, Id, Keeper, KeeperState,
    ManualClock, Op, OpResult, Perms, ReadOp, ReadResult, Session, Stat, WatcherType,
};
use serde_json::{json, Value};

const ROOT: &str = "/trace";

fn abs(p: &str) -> String {
    if p == "~" {
        ROOT.to_string()
    } else {
        format!("{ROOT}{}", p.strip_prefix('~').unwrap_or(p))
    }
}

fn rel(p: &str) -> String {
    if p == ROOT {
        "~".to_string()
    } else {
        format!("~{}", p.strip_prefix(ROOT).unwrap_or(p))
    }
}

fn decode_data(v: &Value) -> Option<Vec<u8>> {
    let s = v.as_str()?;
    if let Some(hex) = s.strip_prefix("0x") {
        Some(
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect(),
        )
    } else {
        Some(s.as_bytes().to_vec())
    }
}

fn encode_data(d: &Option<Vec<u8>>) -> Value {
    match d {
        None => Value::Null,
        Some(bytes) => {
            let printable = bytes
                .iter()
                .all(|b| (0x20..=0x7e).contains(b) && *b != b'\'');
            if printable && !bytes.starts_with(b"0x") {
                Value::String(String::from_utf8(bytes.clone()).unwrap())
            } else {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                Value::String(format!("0x{hex}"))
            }
        }
    }
}

fn acl_of(v: &Value) -> Vec<Acl> {
    v.as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    Acl::new(
                        Perms(a["perms"].as_i64().unwrap() as i32),
                        Id::new(a["scheme"].as_str().unwrap(), a["id"].as_str().unwrap()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn mode_of(v: &Value) -> CreateMode {
    match v.as_str().unwrap() {
        "PERSISTENT" => CreateMode::Persistent,
        "EPHEMERAL" => CreateMode::Ephemeral,
        "PERSISTENT_SEQUENTIAL" => CreateMode::PersistentSequential,
        "EPHEMERAL_SEQUENTIAL" => CreateMode::EphemeralSequential,
        "CONTAINER" => CreateMode::Container,
        other => panic!("mode {other}"),
    }
}

fn err_value(kind: ErrorKind) -> Value {
    json!({"rc": kind.zk_name(), "code": kind.code()})
}

/// zxid ranks and session labels, per the README's normalisation.
struct Normalizer {
    zxids: BTreeSet<i64>,
    labels: HashMap<i64, String>,
}

impl Normalizer {
    fn rank(&mut self, v: i64) -> String {
        let k = self.zxids.range(..v).count();
        if self.zxids.contains(&v) {
            format!("z#{k}")
        } else {
            let newest = self.zxids.iter().next_back().is_none_or(|max| v > *max);
            self.zxids.insert(v);
            if newest {
                "znew".to_string()
            } else {
                format!("znew@{k}")
            }
        }
    }

    fn stat(&mut self, s: &Stat) -> Value {
        let owner = if s.ephemeral_owner == 0 {
            json!(0)
        } else {
            json!(self
                .labels
                .get(&s.ephemeral_owner)
                .cloned()
                .unwrap_or_else(|| "?".into()))
        };
        let cz = self.rank(s.czxid);
        let mz = self.rank(s.mzxid);
        let pz = self.rank(s.pzxid);
        json!({"version": s.version, "cversion": s.cversion, "aversion": s.aversion,
               "dataLength": s.data_length, "numChildren": s.num_children,
               "ephemeralOwner": owner, "czxid": cz, "mzxid": mz, "pzxid": pz})
    }
}

struct Replay {
    keeper: Keeper,
    slots: Vec<Session>,
    gens: Vec<u32>,
    norm: Normalizer,
}

impl Replay {
    fn new(n_sessions: usize) -> Replay {
        let clock = ManualClock::new(1_700_000_000_000);
        let keeper = Keeper::builder().clock(clock).build().unwrap();
        let admin = keeper.session().unwrap();
        admin
            .create_with(ROOT, None, &CreateOptions::new(CreateMode::Persistent))
            .unwrap();
        admin.close().unwrap();
        let mut replay = Replay {
            keeper,
            slots: Vec::new(),
            gens: vec![0; n_sessions],
            norm: Normalizer {
                zxids: BTreeSet::new(),
                labels: HashMap::new(),
            },
        };
        for slot in 0..n_sessions {
            let s = replay.open(slot);
            replay.slots.push(s);
        }
        replay
    }

    fn open(&mut self, slot: usize) -> Session {
        let s = self
            .keeper
            .session_with(Duration::from_secs(30), vec![Id::new("ip", "127.0.0.1")])
            .unwrap();
        self.norm
            .labels
            .insert(s.session_id(), format!("S{slot}.{}", self.gens[slot]));
        s
    }

    fn run(&mut self, slot: usize, op: &Value) -> Value {
        let s = &self.slots[slot];
        let w = s.default_watcher();
        let path = op["path"].as_str().map(abs).unwrap_or_default();
        let watch = |key: &str| {
            if op[key].as_bool().unwrap_or(false) {
                Some(&w)
            } else {
                None
            }
        };
        match op["type"].as_str().unwrap() {
            "create" => {
                let options = CreateOptions::new(mode_of(&op["mode"])).acl(acl_of(&op["acl"]));
                let data = decode_data(&op["data"]);
                match s.create_with(&path, data.as_deref(), &options) {
                    Ok((p, stat)) => {
                        if op["withStat"].as_bool().unwrap_or(false) {
                            let stat = self.norm.stat(&stat);
                            json!({"rc": "OK", "path": rel(&p), "stat": stat})
                        } else {
                            json!({"rc": "OK", "path": rel(&p)})
                        }
                    }
                    Err(e) => err_value(e.kind()),
                }
            }
            "delete" => match s.delete(&path, op["version"].as_i64().unwrap() as i32) {
                Ok(()) => json!({"rc": "OK"}),
                Err(e) => err_value(e.kind()),
            },
            "setData" => {
                let data = decode_data(&op["data"]);
                match s.set_data_with(
                    &path,
                    data.as_deref(),
                    op["version"].as_i64().unwrap() as i32,
                ) {
                    Ok(stat) => json!({"rc": "OK", "stat": self.norm.stat(&stat)}),
                    Err(e) => err_value(e.kind()),
                }
            }
            "exists" => match s.exists_with(&path, watch("watch")) {
                Ok(Some(stat)) => json!({"rc": "OK", "stat": self.norm.stat(&stat)}),
                Ok(None) => json!({"rc": "OK", "stat": null}),
                Err(e) => err_value(e.kind()),
            },
            "getData" => match s.get_data_with(&path, watch("watch")) {
                Ok((data, stat)) => {
                    json!({"rc": "OK", "data": encode_data(&data), "stat": self.norm.stat(&stat)})
                }
                Err(e) => err_value(e.kind()),
            },
            t @ ("getChildren" | "getChildren2") => {
                match s.get_children_with(&path, watch("watch")) {
                    Ok((mut children, stat)) => {
                        children.sort();
                        if t == "getChildren2" {
                            json!({"rc": "OK", "children": children, "stat": self.norm.stat(&stat)})
                        } else {
                            json!({"rc": "OK", "children": children})
                        }
                    }
                    Err(e) => err_value(e.kind()),
                }
            }
            "getACL" => match s.get_acl(&path) {
                Ok((acl, stat)) => {
                    let acl: Vec<Value> = acl
                        .iter()
                        .map(|a| json!({"perms": a.perms.0, "scheme": a.id.scheme, "id": a.id.id}))
                        .collect();
                    json!({"rc": "OK", "acl": acl, "stat": self.norm.stat(&stat)})
                }
                Err(e) => err_value(e.kind()),
            },
            "setACL" => {
                match s.set_acl(
                    &path,
                    &acl_of(&op["acl"]),
                    op["aversion"].as_i64().unwrap() as i32,
                ) {
                    Ok(stat) => json!({"rc": "OK", "stat": self.norm.stat(&stat)}),
                    Err(e) => err_value(e.kind()),
                }
            }
            "multi" => self.multi(slot, op),
            "multiRead" => {
                let ops: Vec<ReadOp> = op["ops"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| {
                        let p = abs(o["path"].as_str().unwrap());
                        match o["type"].as_str().unwrap() {
                            "getData" => ReadOp::GetData(p),
                            _ => ReadOp::GetChildren(p),
                        }
                    })
                    .collect();
                match s.multi_read(&ops) {
                    Ok(results) => {
                        let results: Vec<Value> = results
                            .into_iter()
                            .map(|r| match r {
                                ReadResult::Data(d, stat) => json!({"type": "getData",
                                    "data": encode_data(&d), "stat": self.norm.stat(&stat)}),
                                ReadResult::Children(mut c) => {
                                    c.sort();
                                    json!({"type": "getChildren", "children": c})
                                }
                                ReadResult::Error(k) => {
                                    json!({"type": "error", "err": k.zk_name(), "code": k.code()})
                                }
                            })
                            .collect();
                        json!({"rc": "OK", "results": results})
                    }
                    Err(e) => err_value(e.kind()),
                }
            }
            "getEphemerals" => {
                let prefix = op["prefix"].as_str().map(abs).unwrap_or_else(|| "/".into());
                match s.get_ephemerals(&prefix) {
                    Ok(mut paths) => {
                        paths.sort();
                        let paths: Vec<String> = paths.iter().map(|p| rel(p)).collect();
                        json!({"rc": "OK", "paths": paths})
                    }
                    Err(e) => err_value(e.kind()),
                }
            }
            "getAllChildrenNumber" => match s.get_all_children_number(&path) {
                Ok(n) => json!({"rc": "OK", "count": n}),
                Err(e) => err_value(e.kind()),
            },
            "sync" => match s.sync(&path) {
                Ok(()) => json!({"rc": "OK", "path": rel(&path)}),
                Err(e) => err_value(e.kind()),
            },
            "addWatch" => {
                let mode = match op["mode"].as_str().unwrap() {
                    "PERSISTENT" => AddWatchMode::Persistent,
                    _ => AddWatchMode::PersistentRecursive,
                };
                match s.add_watch(&path, mode, &w) {
                    Ok(()) => json!({"rc": "OK"}),
                    Err(e) => err_value(e.kind()),
                }
            }
            "removeAllWatches" => {
                let kind = match op["watcherType"].as_str().unwrap() {
                    "Children" => WatcherType::Children,
                    "Data" => WatcherType::Data,
                    _ => WatcherType::Any,
                };
                match s.remove_watches(&path, kind, None) {
                    Ok(()) => json!({"rc": "OK"}),
                    Err(e) => err_value(e.kind()),
                }
            }
            "whoAmI" => match s.who_am_i() {
                Ok(infos) => {
                    // ZooKeeper returns a hash set's order; compare as a set.
                    let mut v: Vec<String> = infos
                        .iter()
                        .map(|i| format!("{}:{}", i.auth_scheme, i.user))
                        .collect();
                    v.sort();
                    json!({"rc": "OK", "clientInfo": v})
                }
                Err(e) => err_value(e.kind()),
            },
            "addAuth" => {
                match s.add_auth(
                    op["scheme"].as_str().unwrap(),
                    op["auth"].as_str().unwrap().as_bytes(),
                ) {
                    Ok(()) => json!({"rc": "OK"}),
                    Err(e) => err_value(e.kind()),
                }
            }
            "closeSession" => match s.close() {
                Ok(()) => json!({"rc": "OK"}),
                Err(e) => err_value(e.kind()),
            },
            other => panic!("op {other}"),
        }
    }

    fn multi(&mut self, slot: usize, op: &Value) -> Value {
        let ops: Vec<Op> = op["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let p = abs(o["path"].as_str().unwrap());
                let version = o["version"].as_i64().unwrap_or(-1) as i32;
                match o["type"].as_str().unwrap() {
                    "create" => {
                        let options =
                            CreateOptions::new(mode_of(&o["mode"])).acl(acl_of(&o["acl"]));
                        Op::create_with(p, decode_data(&o["data"]).as_deref(), &options)
                    }
                    "delete" => Op::delete(p, version),
                    "setData" => innkeeper::Op::SetData {
                        path: p,
                        data: decode_data(&o["data"]),
                        version,
                    },
                    "check" => Op::check(p, version),
                    other => panic!("multi op {other}"),
                }
            })
            .collect();
        let results = match self.slots[slot].multi_results(&ops) {
            Ok(r) => r,
            Err(e) => return err_value(e.kind()),
        };
        let first_error = results.iter().find_map(|r| match r {
            OpResult::Error(k) => Some(*k),
            _ => None,
        });
        let sub_ops = op["ops"].as_array().unwrap();
        let values: Vec<Value> = results
            .iter()
            .zip(sub_ops)
            .map(|(r, o)| match r {
                // A container create travels as createContainer (19), whose
                // result carries a Stat (docs/zookeeper-semantics.md E.3).
                OpResult::Create { path, stat } if o["mode"] == "CONTAINER" => {
                    json!({"type": "create", "path": rel(path), "stat": self.norm.stat(stat)})
                }
                OpResult::Create { path, .. } => json!({"type": "create", "path": rel(path)}),
                OpResult::Delete => json!({"type": "delete"}),
                OpResult::SetData { stat } => {
                    json!({"type": "setData", "stat": self.norm.stat(stat)})
                }
                OpResult::Check => json!({"type": "check"}),
                OpResult::RolledBack => json!({"type": "error", "err": "OK", "code": 0}),
                OpResult::Error(k) => {
                    json!({"type": "error", "err": k.zk_name(), "code": k.code()})
                }
            })
            .collect();
        match first_error {
            None => json!({"rc": "OK", "results": values}),
            Some(k) => json!({"rc": k.zk_name(), "code": k.code(), "results": values}),
        }
    }

    fn events(&self) -> Vec<(usize, String, String)> {
        let mut out = Vec::new();
        for (slot, s) in self.slots.iter().enumerate() {
            for e in s.events().try_iter() {
                if e.state != KeeperState::SyncConnected || e.path.is_none() {
                    continue;
                }
                out.push((
                    slot,
                    e.event_type.name().to_string(),
                    rel(e.path.as_deref().unwrap_or("")),
                ));
            }
        }
        out
    }
}

fn expected_events(line: &Value) -> Vec<(usize, String, String)> {
    line["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["session"].as_u64().unwrap() as usize,
                e["type"].as_str().unwrap().to_string(),
                e["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn normalise_expected(mut result: Value, op: &Value) -> Value {
    if op["type"] == "whoAmI" {
        if let Some(list) = result["clientInfo"].as_array_mut() {
            list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        }
    }
    result
}

#[test]
fn engine_reproduces_zookeeper_traces() {
    let text = include_str!("../data/zookeeper-traces/traces.jsonl");
    let mut by_seed: Vec<(u64, Vec<Value>)> = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let seed = v["seed"].as_u64().unwrap();
        match by_seed.last_mut() {
            Some((s, lines)) if *s == seed => lines.push(v),
            _ => by_seed.push((seed, vec![v])),
        }
    }
    assert_eq!(by_seed.len(), 40);
    let mut failures = Vec::new();
    for (seed, lines) in &by_seed {
        let mut replay = Replay::new(lines[0]["sessions"].as_u64().unwrap() as usize);
        for line in lines {
            let slot = line["session"].as_u64().unwrap() as usize;
            let op = &line["op"];
            let got = replay.run(slot, op);
            let want = normalise_expected(line["result"].clone(), op);
            let mut got_events = replay.events();
            let mut want_events = expected_events(line);
            if line["eventsUnordered"].as_bool().unwrap_or(false) {
                got_events.sort();
                want_events.sort();
            }
            if got != want || got_events != want_events {
                failures.push(format!(
                    "seed {seed} step {}: op {op}\n  want {want}\n  got  {got}\n  want events {want_events:?}\n  got events  {got_events:?}",
                    line["step"]
                ));
                break;
            }
            if op["type"] == "closeSession" {
                replay.gens[slot] += 1;
                let s = replay.open(slot);
                replay.slots[slot] = s;
            }
            replay.keeper.check_invariants().unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 40 seeds diverge:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
