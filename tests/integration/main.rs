mod store;
mod traces;
fn main() {}
