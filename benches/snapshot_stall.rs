//! Write latency while a snapshot is taken: the `store_scale` example's
//! figures (load, disk, restart, and the worst durable `setData` latency
//! while the snapshot thread writes a snapshot of the whole state, beside
//! the worst outside it) as a bench entry.
//!
//! Run: `cargo bench --bench snapshot_stall` (100 000 and 1 000 000
//! nodes), or `cargo bench --bench snapshot_stall -- --nodes 200000`.

#[path = "../examples/store_scale.rs"]
mod store_scale;

fn main() {
    store_scale::main();
}
