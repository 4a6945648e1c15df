//! The iteration orders of the two Java collections whose order ZooKeeper
//! 3.8 puts on the wire, computed without Java.
//!
//! * `getChildren` answers `new ArrayList<>(children)` of a node's
//!   `HashSet<String>`, made with capacity 8 when the first child is added.
//!   A `java.util.HashMap` iterates its table in bucket order, each bucket
//!   in insertion order (a resize splits buckets but keeps their order),
//!   the bucket being `(h ^ h >>> 16) & (capacity - 1)` of
//!   `String.hashCode`. The table doubles when an insert takes the size past
//!   3/4 of the capacity and never shrinks. So the order is a function of
//!   the names, their insertion order and the largest size the set ever
//!   had: [`children_order`].
//! * `whoAmI` answers the session's `authInfo`, a set backed by a
//!   `ConcurrentHashMap<Id, Boolean>` (capacity 16, resized at 3/4 full).
//!   Its resize moves part of each bucket in reverse order, so the order
//!   depends on the insertion history: [`identity_order`] replays it.
//!
//! Not modelled: tree bins (a bucket of more than 8 entries becomes a tree
//! once the table has 64 buckets, or forces a resize before that), which
//! need many names colliding in one bucket.

/// Java's `String.hashCode`: `h = 31 * h + unit` over the UTF-16 units.
pub(crate) fn string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The hash of ZooKeeper's `Id` record (jute-generated: 17, then
/// `37 * result + field.hashCode()` for scheme and id).
pub(crate) fn id_hash(scheme: &str, id: &str) -> i32 {
    let mut result = 17i32;
    result = result.wrapping_mul(37).wrapping_add(string_hash(scheme));
    result.wrapping_mul(37).wrapping_add(string_hash(id))
}

/// `HashMap.hash`: the high half folded into the low half.
fn spread(h: i32) -> u32 {
    let h = h as u32;
    h ^ (h >> 16)
}

/// The capacity of a `HashSet` made with capacity 8 whose size once
/// reached `high_water`: it doubles whenever the size passes 3/4 of it.
pub(crate) fn hash_set_capacity(high_water: usize) -> usize {
    let mut capacity = 8usize;
    while high_water > capacity / 4 * 3 && capacity < (1 << 30) {
        capacity *= 2;
    }
    capacity
}

/// The order in which ZooKeeper 3.8 lists a node's children. `children`
/// holds each child's name and a key that orders children by when they
/// were added (the create zxid; a name deleted and created again goes to
/// the end of its bucket, as in Java); ties are broken by name.
/// `high_water` is the most children the node ever had at once.
pub(crate) fn children_order(mut children: Vec<(String, i64)>, high_water: usize) -> Vec<String> {
    let mask = (hash_set_capacity(high_water.max(children.len())) - 1) as u32;
    children.sort_by_cached_key(|(name, added)| {
        (spread(string_hash(name)) & mask, *added, name.clone())
    });
    children.into_iter().map(|(name, _)| name).collect()
}

/// The order a `ConcurrentHashMap`-backed set iterates after the given
/// hashes were inserted in this order (all distinct keys). Returns indexes
/// into `hashes`.
pub(crate) fn concurrent_set_order(hashes: &[i32]) -> Vec<usize> {
    // ConcurrentHashMap.spread: as HashMap's, with the sign bit cleared.
    let spread = |h: i32| spread(h) & 0x7fff_ffff;
    let mut table: Vec<Vec<(u32, usize)>> = vec![Vec::new(); 16];
    let mut size_ctl = 12usize;
    for (count, (index, &h)) in hashes.iter().enumerate().enumerate() {
        let h = spread(h);
        let n = table.len();
        table[(h as usize) & (n - 1)].push((h, index));
        if count + 1 >= size_ctl {
            table = concurrent_resize(table);
            let n = table.len();
            size_ctl = n - (n >> 2);
        }
    }
    table
        .into_iter()
        .flatten()
        .map(|(_, index)| index)
        .collect()
}

/// `ConcurrentHashMap.transfer` on one thread: each bucket splits into a
/// low and a high half; the longest tail whose entries all go the same way
/// moves as it is, the entries before it are pushed in front one by one
/// (so they come out reversed).
fn concurrent_resize(table: Vec<Vec<(u32, usize)>>) -> Vec<Vec<(u32, usize)>> {
    let n = table.len();
    let mut next: Vec<Vec<(u32, usize)>> = vec![Vec::new(); n * 2];
    for (i, bucket) in table.into_iter().enumerate() {
        if bucket.is_empty() {
            continue;
        }
        let bit = |h: u32| (h as usize) & n != 0;
        let mut run_bit = bit(bucket[0].0);
        let mut last_run = 0;
        for (j, &(h, _)) in bucket.iter().enumerate().skip(1) {
            if bit(h) != run_bit {
                run_bit = bit(h);
                last_run = j;
            }
        }
        let (mut low, mut high): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
        for &entry in bucket[..last_run].iter().rev() {
            if bit(entry.0) {
                high.push(entry);
            } else {
                low.push(entry);
            }
        }
        let tail = &bucket[last_run..];
        if run_bit {
            high.extend_from_slice(tail);
        } else {
            low.extend_from_slice(tail);
        }
        next[i] = low;
        next[i + n] = high;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_is_javas() {
        // Values of "…".hashCode() in Java.
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        assert_eq!(string_hash("hello"), 99_162_322);
        assert_eq!(string_hash("zookeeper"), 1_600_681_804);
        // A non-BMP character counts as two UTF-16 units.
        assert_eq!(
            string_hash("\u{1F600}"),
            0xD83D_i32.wrapping_mul(31).wrapping_add(0xDE00)
        );
    }

    #[test]
    fn capacity_doubles_past_three_quarters() {
        assert_eq!(hash_set_capacity(0), 8);
        assert_eq!(hash_set_capacity(6), 8);
        assert_eq!(hash_set_capacity(7), 16);
        assert_eq!(hash_set_capacity(12), 16);
        assert_eq!(hash_set_capacity(13), 32);
        assert_eq!(hash_set_capacity(25), 64);
    }

    #[test]
    fn concurrent_resize_reverses_the_moved_head() {
        // Bucket 1 of 16 holds hashes 1, 17, 33, 49 (insertion order);
        // bit 16 splits them 0,1,0,1: the last run is [49], the others are
        // pushed in front in reverse.
        let hashes: Vec<i32> = (0..12)
            .map(|k| if k < 4 { 1 + 16 * k } else { 2 + 100 * k })
            .collect();
        let order = concurrent_set_order(&hashes);
        let first_bucket: Vec<usize> = order.iter().copied().filter(|&i| i < 4).collect();
        // Low half (bucket 1): 33 then 1; high half (bucket 17): 17 then 49.
        assert_eq!(first_bucket, vec![2, 0, 1, 3]);
    }
}
