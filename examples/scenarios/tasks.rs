//! A task coordinator: six tasks shared by three workers; one dies and the
//! survivors take its tasks over; it comes back and gets its share.

use std::collections::BTreeMap;

use crossbeam_channel::Receiver;
use innkeeper::recipes::{TaskBoard, TaskEvent, Worker};
use innkeeper::Session;

use crate::stage::{Stage, SOON};

type Log = (String, TaskEvent);

fn start(
    stage: &Stage,
    id: &str,
    log: &crossbeam_channel::Sender<Log>,
) -> innkeeper::Result<(std::sync::Arc<Session>, Worker<Session>)> {
    let session = stage.join(id);
    let (log, me) = (log.clone(), id.to_string());
    let worker = Worker::start(session.clone(), "/jobs", id, move |event| {
        let _ = log.send((me.clone(), event.clone()));
    })?;
    stage.say(id, "registers as a live worker");
    Ok((session, worker))
}

fn narrate(stage: &Stage, (who, event): Log) {
    match event {
        TaskEvent::Claimed {
            task,
            from: Some(from),
            ..
        } => stage.say(&who, format!("took over {task} from {from}")),
        TaskEvent::Claimed { task, .. } => stage.say(&who, format!("claimed {task}")),
        TaskEvent::Released { task } => stage.say(&who, format!("released {task} to make room")),
        TaskEvent::Gone { task } => stage.say(&who, format!("no longer owns {task}")),
        TaskEvent::Stopped(_) => stage.say(&who, "stopped: its session is gone"),
    }
}

/// Narrates worker events until every task has a live owner and the load
/// is even over `workers`.
fn settle(
    stage: &Stage,
    board: &TaskBoard<Session>,
    events: &Receiver<Log>,
    workers: usize,
) -> innkeeper::Result<()> {
    loop {
        while let Ok(event) = events.try_recv() {
            narrate(stage, event);
        }
        let assignments = board.assignments()?;
        let mut load: BTreeMap<String, usize> = BTreeMap::new();
        for owner in assignments.values().flatten() {
            *load.entry(owner.clone()).or_default() += 1;
        }
        let all_owned = assignments.values().all(Option::is_some);
        let (min, max) = (load.values().min(), load.values().max());
        if all_owned && load.len() == workers && max.zip(min).is_some_and(|(a, b)| a - b <= 1) {
            let summary: Vec<String> = load.iter().map(|(w, n)| format!("{w}: {n}")).collect();
            stage.say("board", format!("settled — {}", summary.join(", ")));
            return Ok(());
        }
        match events.recv_timeout(SOON) {
            Ok(event) => narrate(stage, event),
            Err(_) => return Ok(()),
        }
    }
}

pub fn run(stage: &Stage) -> innkeeper::Result<()> {
    stage.title("Task coordinator: takeover and rebalancing");
    let board = TaskBoard::new(stage.join("planner"), "/jobs")?;
    for n in 1..=6 {
        board.submit(&format!("task-{n}"), format!("render frame {n}").as_bytes())?;
    }
    stage.say("planner", "submitted task-1 … task-6");
    let (log, events) = crossbeam_channel::unbounded();
    let (_s1, w1) = start(stage, "w1", &log)?;
    let (s2, w2) = start(stage, "w2", &log)?;
    let (_s3, w3) = start(stage, "w3", &log)?;
    settle(stage, &board, &events, 3)?;
    stage.crash("w2", &s2);
    settle(stage, &board, &events, 2)?;
    drop(w2);
    stage.say("w2", "restarts with a new session");
    let (_s2, w2) = start(stage, "w2", &log)?;
    settle(stage, &board, &events, 3)?;
    drop((w1, w2, w3));
    Ok(())
}
