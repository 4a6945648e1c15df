//! The discovery scenario on its own: `cargo run --example discovery`.

#[path = "scenarios/discovery.rs"]
mod discovery;
#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;

fn main() -> innkeeper::Result<()> {
    discovery::run(&stage::Stage::new())
}
