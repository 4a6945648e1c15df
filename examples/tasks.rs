//! The tasks scenario on its own: `cargo run --example tasks`.

#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;
#[path = "scenarios/tasks.rs"]
mod tasks;

fn main() -> innkeeper::Result<()> {
    tasks::run(&stage::Stage::new())
}
