//! A fair distributed lock with failover: `cargo run --example lock`.

#[path = "scenarios/lock.rs"]
mod lock;
#[allow(dead_code)]
#[path = "scenarios/stage.rs"]
mod stage;

fn main() -> innkeeper::Result<()> {
    lock::run(&stage::Stage::new())
}
