//! Configuration management: services follow a config node through a node
//! cache; operators change it by compare-and-set; a counter counts
//! deployments.

use innkeeper::recipes::{AtomicCounter, CacheEvent, NodeCache, SharedValue};

use crate::stage::{Stage, SOON};

pub fn run(stage: &Stage) -> innkeeper::Result<()> {
    stage.title("Config management: node cache, compare-and-set, counter");
    let config = SharedValue::new(stage.join("ops"), "/config/web", b"workers=4")?;
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let caches: Vec<_> = ["web-1", "web-2"]
        .into_iter()
        .map(|name| {
            let cache = NodeCache::new(stage.join(name), "/config/web")?;
            let tx = tx.clone();
            cache.on_change(move |event| {
                if let CacheEvent::Updated(node) = event {
                    let _ = tx.send(format!(
                        "{name}|reloads: {}",
                        String::from_utf8_lossy(&node.data)
                    ));
                }
            });
            Ok(cache)
        })
        .collect::<innkeeper::Result<_>>()?;
    stage.say(
        "web-1",
        format!(
            "starts with {}",
            String::from_utf8_lossy(&caches[0].current().map(|n| n.data).unwrap_or_default())
        ),
    );

    let seen_by_alice = config.get()?;
    let seen_by_bob = config.get()?;
    let alice = config.compare_and_set(seen_by_alice.version, b"workers=8")?;
    stage.say(
        "alice",
        format!(
            "sets workers=8 at version {}: {}",
            seen_by_alice.version,
            if alice.is_some() { "ok" } else { "conflict" }
        ),
    );
    let bob = config.compare_and_set(seen_by_bob.version, b"workers=2")?;
    stage.say(
        "bob",
        format!(
            "sets workers=2 at version {}: {}",
            seen_by_bob.version,
            if bob.is_some() {
                "ok"
            } else {
                "conflict: alice changed it first"
            }
        ),
    );
    let reloads = |n: usize| {
        for _ in 0..n {
            if let Ok(line) = rx.recv_timeout(SOON) {
                let (who, what) = line.split_once('|').unwrap_or(("?", &line));
                stage.say(who, what);
            }
        }
    };
    reloads(2);
    let fresh = config.get()?;
    stage.say(
        "bob",
        format!(
            "re-reads {} (version {}) and settles on workers=6",
            String::from_utf8_lossy(&fresh.data),
            fresh.version
        ),
    );
    if config
        .compare_and_set(fresh.version, b"workers=6")?
        .is_some()
    {
        stage.say(
            "bob",
            format!("sets workers=6 at version {}: ok", fresh.version),
        );
    }
    reloads(2);

    let deploys = AtomicCounter::new(stage.join("ci"), "/stats/deploys")?;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let _ = deploys.increment();
                }
            });
        }
    });
    stage.say(
        "ci",
        format!("4 pipelines × 25 deploys counted: {}", deploys.get()?),
    );
    Ok(())
}
