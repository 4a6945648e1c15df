//! Bytes per node: live heap bytes (counted by a wrapping global
//! allocator, so no RSS noise) of an in-memory keeper after loading
//! 1,000,000 nodes of 16 bytes at `/pop/b<i/1000>/n<i%1000>`, divided by
//! the node count. Also prints the process RSS for comparison.
//!
//! Run: `cargo bench --bench tree_memory` (about 10 s), or
//! `cargo bench --bench tree_memory -- 100000` for another size.
#![allow(unsafe_code)] // the counting allocator below

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use innkeeper::{Coordinator, CreateMode, Keeper, Op};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is
// updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PER_DIR: usize = 1000;
const PER_MULTI: usize = 100;
const VALUE: &[u8] = b"sixteen bytes!!!";

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn main() {
    let nodes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keeper = Keeper::in_memory().expect("keeper");
    let s = keeper.session().expect("session");
    s.create("/pop", b"", CreateMode::Persistent).expect("root");
    let (live_before, rss_before) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let started = Instant::now();
    let mut i = 0;
    while i < nodes {
        if i % PER_DIR == 0 {
            s.create(
                &format!("/pop/b{}", i / PER_DIR),
                b"",
                CreateMode::Persistent,
            )
            .expect("dir");
        }
        let n = PER_MULTI.min(nodes - i).min(PER_DIR - i % PER_DIR);
        let ops: Vec<Op> = (i..i + n)
            .map(|j| {
                let path = format!("/pop/b{}/n{}", j / PER_DIR, j % PER_DIR);
                Op::create(path, VALUE, CreateMode::Persistent)
            })
            .collect();
        s.multi(&ops).expect("multi");
        i += n;
    }
    let took = started.elapsed();
    let live = LIVE.load(Ordering::Relaxed).saturating_sub(live_before);
    let rss = rss_bytes().saturating_sub(rss_before);
    println!(
        "tree_memory/{nodes} nodes of {} B: {:.1} heap bytes/node ({:.1} MiB live), \
         {:.1} RSS bytes/node ({:.1} MiB), loaded in {took:.2?}",
        VALUE.len(),
        live as f64 / nodes as f64,
        live as f64 / 1048576.0,
        rss as f64 / nodes as f64,
        rss as f64 / 1048576.0,
    );
    assert_eq!(keeper.node_count(), nodes + nodes.div_ceil(PER_DIR) + 5);
}
