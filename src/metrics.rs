//! Histograms behind `innkeeper serve --metrics-port` (the Prometheus
//! endpoint, `server/admin.rs`): request latency per operation, commit batch
//! sizes, log write (flush) latency and snapshot durations. Exposition is
//! `prometheus-client`'s; nothing here formats text.
//!
//! The store's histograms are process-wide ([`STORE`]): a process that
//! opens several keepers reports their writes together.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// Latency buckets: 50 µs to ~3.3 s, ×2 each.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 17)
}

/// The label of a per-operation series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OpLabel {
    /// ZooKeeper's name of the op (`create`, `getData`, …).
    pub op: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// Per-server request metrics.
pub(crate) struct RequestMetrics {
    /// Seconds from a request's arrival to its reply being queued.
    pub latency: Family<OpLabel, Histogram, fn() -> Histogram>,
}

impl Default for RequestMetrics {
    fn default() -> RequestMetrics {
        RequestMetrics {
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl RequestMetrics {
    pub(crate) fn record(&self, op: &str, elapsed: Duration) {
        self.latency
            .get_or_create(&OpLabel { op: op.to_string() })
            .observe(elapsed.as_secs_f64());
    }
}

/// The durable store's write path.
pub(crate) struct StoreMetrics {
    /// Txns per committed batch (group commit).
    pub batch_txns: Histogram,
    /// Seconds to write (and in the durable mode fsync) one batch.
    pub flush_seconds: Histogram,
    /// Seconds to write one snapshot.
    pub snapshot_seconds: Histogram,
}

impl StoreMetrics {
    pub(crate) fn record_batch(&self, txns: usize, elapsed: Duration) {
        self.batch_txns.observe(txns as f64);
        self.flush_seconds.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn record_snapshot(&self, elapsed: Duration) {
        self.snapshot_seconds.observe(elapsed.as_secs_f64());
    }
}

/// The process's store metrics.
pub(crate) static STORE: LazyLock<StoreMetrics> = LazyLock::new(|| StoreMetrics {
    batch_txns: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
    flush_seconds: Histogram::new(latency_buckets()),
    snapshot_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
});
