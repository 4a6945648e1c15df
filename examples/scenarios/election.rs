//! Three replicas elect a leader; the leader hangs and the next in line
//! takes over; a selector rotates leadership among schedulers.

use std::time::Duration;

use innkeeper::recipes::{LeaderLatch, LeaderSelector};

use crate::stage::{Stage, SOON};

pub fn run(stage: &Stage) -> innkeeper::Result<()> {
    stage.title("Leader election: a latch, then a rotating selector");
    let (tx, rx) = crossbeam_channel::unbounded::<(String, bool)>();
    let mut replicas = Vec::new();
    for name in ["db-1", "db-2", "db-3"] {
        let session = stage.join(name);
        let latch = LeaderLatch::start(session.clone(), "/election/db", name)?;
        let tx = tx.clone();
        let me = name.to_string();
        latch.on_change(move |leading| {
            let _ = tx.send((me.clone(), leading));
        });
        stage.say(
            name,
            if latch.is_leader() {
                "joins and leads"
            } else {
                "joins and follows"
            },
        );
        replicas.push((name, session, latch));
    }
    stage.say(
        "election",
        format!("line: {}", replicas[0].2.participants()?.join(" → ")),
    );
    while rx.try_recv().is_ok() {}
    for round in 0..2 {
        let (name, session, _) = &replicas[round];
        stage.crash(name, session);
        let (next, _, latch) = &replicas[round + 1];
        if latch.wait_leadership(SOON)? {
            stage.say(
                next,
                format!(
                    "is the leader now (fencing token {})",
                    latch.fencing_token()
                ),
            );
        }
        // Listeners run on each session's event thread: collect the two
        // notifications this hand-over causes.
        for _ in 0..2 {
            let Ok((who, leading)) = rx.recv_timeout(SOON) else {
                break;
            };
            let news = if leading {
                "is told it leads"
            } else {
                "is told it no longer leads"
            };
            stage.say(&who, news);
        }
    }
    drop(replicas);

    let (ran_tx, ran_rx) = crossbeam_channel::unbounded::<String>();
    let selectors: Vec<LeaderSelector> = ["cron-a", "cron-b"]
        .into_iter()
        .map(|name| {
            let ran_tx = ran_tx.clone();
            LeaderSelector::builder(stage.join(name), "/election/cron")
                .id(name)
                .start(move |term| {
                    let _ = ran_tx.send(format!("{} (token {})", term.id(), term.fencing_token()));
                    // Hold the term briefly (real time), so the other
                    // selector has queued by the time this one requeues.
                    term.wait_lost(Duration::from_millis(20));
                })
        })
        .collect::<innkeeper::Result<_>>()?;
    for _ in 0..4 {
        if let Ok(who) = ran_rx.recv_timeout(SOON) {
            stage.say(
                "selector",
                format!("term run by {who}, then it queues again"),
            );
        }
    }
    for s in &selectors {
        s.close()?;
    }
    Ok(())
}
