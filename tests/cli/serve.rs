//! `innkeeper serve`: seeding from a dump, the config file, refused values,
//! logs.

use crate::{dump_nodes, Server};

#[test]
fn serve_load_seeds_a_fresh_keeper_from_a_dump() {
    let source = Server::start(&["--in-memory"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("seed.json");
    source.ok(&["create", "/seed", "s"]);
    source.ok(&["create", "/seed/a", "1"]);
    source.ok(&["dump", "-o", file.to_str().unwrap()]);
    let seeded = Server::start(&["--in-memory", "--load", file.to_str().unwrap()]);
    assert_eq!(seeded.ok(&["ls", "-R", "/"]), "/seed\n/seed/a\n");
    assert_eq!(seeded.ok(&["get", "/seed/a"]), "1");
    let again = tmp.path().join("again.json");
    seeded.ok(&["dump", "-o", again.to_str().unwrap()]);
    let strip = |nodes: Vec<serde_json::Value>| {
        nodes
            .into_iter()
            .map(|n| (n["path"].clone(), n["data"].clone(), n["acl"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(dump_nodes(&file)), strip(dump_nodes(&again)));
}
