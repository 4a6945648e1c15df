//! The barriers scenario on its own: `cargo run --example barriers`.

#[path = "scenarios/barriers.rs"]
mod barriers;
#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;

fn main() -> innkeeper::Result<()> {
    barriers::run(&stage::Stage::new())
}
