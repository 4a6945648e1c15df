//! A linearizability checker: the Wing–Gong search with Lowe's
//! memoization (as in Porcupine). It looks for an order of the operations
//! that respects real time (an op that returned before another was called
//! comes first) in which a sequential model gives every observed output.
//!
//! Ops whose outcome is unknown (the client saw ConnectionLoss) have no
//! return time and may take effect at any point after their call, or never:
//! the model is nondeterministic for them (`step` returns every possible
//! next state).

use std::collections::HashSet;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash;
    type Input;
    type Output;
    fn init(&self) -> Self::State;
    /// The states the op may lead to from `state` producing `output`
    /// (`None` output: unknown). Empty: the op cannot happen here.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Vec<Self::State>;
}

/// One operation of a history.
#[derive(Debug, Clone)]
pub struct Entry<I, O> {
    pub client: usize,
    pub call: u64,
    /// `None`: no reply (unknown outcome); treated as returning never.
    pub ret: Option<u64>,
    pub input: I,
    pub output: Option<O>,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// Not linearizable: the longest prefix found (op indexes in order).
    Violation {
        longest: Vec<usize>,
    },
    /// The search gave up after this many steps.
    Unknown,
}

/// Checks one history (one key) against `model`.
pub fn check<M: Model>(model: &M, history: &[Entry<M::Input, M::Output>], budget: u64) -> Verdict {
    let n = history.len();
    let words = n.div_ceil(64).max(1);
    let mut done = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut order: Vec<usize> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut steps = 0u64;
    // Ops by call time, so minimal candidates are found quickly.
    let mut by_call: Vec<usize> = (0..n).collect();
    by_call.sort_by_key(|&i| history[i].call);
    let found = search(
        model,
        history,
        &by_call,
        &mut done,
        model.init(),
        &mut cache,
        &mut order,
        &mut longest,
        &mut steps,
        budget,
    );
    match found {
        Some(true) => Verdict::Linearizable,
        Some(false) => Verdict::Violation { longest },
        None => Verdict::Unknown,
    }
}

#[allow(clippy::too_many_arguments)]
fn search<M: Model>(
    model: &M,
    h: &[Entry<M::Input, M::Output>],
    by_call: &[usize],
    done: &mut Vec<u64>,
    state: M::State,
    cache: &mut HashSet<(Vec<u64>, M::State)>,
    order: &mut Vec<usize>,
    longest: &mut Vec<usize>,
    steps: &mut u64,
    budget: u64,
) -> Option<bool> {
    if order.len() == h.len() {
        return Some(true);
    }
    *steps += 1;
    if *steps > budget {
        return None;
    }
    if order.len() > longest.len() {
        *longest = order.clone();
    }
    let is_done = |done: &Vec<u64>, i: usize| done[i / 64] & (1 << (i % 64)) != 0;
    // Every pending op must be linearized before the earliest return of a
    // pending op; candidates are those called before it.
    let horizon = by_call
        .iter()
        .filter(|&&i| !is_done(done, i))
        .filter_map(|&i| h[i].ret)
        .min()
        .unwrap_or(u64::MAX);
    for &i in by_call {
        if is_done(done, i) {
            continue;
        }
        if h[i].call > horizon {
            break;
        }
        for next in model.step(&state, &h[i].input, h[i].output.as_ref()) {
            done[i / 64] |= 1 << (i % 64);
            if cache.insert((done.clone(), next.clone())) {
                order.push(i);
                let r = search(
                    model, h, by_call, done, next, cache, order, longest, steps, budget,
                );
                order.pop();
                match r {
                    Some(true) => return Some(true),
                    None => return None,
                    Some(false) => {}
                }
            }
            done[i / 64] &= !(1 << (i % 64));
        }
    }
    Some(false)
}

/// A versioned register with compare-and-set: ZooKeeper's setData with and
/// without an expected version, and getData.
#[derive(Debug, Clone, Copy)]
pub struct Register;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegIn {
    Read,
    Write(u64),
    /// setData with an expected version.
    Cas(u64, i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOut {
    /// (value, version) read.
    Got(u64, i32),
    /// The new version after a successful write.
    Written(i32),
    BadVersion,
}

impl Model for Register {
    type State = (u64, i32);
    type Input = RegIn;
    type Output = RegOut;
    fn init(&self) -> (u64, i32) {
        (0, 0)
    }
    fn step(&self, s: &(u64, i32), input: &RegIn, out: Option<&RegOut>) -> Vec<(u64, i32)> {
        let (value, version) = *s;
        match (input, out) {
            (RegIn::Read, Some(RegOut::Got(v, ver))) if (*v, *ver) == (value, version) => vec![*s],
            (RegIn::Read, None) => vec![*s],
            (RegIn::Write(v), Some(RegOut::Written(ver))) if *ver == version + 1 => {
                vec![(*v, version + 1)]
            }
            (RegIn::Write(v), None) => vec![*s, (*v, version + 1)],
            (RegIn::Cas(v, exp), Some(RegOut::Written(ver)))
                if *exp == version && *ver == version + 1 =>
            {
                vec![(*v, version + 1)]
            }
            (RegIn::Cas(_, exp), Some(RegOut::BadVersion)) if *exp != version => vec![*s],
            (RegIn::Cas(v, exp), None) if *exp == version => vec![*s, (*v, version + 1)],
            (RegIn::Cas(_, _), None) => vec![*s],
            _ => Vec::new(),
        }
    }
}

/// Sequential creates under one parent: each returns the parent's counter
/// (the name's suffix), which then grows by one.
#[derive(Debug, Clone, Copy)]
pub struct Sequence;

impl Model for Sequence {
    type State = i64;
    type Input = ();
    type Output = i64;
    fn init(&self) -> i64 {
        0
    }
    fn step(&self, s: &i64, _: &(), out: Option<&i64>) -> Vec<i64> {
        match out {
            Some(k) if *k == *s => vec![s + 1],
            Some(_) => Vec::new(),
            None => vec![*s, s + 1],
        }
    }
}

pub fn self_test() -> Result<usize, String> {
    let e = |client, call, ret: Option<u64>, input, output| Entry {
        client,
        call,
        ret,
        input,
        output,
    };
    let mut n = 0;
    let mut expect = |name: &str, h: Vec<Entry<RegIn, RegOut>>, ok: bool| -> Result<(), String> {
        n += 1;
        let v = check(&Register, &h, 1_000_000);
        if (v == Verdict::Linearizable) != ok {
            return Err(format!("checker self-test {name}: got {v:?}"));
        }
        Ok(())
    };
    use RegIn::*;
    use RegOut::*;
    // Concurrent write and read: the read may see either value.
    expect(
        "concurrent read sees new",
        vec![
            e(0, 0, Some(10), Write(1), Some(Written(1))),
            e(1, 1, Some(5), Read, Some(Got(1, 1))),
        ],
        true,
    )?;
    expect(
        "concurrent read sees old",
        vec![
            e(0, 0, Some(10), Write(1), Some(Written(1))),
            e(1, 1, Some(5), Read, Some(Got(0, 0))),
        ],
        true,
    )?;
    // A read after a completed write must not see the old value (stale read).
    expect(
        "stale read",
        vec![
            e(0, 0, Some(1), Write(1), Some(Written(1))),
            e(1, 2, Some(3), Read, Some(Got(0, 0))),
        ],
        false,
    )?;
    // A lost acknowledged write: write acked, later read shows nothing.
    expect(
        "lost write",
        vec![
            e(0, 0, Some(1), Write(1), Some(Written(1))),
            e(0, 2, Some(3), Write(2), Some(Written(2))),
            e(1, 4, Some(5), Read, Some(Got(1, 1))),
        ],
        false,
    )?;
    // Two CAS on the same version may not both succeed.
    expect(
        "double cas",
        vec![
            e(0, 0, Some(10), Cas(1, 0), Some(Written(1))),
            e(1, 0, Some(10), Cas(2, 0), Some(Written(1))),
        ],
        false,
    )?;
    // Reads going back in time: new then old, sequentially.
    expect(
        "non-monotonic reads",
        vec![
            e(0, 0, Some(100), Write(1), Some(Written(1))),
            e(1, 1, Some(2), Read, Some(Got(1, 1))),
            e(1, 3, Some(4), Read, Some(Got(0, 0))),
        ],
        false,
    )?;
    // An unknown write may have happened...
    expect(
        "unknown write applied",
        vec![
            e(0, 0, None, Write(7), None),
            e(1, 5, Some(6), Read, Some(Got(7, 1))),
        ],
        true,
    )?;
    // ...or not.
    expect(
        "unknown write not applied",
        vec![
            e(0, 0, None, Write(7), None),
            e(1, 5, Some(6), Read, Some(Got(0, 0))),
        ],
        true,
    )?;
    // But not before it was called.
    expect(
        "unknown write seen before its call",
        vec![
            e(1, 0, Some(1), Read, Some(Got(7, 1))),
            e(0, 5, None, Write(7), None),
        ],
        false,
    )?;
    // Sequence: a name handed out twice, and names out of real-time order.
    let seq = |h: Vec<(u64, Option<u64>, Option<i64>)>| -> Verdict {
        let h: Vec<Entry<(), i64>> = h
            .into_iter()
            .enumerate()
            .map(|(c, (call, ret, out))| Entry {
                client: c,
                call,
                ret,
                input: (),
                output: out,
            })
            .collect();
        check(&Sequence, &h, 1_000_000)
    };
    n += 3;
    if seq(vec![(0, Some(1), Some(0)), (2, Some(3), Some(0))]) == Verdict::Linearizable {
        return Err("sequence: a repeated name passed".into());
    }
    if seq(vec![(0, Some(1), Some(1)), (2, Some(3), Some(0))]) == Verdict::Linearizable {
        return Err("sequence: names against real time passed".into());
    }
    if seq(vec![
        (0, None, None),
        (2, Some(3), Some(1)),
        (0, Some(10), Some(0)),
    ]) != Verdict::Linearizable
    {
        return Err("sequence: an unknown create that took a number failed".into());
    }
    Ok(n)
}
