//! The config scenario on its own: `cargo run --example config`.

#[path = "scenarios/config.rs"]
mod config;
#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;

fn main() -> innkeeper::Result<()> {
    config::run(&stage::Stage::new())
}
