mod core;
mod traces;
