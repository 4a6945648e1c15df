//! Integration tests of the recipes, on an in-process keeper with a manual
//! clock. Each module checks one recipe's safety property under many
//! interleavings, its liveness when a participant's session expires, and
//! that it leaves no nodes behind.

mod barrier;
mod cache;
mod common;
mod counter;
mod election;
mod lock;
mod lossy;
mod membership;
mod queue;
mod session_end;
mod step;
mod tasks;
