//! A work queue: a consumer dies holding a job, which is redelivered;
//! urgent work jumps the line in a priority queue.

use std::time::Duration;

use innkeeper::recipes::{PriorityQueue, Queue};

use crate::stage::{Stage, SOON};

pub fn run(stage: &Stage) -> innkeeper::Result<()> {
    stage.title("Queues: exactly-once takes, redelivery after a crash, priorities");
    let producer = Queue::new(stage.join("producer"), "/queues/thumbnails")?;
    for n in 1..=3 {
        producer.put(format!("photo-{n}").as_bytes())?;
    }
    stage.say("producer", "put photo-1, photo-2, photo-3");

    let flaky_session = stage.join("flaky");
    let flaky = Queue::new(flaky_session.clone(), "/queues/thumbnails")?;
    let claim = flaky.claim_timeout(SOON)?;
    if let Some(claim) = &claim {
        stage.say(
            "flaky",
            format!(
                "claims {} and starts working",
                String::from_utf8_lossy(claim.data())
            ),
        );
    }
    stage.crash("flaky", &flaky_session);
    stage.say(
        "keeper",
        "the claim was ephemeral: the job is back in the queue",
    );

    let steady = Queue::new(stage.join("steady"), "/queues/thumbnails")?;
    while let Some(job) = steady.take_timeout(Duration::ZERO)? {
        stage.say("steady", format!("took {}", String::from_utf8_lossy(&job)));
    }
    if let Some(claim) = claim {
        let late = claim.complete().map(|_| ()).map_err(|e| e.kind());
        stage.say(
            "flaky",
            format!("(too late) tries to complete its claim: {late:?}"),
        );
    }

    let alerts = PriorityQueue::new(stage.join("monitor"), "/queues/alerts")?;
    alerts.put(b"disk 80% on web-2", 5)?;
    alerts.put(b"web-1 unreachable", 0)?;
    alerts.put(b"cert expires in 20 days", 9)?;
    stage.say("monitor", "raised three alerts (priorities 5, 0, 9)");
    while let Some(alert) = alerts.try_take()? {
        stage.say(
            "on-call",
            format!("handles: {}", String::from_utf8_lossy(&alert)),
        );
    }
    Ok(())
}
