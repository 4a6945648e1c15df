mod core;
mod docs;
mod model;
mod store;
mod traces;
fn main() {}
