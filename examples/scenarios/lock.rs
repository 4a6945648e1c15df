//! Three processes share one printer through a fair lock; the holder
//! hangs and the next in line takes over.

use innkeeper::recipes::Lock;

use crate::stage::{Stage, SOON};

pub fn run(stage: &Stage) -> innkeeper::Result<()> {
    stage.title("Exclusive lock: one printer, three processes");
    let alice_session = stage.join("alice");
    let alice = Lock::new(alice_session.clone(), "/locks/printer")?.with_label("alice");
    let guard = alice.lock()?;
    stage.say(
        "alice",
        format!("holds the lock (fencing token {})", guard.fencing_token()),
    );

    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::scope(|scope| -> innkeeper::Result<()> {
        for name in ["bob", "carol"] {
            let lock = Lock::new(stage.join(name), "/locks/printer")?.with_label(name);
            let tx = tx.clone();
            scope.spawn(move || {
                if let Ok(Some(guard)) = lock.lock_timeout(SOON) {
                    let _ = tx.send((name, guard.fencing_token()));
                    let _ = guard.release();
                }
            });
            // Wait until this one is queued before starting the next.
            while alice.contenders()?.len() < if name == "bob" { 2 } else { 3 } {
                std::thread::yield_now();
            }
            stage.say(
                name,
                "queues for the lock and watches only the node ahead of it",
            );
        }
        let queue: Vec<String> = alice
            .contenders()?
            .into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect();
        stage.say("lock", format!("line: {}", queue.join(" → ")));
        stage.crash("alice", &alice_session);
        drop(guard);
        for _ in 0..2 {
            if let Ok((name, token)) = rx.recv_timeout(SOON) {
                stage.say(
                    name,
                    format!("holds the lock (fencing token {token}), prints, releases"),
                );
            }
        }
        Ok(())
    })?;
    stage.say("lock", "free again; no lock nodes left behind");
    Ok(())
}
