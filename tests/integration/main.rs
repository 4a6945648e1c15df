mod architecture;
mod core;
mod docs;
mod model;
mod store;
mod traces;

/// The library's own generator (`src/random.rs`), so seeded runs draw from
/// the same code as the library.
#[allow(dead_code)]
#[path = "../../src/random.rs"]
mod random;
fn main() {}
