mod core;
mod model;
mod store;
mod traces;
fn main() {}
