//! Barriers: a release gate, a double barrier around a computation, and a
//! step barrier where named participants post their status.

use std::time::Duration;

use innkeeper::recipes::{Barrier, DoubleBarrier, StepBarrier};

use crate::stage::{Stage, SOON};

pub fn run(stage: &Stage) -> innkeeper::Result<()> {
    stage.title("Barriers: gate, double barrier, step barrier");
    let gate = Barrier::new(stage.join("release-manager"), "/gates/release")?;
    gate.raise()?;
    stage.say("release-mgr", "raises the release gate");
    let waiter = Barrier::new(stage.join("deployer"), "/gates/release")?;
    let waited = waiter.wait_timeout(Duration::from_millis(20))?;
    stage.say("deployer", format!("gate open? {waited} — waits"));
    gate.lower()?;
    stage.say("release-mgr", "lowers the gate");
    stage.say(
        "deployer",
        format!("gate open? {}", waiter.wait_timeout(SOON)?),
    );

    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    std::thread::scope(|scope| -> innkeeper::Result<()> {
        for name in ["map-1", "map-2", "map-3"] {
            let barrier = DoubleBarrier::new(stage.join(name), "/rounds/1", 3, name)?;
            let tx = tx.clone();
            scope.spawn(move || {
                if barrier.enter_timeout(SOON).unwrap_or(false) {
                    let _ = tx.send(format!("{name}|all three arrived: computing"));
                    if barrier.leave_timeout(SOON).unwrap_or(false) {
                        let _ = tx.send(format!("{name}|all three done: leaving"));
                    }
                }
            });
        }
        drop(tx);
        for line in rx.iter() {
            let (who, what) = line.split_once('|').unwrap_or(("?", &line));
            stage.say(who, what);
        }
        Ok(())
    })?;

    let crew = ["A", "B", "C"];
    let sessions: Vec<_> = crew.iter().map(|who| stage.join(who)).collect();
    let steps: Vec<StepBarrier<_>> = crew
        .iter()
        .zip(&sessions)
        .map(|(who, s)| StepBarrier::new(s.clone(), "/migration", who, &crew))
        .collect::<innkeeper::Result<_>>()?;
    steps[0].ready(1)?;
    stage.say("A", "posts A:ready for step 1");
    steps[1].ready(1)?;
    stage.say("B", "posts B:ready");
    steps[1].post(1, "not-ready")?;
    stage.say(
        "B",
        "changes its mind: posts B:not-ready (the later entry wins)",
    );
    steps[2].ready(1)?;
    stage.say("C", "posts C:ready");
    stage.say(
        "all",
        format!("step 1 started? {}", steps[0].started(1)?.is_some()),
    );
    steps[1].ready(1)?;
    stage.say("B", "posts B:ready again");
    let starts: Vec<u64> = steps
        .iter()
        .filter_map(|s| s.wait_start(1, SOON).ok().flatten())
        .map(|s| s.at)
        .collect();
    stage.say(
        "all",
        format!("step 1 starts; every observer names the same entry: {starts:?}"),
    );
    steps[0].destroy()?;
    Ok(())
}
