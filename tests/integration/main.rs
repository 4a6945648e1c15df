mod core;
mod model;
mod traces;
