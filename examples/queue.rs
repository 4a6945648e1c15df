//! The queue scenario on its own: `cargo run --example queue`.

#[path = "scenarios/queue.rs"]
mod queue;
#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;

fn main() -> innkeeper::Result<()> {
    queue::run(&stage::Stage::new())
}
