//! The election scenario on its own: `cargo run --example election`.

#[path = "scenarios/election.rs"]
mod election;
#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;

fn main() -> innkeeper::Result<()> {
    election::run(&stage::Stage::new())
}
