//! The tour: every recipe scenario, one after the other, in one process
//! with simulated participants on a manual clock.
//!
//! `cargo run --example tour`

#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;

#[path = "scenarios/barriers.rs"]
mod barriers;
#[path = "scenarios/config.rs"]
mod config;
#[path = "scenarios/discovery.rs"]
mod discovery;
#[path = "scenarios/election.rs"]
mod election;
#[path = "scenarios/lock.rs"]
mod lock;
#[path = "scenarios/queue.rs"]
mod queue;
#[path = "scenarios/tasks.rs"]
mod tasks;

fn main() -> innkeeper::Result<()> {
    println!("innkeeper recipes tour: each participant below has its own session on one");
    println!("in-process keeper. Time is the keeper's (manual) clock: a 'hang' stops a");
    println!("participant's heartbeats and the clock runs until its session expires.");
    let stage = stage::Stage::new();
    lock::run(&stage)?;
    election::run(&stage)?;
    queue::run(&stage)?;
    config::run(&stage)?;
    discovery::run(&stage)?;
    tasks::run(&stage)?;
    barriers::run(&stage)?;
    stage.pass(std::time::Duration::from_secs(10));
    println!();
    println!("All scenarios done. Locks, leases, claims, members and workers left nothing");
    println!("behind (their empty containers were reaped); what remains is data the");
    println!("scenarios wrote on purpose:");
    let session = stage.join("auditor");
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let Ok(mut children) = innkeeper::Coordinator::get_children(&*session, &p) else {
            continue;
        };
        if children.is_empty() && p != "/" {
            println!("  {p}");
        }
        children.sort();
        for c in children.into_iter().rev() {
            if p == "/" && c == "zookeeper" {
                continue;
            }
            stack.push(innkeeper::path::join(&p, &c));
        }
    }
    Ok(())
}
