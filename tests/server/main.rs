//! `innkeeper::server` over real sockets: each test starts a server on an
//! ephemeral port in-process and speaks raw frames built with
//! `innkeeper::proto`, so every byte a client sees is checked. Sections cite
//! `docs/zookeeper-semantics.md`.

mod client;
mod javaorder;
mod pipelining;
mod robustness;
mod wire;
