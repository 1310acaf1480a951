//! The Wing–Gong–Lowe search of `checks/lin/search.py`, compiled.
//!
//! `checks/lin/search.py` is the reference (quoted in the book); this is the
//! same algorithm, step for step, with the same reductions, the same order of
//! moves and the same step and cache counts, so both give the same verdict,
//! the same longest linearization and the same stuck call on every history
//! (tests/checks/lin/test_lin_native.py holds them to it). It knows three
//! kinds of model, the register family (register, cas-register, etcd), kv
//! and ledger (chapter 4's wallets: 2,000 parts of a few hundred calls). It
//! reads each part's `Call`s (named tuples) itself, once, into plain numbers
//! and strings: register values are numbered through a dict (equal by
//! Python's ==, as the model compares them), kv values are strings, ledger
//! accounts are numbered per part and cents are 64-bit integers. Anything
//! else raises TypeError, and `checks/lin/native.py` lets the Python search
//! decide. The parts are searched round robin, a slice of steps each, as
//! `checks.lin.checker.check_calls` does.
//!
//! For kv, `prepare_kv_ops` starts earlier, from the history's `Operation`s:
//! it does checker.py's `prepare` and `split` too (the same `Call`s, local
//! ids and parts, handed back for the report), because on a small history
//! those two Python steps, a few calls per operation, cost more than the
//! search. An operation of an unusual shape sends the whole history back
//! to the Python code, which gives its own errors. Its `check` answers with
//! the verdict's figures only; the parts and their calls (`KvParts`) become
//! Python objects when Python reads them. A small history's check is mostly
//! such overheads, so a part's tables take few allocations (no list per
//! symmetry group, one buffer for all the settled sets).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rustc_hash::FxHashMap;
use std::hash::Hash;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A set of calls of one part, one bit each: in place for a part of up to
/// 64 calls (most parts; a small history's check was largely allocations),
/// on the heap beyond.
#[derive(Clone)]
enum Bits {
    One(u64),
    Many(Vec<u64>),
}

impl Bits {
    fn new(n: usize) -> Self {
        if n <= 64 {
            Bits::One(0)
        } else {
            Bits::Many(vec![0; n.div_ceil(64)])
        }
    }
    #[inline]
    fn words(&self) -> &[u64] {
        match self {
            Bits::One(w) => std::slice::from_ref(w),
            Bits::Many(v) => v,
        }
    }
    #[inline]
    fn has(&self, i: usize) -> bool {
        self.words()[i >> 6] >> (i & 63) & 1 == 1
    }
    #[inline]
    fn flip(&mut self, i: usize) {
        match self {
            Bits::One(w) => *w ^= 1 << i,
            Bits::Many(v) => v[i >> 6] ^= 1 << (i & 63),
        }
    }
    /// Every member of the set `words` is in `self` or `b`.
    #[inline]
    fn cover(&self, b: &Bits, words: &[u64]) -> bool {
        words
            .iter()
            .zip(self.words().iter().zip(b.words()))
            .all(|(s, (x, y))| s & !(x | y) == 0)
    }
    /// Every member of `self` is in `a`.
    #[inline]
    fn subset_of(&self, a: &Bits) -> bool {
        self.words().iter().zip(a.words()).all(|(s, x)| s & !x == 0)
    }
}

/// A sequential specification, as `checks.lin.model.Model`.
trait Model {
    type State: Clone + Eq + Hash;
    type Op;
    /// Could `op` applied to `s` have returned its output, and the state after.
    fn step(s: &Self::State, op: &Self::Op) -> (bool, Self::State);
    fn read_only(op: &Self::Op) -> bool;
    fn only_extends(_op: &Self::Op) -> bool {
        false
    }
    fn reachable(_s: &Self::State, _op: &Self::Op) -> bool {
        true
    }
}

/// register, cas-register and etcd (checks/lin/models/register.py).
struct Register;
struct RegOp {
    f: u8,
    a: i64,
    b: i64,
    out: i64,
}

impl Model for Register {
    type State = i64;
    type Op = RegOp;
    #[inline]
    fn step(s: &i64, op: &RegOp) -> (bool, i64) {
        match op.f {
            0 => (op.out == -1 || op.out == *s, *s),
            1 => (true, op.a),
            _ => match op.out {
                -1 => (true, if *s == op.a { op.b } else { *s }),
                1 => (*s == op.a, op.b),
                _ => (*s != op.a, *s),
            },
        }
    }
    #[inline]
    fn read_only(op: &RegOp) -> bool {
        op.f == 0 || (op.f == 2 && op.out == 0)
    }
}

/// A kv string as its UTF-8 bytes (equal exactly when the strings are):
/// an append then builds its result in one allocation, not a String and a
/// copy (on a small history allocations were much of the check).
type Text = Rc<[u8]>;

/// kv, one key (checks/lin/models/kv.py).
struct Kv;
#[derive(Clone)]
struct KvOp {
    f: u8,
    arg: Text,
    out: Option<Text>,
}

impl Model for Kv {
    type State = Text;
    type Op = KvOp;
    #[inline]
    fn step(s: &Text, op: &KvOp) -> (bool, Text) {
        match op.f {
            0 => (op.out.as_ref().is_none_or(|o| **o == **s), s.clone()),
            1 => (true, op.arg.clone()),
            _ => (true, s.iter().chain(op.arg.iter()).copied().collect()),
        }
    }
    #[inline]
    fn read_only(op: &KvOp) -> bool {
        op.f == 0
    }
    #[inline]
    fn only_extends(op: &KvOp) -> bool {
        op.f == 2
    }
    #[inline]
    fn reachable(s: &Text, op: &KvOp) -> bool {
        op.out.as_ref().is_none_or(|o| o.starts_with(s))
    }
}

/// ledger (checks/lin/models/accounts.py): balances in cents by account,
/// accounts numbered per part, zero balances left out, sorted by number (a
/// canonical form, so equal states are equal maps, as the model's sorted
/// tuples are).
struct Ledger;
type Balances = Rc<[(u32, i64)]>;
struct LedgerOp {
    f: u8, // 0 read, 1 deposit, 2 transfer
    from: u32,
    to: u32,
    cents: i64,
    out: u8, // transfer: 0 rejected (False), 1 ok, 2 unknown; read: 1 known, 2 unknown
    read: Vec<(u32, i64)>, // a read's balances
    overdraft: bool,
}

fn balance(s: &[(u32, i64)], a: u32) -> i64 {
    s.binary_search_by_key(&a, |&(k, _)| k)
        .map_or(0, |at| s[at].1)
}

/// `s` with `moves` added to balances (each account at most once), canonical.
fn moved(s: &[(u32, i64)], moves: &[(u32, i64)]) -> Balances {
    let mut v: Vec<(u32, i64)> = s.to_vec();
    for &(a, d) in moves {
        match v.binary_search_by_key(&a, |&(k, _)| k) {
            Ok(at) => v[at].1 += d,
            Err(at) => v.insert(at, (a, d)),
        }
    }
    v.retain(|&(_, c)| c != 0);
    Rc::from(v)
}

impl Model for Ledger {
    type State = Balances;
    type Op = LedgerOp;
    #[inline]
    fn step(s: &Balances, op: &LedgerOp) -> (bool, Balances) {
        match op.f {
            0 => (
                op.out == 2 || op.read.iter().all(|&(a, c)| balance(s, a) == c),
                s.clone(),
            ),
            1 => (true, moved(s, &[(op.from, op.cents)])),
            _ => {
                let funded = op.overdraft || balance(s, op.from) >= op.cents;
                if op.out == 0 {
                    return (!funded, s.clone());
                }
                if !funded {
                    return (op.out == 2, s.clone());
                }
                if op.from == op.to {
                    return (true, moved(s, &[]));
                }
                (true, moved(s, &[(op.from, -op.cents), (op.to, op.cents)]))
            }
        }
    }
    #[inline]
    fn read_only(op: &LedgerOp) -> bool {
        op.f == 0 || (op.f == 2 && op.out == 0)
    }
}

/// What the search reads about each call of one part (search.py's `Tables`),
/// in few allocations: a small part's check is mostly their cost.
struct Tables<M: Model> {
    ops: Vec<M::Op>,
    calls: Vec<CallRow>,
    entries: Vec<Entry>, // 0: the head, then the history's entries, then the tail
    // Reduction 5: for each read-only call with a known outcome, the calls
    // settled before it, a set of `words` words in `settled` (one buffer
    // for the part, not one allocation per call).
    settled: Vec<u64>,
    words: usize,
}

/// One call of a part: its entries, whether its outcome is known, whether
/// it is read-only, its symmetry predecessor, where its settled set starts.
#[derive(Clone, Copy)]
struct CallRow {
    call_e: usize,
    ret_e: Option<usize>,
    definite: bool,
    pure: bool,
    pred: Option<usize>,
    settled_at: usize, // usize::MAX: none (not read-only with a known outcome)
}

/// An entry (a call's invocation or return) in the doubly linked list of
/// the entries not yet linearized.
#[derive(Clone, Copy)]
struct Entry {
    nxt: usize,
    prv: usize,
    op: usize, // its call (usize::MAX: the head and the tail)
    is_call: bool,
}

/// The buffers a part's tables are built with (`tables`), kept from one
/// part to the next: they are not needed once the tables are, and on a
/// small history allocating them again for each part was much of a check.
/// A finished part's search hands its own buffers back here too
/// (`Search::give_back`), for the next part's tables and search.
struct Scratch<M: Model, G> {
    ids: FxHashMap<G, i64>,              // symmetry group -> its number
    rows: Vec<(i64, i64, Option<i64>)>,  // (group, call, return) per call
    order: Vec<(i64, usize, bool)>,      // the part's entries in history order
    by_call: Vec<usize>,                 // the calls in call order, if not already
    last: FxHashMap<(i64, bool), usize>, // each group's member called last so far
    before: Vec<usize>,                  // the group's member called before each
    ops: Vec<M::Op>,                     // from a finished search, to reuse
    calls: Vec<CallRow>,
    entries: Vec<Entry>,
    settled: Vec<u64>,
    stack: Vec<Frame<M::State>>,
    lists: Vec<Vec<usize>>,
}

impl<M: Model, G> Scratch<M, G> {
    /// Buffers for parts of up to `n` calls, allocated once (grown part
    /// after part, they were reallocated a few times in each check).
    fn with_capacity(n: usize) -> Self {
        Scratch {
            ids: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            rows: Vec::with_capacity(n),
            order: Vec::with_capacity(2 * n),
            by_call: Vec::with_capacity(n),
            last: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            before: Vec::with_capacity(n),
            ops: Vec::new(),
            calls: Vec::new(),
            entries: Vec::new(),
            settled: Vec::new(),
            stack: Vec::new(),
            lists: Vec::new(),
        }
    }
}

impl<M: Model> Tables<M> {
    /// The tables of one part from each call's op and (symmetry group,
    /// call position, return position), built in `s`'s buffers.
    fn of<G>(ops: Vec<M::Op>, s: &mut Scratch<M, G>) -> Self {
        let n = ops.len();
        let rows = &s.rows;
        // (time, call, is a call entry), in history order
        let order = &mut s.order;
        order.clear();
        for (i, &(_, c, _)) in rows.iter().enumerate() {
            order.push((c, i, true));
        }
        for (i, &(_, _, r)) in rows.iter().enumerate() {
            if let Some(r) = r {
                order.push((r, i, false));
            }
        }
        order.sort_unstable();
        let tail = order.len() + 1;
        let mut calls = std::mem::take(&mut s.calls);
        calls.clear();
        calls.extend(ops.iter().zip(rows).map(|(op, &(_, _, r))| CallRow {
            call_e: 0,
            ret_e: None,
            definite: r.is_some(),
            pure: M::read_only(op),
            pred: None,
            settled_at: usize::MAX,
        }));
        let mut entries = std::mem::take(&mut s.entries);
        entries.clear();
        entries.extend((0..=tail).map(|e| Entry {
            nxt: (e + 1).min(tail),
            prv: e.saturating_sub(1),
            op: usize::MAX,
            is_call: false,
        }));
        for (k, &(_, i, is_c)) in order.iter().enumerate() {
            let e = k + 1;
            if is_c {
                calls[i].call_e = e;
            } else {
                calls[i].ret_e = Some(e);
            }
            entries[e].is_call = is_c;
            entries[e].op = i;
        }
        // Reduction 2 (search.py's symmetry_predecessors), the calls in
        // call order (a stable sort, as Python's sorted; a part's calls
        // usually come in that order already).
        let in_order = rows.windows(2).all(|w| w[0].1 <= w[1].1);
        let by_call = &mut s.by_call;
        if !in_order {
            by_call.clear();
            by_call.extend(0..n);
            by_call.sort_by_key(|&i| rows[i].1);
        }
        // Each group's members in call order, as a chain from its last one
        // back (search.py's lists per group, without a list per group).
        let (last, before) = (&mut s.last, &mut s.before);
        last.clear();
        before.clear();
        before.resize(n, usize::MAX);
        let ret_or_inf = |i: usize| rows[i].2.map_or(f64::INFINITY, |r| r as f64);
        for i in (0..n).map(|k| if in_order { k } else { by_call[k] }) {
            let mut j = last
                .insert((rows[i].0, rows[i].2.is_none()), i)
                .unwrap_or(usize::MAX);
            before[i] = j;
            while j != usize::MAX {
                if ret_or_inf(j) <= ret_or_inf(i) {
                    calls[i].pred = Some(j);
                    break;
                }
                j = before[j];
            }
        }
        // Reduction 5 (search.py's settled_before).
        let mut resets = Bits::new(n);
        let words = resets.words().len();
        let sets = calls.iter().filter(|c| c.pure && c.definite).count();
        let mut settled = std::mem::take(&mut s.settled);
        settled.clear();
        settled.reserve(sets * words);
        for &(_, c, is_c) in order.iter() {
            if !is_c {
                if calls[c].pure {
                    calls[c].settled_at = settled.len();
                    settled.extend_from_slice(resets.words());
                }
            } else if !(calls[c].pure || M::only_extends(&ops[c])) {
                resets.flip(c);
            }
        }
        Tables {
            ops,
            calls,
            entries,
            settled,
            words,
        }
    }
}

/// A dead end's key: the known-outcome calls linearized, and the state.
/// Keyed by the known calls first, so a lookup borrows them (no copy).
type DeadEnds<S> = FxHashMap<Vec<u64>, FxHashMap<S, Vec<Bits>>>;

/// One linearized call: the call, the state before it, and the moves that
/// were open with the index of the next to try (None: a greedy step).
type Frame<S> = (usize, S, Option<(Vec<usize>, usize)>);

/// What one part's search found (search.py's SearchResult and SearchStats).
struct Found {
    linearizable: bool,
    order: Vec<usize>,
    stuck: Option<usize>,
    steps: u64,
    cache_entries: u64,
    cache_full: bool,
}

enum Progress {
    Yielded,
    Done(Found),
}

/// The search of one part as a resumable state machine: `resume` runs one
/// slice of steps, where search.py's generator runs to its next `yield`.
struct Search<M: Model> {
    t: Tables<M>,
    cache: DeadEnds<M::State>,
    cache_max: u64,
    slice_steps: u64,
    stack: Vec<Frame<M::State>>,
    best: Vec<usize>,
    best_left: usize,
    left: usize,
    best_depth: Option<usize>,
    stuck: Option<usize>,
    state: M::State,
    known: Bits, // known-outcome calls linearized (search.py: bits ^ ibits)
    ibits: Bits, // unknown-outcome calls linearized
    moves: Option<Vec<usize>>,
    next_move: usize,
    // Move lists done with, emptied, for `open_moves` to fill again, and
    // its list of unknown-outcome moves: on a small history a new list per
    // step was a good part of the search.
    spare: Vec<Vec<usize>>,
    later: Vec<usize>,
    budget: u64,
    steps: u64,
    cache_entries: u64,
    cache_full: bool,
    resumed: bool, // stopped at a yield: carry on with that step
}

impl<M: Model> Search<M> {
    fn new<G>(
        t: Tables<M>,
        init: M::State,
        cache_max: u64,
        slice_steps: u64,
        s: &mut Scratch<M, G>,
    ) -> Self {
        let n = t.ops.len();
        let left = t.calls.iter().filter(|c| c.definite).count();
        let mut stack = std::mem::take(&mut s.stack);
        stack.clear();
        stack.reserve(n);
        Search {
            t,
            cache: FxHashMap::default(),
            cache_max,
            slice_steps,
            stack,
            best: Vec::new(),
            best_left: left,
            left,
            best_depth: None,
            stuck: None,
            state: init,
            known: Bits::new(n),
            ibits: Bits::new(n),
            moves: None,
            next_move: 0,
            spare: std::mem::take(&mut s.lists),
            later: Vec::new(),
            budget: slice_steps,
            steps: 0,
            cache_entries: 0,
            cache_full: false,
            resumed: false,
        }
    }

    #[inline]
    fn linearized(&self, i: usize) -> bool {
        self.known.has(i) || self.ibits.has(i)
    }

    #[inline]
    fn flip(&mut self, i: usize) {
        if self.t.calls[i].definite {
            self.known.flip(i)
        } else {
            self.ibits.flip(i)
        }
    }

    /// search.py's `open_moves`: (a read-only call that fits, taken greedily),
    /// else the moves to try, and the call whose return entry comes first.
    fn open_moves(&mut self) -> (Option<usize>, Vec<usize>, usize) {
        let mut moves = self.spare.pop().unwrap_or_default();
        let mut later = std::mem::take(&mut self.later);
        let t = &self.t;
        let mut greedy = None;
        let mut dead = false;
        let mut e = t.entries[0].nxt;
        while t.entries[e].is_call {
            let c = t.entries[e].op;
            e = t.entries[e].nxt;
            let row = &t.calls[c];
            if let Some(p) = row.pred {
                if !self.linearized(p) {
                    continue;
                }
            }
            if !row.pure {
                if row.definite {
                    moves.push(c)
                } else {
                    later.push(c)
                }
            } else if M::step(&self.state, &t.ops[c]).0 {
                greedy = Some(c);
                break;
            } else if row.settled_at != usize::MAX && !dead {
                let s = &t.settled[row.settled_at..row.settled_at + t.words];
                if self.known.cover(&self.ibits, s) {
                    dead = !M::reachable(&self.state, &t.ops[c]);
                }
            }
        }
        let first_ret = if greedy.is_some() {
            usize::MAX
        } else {
            t.entries[e].op
        };
        if dead {
            moves.clear();
        } else if greedy.is_none() {
            moves.extend_from_slice(&later);
        }
        later.clear();
        self.later = later;
        (greedy, moves, first_ret)
    }

    /// A finished search's buffers, for the next part's tables and search;
    /// its cache stays (freed later, with the search).
    fn give_back<G>(&mut self, s: &mut Scratch<M, G>) {
        s.ops = std::mem::take(&mut self.t.ops);
        s.calls = std::mem::take(&mut self.t.calls);
        s.entries = std::mem::take(&mut self.t.entries);
        s.settled = std::mem::take(&mut self.t.settled);
        s.stack = std::mem::take(&mut self.stack);
        s.lists = std::mem::take(&mut self.spare);
    }

    /// A move list done with, kept for `open_moves`.
    fn recycle(&mut self, mut moves: Vec<usize>) {
        if moves.capacity() > 0 {
            moves.clear();
            self.spare.push(moves);
        }
    }

    fn dominated(&self, state: &M::State) -> bool {
        match self
            .cache
            .get(self.known.words())
            .and_then(|m| m.get(state))
        {
            None => false,
            Some(seen) => seen.iter().any(|o| o.subset_of(&self.ibits)),
        }
    }

    fn lift(&mut self, i: usize) {
        let (es, row) = (&mut self.t.entries, &self.t.calls[i]);
        let e = row.call_e;
        let (n, p) = (es[e].nxt, es[e].prv);
        es[p].nxt = n;
        es[n].prv = p;
        if let Some(e) = row.ret_e {
            let (n, p) = (es[e].nxt, es[e].prv);
            es[p].nxt = n;
            es[n].prv = p;
        }
    }

    fn put_back(&mut self, i: usize) {
        let (es, row) = (&mut self.t.entries, &self.t.calls[i]);
        if let Some(e) = row.ret_e {
            let (n, p) = (es[e].nxt, es[e].prv);
            es[p].nxt = e;
            es[n].prv = e;
        }
        let e = row.call_e;
        let (n, p) = (es[e].nxt, es[e].prv);
        es[p].nxt = e;
        es[n].prv = e;
    }

    fn resume(&mut self) -> Progress {
        loop {
            if !self.resumed {
                if self.left == 0 {
                    break;
                }
                self.budget -= 1;
                if self.budget == 0 {
                    self.steps += self.slice_steps;
                    self.budget = self.slice_steps;
                    self.resumed = true;
                    return Progress::Yielded;
                }
            }
            self.resumed = false;
            let mut next: Option<(usize, M::State)> = None;
            let mut greedy = false;
            if self.moves.is_none() {
                let (g, moves, first_ret) = self.open_moves();
                if let Some(c) = g {
                    next = Some((c, self.state.clone()));
                    greedy = true;
                    self.recycle(moves);
                } else {
                    self.moves = Some(moves);
                    self.next_move = 0;
                    if self.stuck.is_none() && self.left == self.best_left {
                        self.stuck = Some(first_ret);
                    }
                }
            }
            if !greedy {
                if let Some(moves) = &self.moves {
                    while next.is_none() && self.next_move < moves.len() {
                        let c = moves[self.next_move];
                        self.next_move += 1;
                        let (ok, new_state) = M::step(&self.state, &self.t.ops[c]);
                        if ok && (self.t.calls[c].definite || new_state != self.state) {
                            next = Some((c, new_state));
                        }
                    }
                }
            }
            if let Some((i, new_state)) = next {
                self.flip(i);
                if self.dominated(&new_state) {
                    self.flip(i);
                    if greedy {
                        self.moves = Some(Vec::new());
                        self.next_move = 0;
                    }
                    continue;
                }
                let frame = if greedy {
                    None
                } else {
                    self.moves.take().map(|m| (m, self.next_move))
                };
                let before = std::mem::replace(&mut self.state, new_state);
                self.stack.push((i, before, frame));
                self.left -= self.t.calls[i].definite as usize;
                self.lift(i);
                if self.left < self.best_left {
                    self.best_left = self.left;
                    self.best_depth = Some(self.stack.len());
                    self.stuck = None;
                }
                self.moves = None;
                continue;
            }
            // No move left: a dead end. Cache it, undo greedy steps wholesale,
            // resume the configuration below at its next move.
            loop {
                if let Some(d) = self.best_depth.take() {
                    self.best = self.stack[..d].iter().map(|f| f.0).collect();
                }
                if self.stack.is_empty() {
                    self.steps += self.slice_steps - self.budget;
                    let best = std::mem::take(&mut self.best);
                    return Progress::Done(self.found(false, best));
                }
                if self.cache_entries < self.cache_max {
                    self.cache_entries += 1;
                    let ibits = self.ibits.clone();
                    let by_state = match self.cache.get_mut(self.known.words()) {
                        Some(m) => m,
                        None => self.cache.entry(self.known.words().to_vec()).or_default(),
                    };
                    by_state.entry(self.state.clone()).or_default().push(ibits);
                } else {
                    self.cache_full = true;
                }
                let (i, state, frame) = self.stack.pop().expect("not empty");
                self.state = state;
                self.flip(i);
                self.left += self.t.calls[i].definite as usize;
                self.put_back(i);
                if let Some((moves, next_move)) = frame {
                    if let Some(done) = self.moves.replace(moves) {
                        self.recycle(done);
                    }
                    self.next_move = next_move;
                    break;
                }
            }
        }
        self.steps += self.slice_steps - self.budget;
        let order = self.stack.iter().map(|f| f.0).collect();
        Progress::Done(self.found(true, order))
    }

    fn found(&self, linearizable: bool, order: Vec<usize>) -> Found {
        Found {
            linearizable,
            order,
            stuck: if linearizable { None } else { self.stuck },
            steps: self.steps,
            cache_entries: self.cache_entries,
            cache_full: self.cache_full,
        }
    }
}

/// A part's outcome as Python reads it: None (not finished) or
/// (linearizable, order, stuck, steps, cache entries, cache full).
type PartOut = Option<(bool, Vec<usize>, Option<usize>, u64, u64, bool)>;

fn part_out(f: &Option<Found>) -> PartOut {
    f.as_ref().map(|f| {
        (
            f.linearizable,
            f.order.clone(),
            f.stuck,
            f.steps,
            f.cache_entries,
            f.cache_full,
        )
    })
}

/// checker.py's `check_calls` loop: the parts round robin, a slice each,
/// until one fails, all succeed, or the deadline passes. A part's tables
/// are built when it is first searched (`start`), as the Python search's
/// generator builds them at its first step: a history that fails in its
/// first parts never pays for the others. Each search, once finished or
/// abandoned, goes to `spent`: the caller frees their caches when it will
/// (a large cache takes a while to free).
fn round_robin<M: Model, G>(
    n: usize,
    scratch: &mut Scratch<M, G>,
    mut start: impl FnMut(usize, &mut Scratch<M, G>) -> PyResult<Search<M>>,
    timeout_s: Option<f64>,
    spent: &mut Vec<Search<M>>,
) -> PyResult<Vec<Option<Found>>> {
    let deadline = timeout_s.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut out: Vec<Option<Found>> = (0..n).map(|_| None).collect();
    let mut searches: Vec<Option<Search<M>>> = (0..n).map(|_| None).collect();
    let mut running: Vec<usize> = (0..n).collect();
    let mut failing = false;
    let mut out_of_time = false;
    let mut still = Vec::with_capacity(n);
    spent.reserve(n);
    while !running.is_empty() && !failing && !out_of_time {
        still.clear();
        for &p in &running {
            if failing || out_of_time {
                still.push(p);
                continue;
            }
            if searches[p].is_none() {
                searches[p] = Some(start(p, scratch)?);
            }
            match searches[p].as_mut().expect("started").resume() {
                Progress::Yielded => still.push(p),
                Progress::Done(f) => {
                    failing = !f.linearizable;
                    out[p] = Some(f);
                    let mut done = searches[p].take().expect("started");
                    done.give_back(scratch); // its tables, for the next part's
                    spent.push(done); // its cache is not needed any more
                }
            }
            out_of_time = deadline.is_some_and(|d| Instant::now() > d);
        }
        std::mem::swap(&mut running, &mut still);
    }
    spent.extend(searches.into_iter().flatten()); // abandoned: the verdict is settled, or time ran out
    Ok(out)
}

fn foreign(what: &str) -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(format!("the compiled search cannot hold {what}"))
}

/// A `checks.lin.model.Call` (a named tuple): input, output, call, ret (-1: None).
fn call_fields<'py>(
    c: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, i64, Option<i64>)> {
    let t = c.downcast::<PyTuple>()?;
    let ret = t.get_item(6)?;
    let ret = if ret.is_none() {
        None
    } else {
        Some(ret.extract::<i64>()?)
    };
    Ok((
        t.get_item(3)?,
        t.get_item(4)?,
        t.get_item(5)?.extract::<i64>()?,
        ret,
    ))
}

/// Equal values (by Python's ==, as the model compares them) get equal numbers.
fn intern(values: &Bound<'_, PyDict>, v: &Bound<'_, PyAny>) -> PyResult<i64> {
    if let Some(id) = values.get_item(v)? {
        return id.extract::<i64>();
    }
    let id = values.len() as i64;
    values.set_item(v, id)?;
    Ok(id)
}

/// A part's tables: the ops, and for each call its symmetry group (equal
/// (input, output)), call and return positions.
fn tables<M: Model, G: Hash + Eq>(
    rows: impl ExactSizeIterator<Item = (M::Op, G, i64, Option<i64>)>,
    s: &mut Scratch<M, G>,
) -> Tables<M> {
    let mut ops = std::mem::take(&mut s.ops);
    ops.clear();
    ops.reserve(rows.len());
    s.ids.clear();
    s.rows.clear();
    for (op, g, c, r) in rows {
        let next = s.ids.len() as i64;
        s.rows.push((*s.ids.entry(g).or_insert(next), c, r));
        ops.push(op);
    }
    Tables::of(ops, s)
}

/// Check the parts of a register-family history: per part (initial value,
/// its calls: `checks.lin.model.Call`s); `values` interns values, `unknown`
/// is `checks.lin.model.UNKNOWN`. Per part, None (not finished) or
/// (linearizable, order, stuck, steps, cache entries, cache full). A value
/// it cannot hold raises TypeError (the Python search then runs).
#[pyfunction]
#[pyo3(signature = (parts, values, unknown, cache_each, slice_steps, timeout_s=None))]
fn check_register(
    parts: Vec<(Bound<'_, PyAny>, Bound<'_, PyList>)>,
    values: Bound<'_, PyDict>,
    unknown: Bound<'_, PyAny>,
    cache_each: u64,
    slice_steps: u64,
    timeout_s: Option<f64>,
) -> PyResult<Vec<PartOut>> {
    let mut scratch = Scratch::with_capacity(parts.iter().map(|p| p.1.len()).max().unwrap_or(0));
    let start = |p: usize, scratch: &mut Scratch<Register, _>| -> PyResult<Search<Register>> {
        let (init, calls) = &parts[p];
        let mut rows = Vec::with_capacity(calls.len());
        for c in calls.iter() {
            let (inp, out, call, ret) = call_fields(&c)?;
            let inp = inp.downcast::<PyTuple>()?;
            let (f, arg) = (inp.get_item(0)?, inp.get_item(1)?);
            let f = f.downcast::<PyString>()?;
            let op = match f.to_str()? {
                f @ ("read" | "write") => {
                    let got = if out.is(&unknown) {
                        -1
                    } else {
                        intern(&values, &out)?
                    };
                    RegOp {
                        f: (f == "write") as u8,
                        a: intern(&values, &arg)?, // a read's: only for the groups
                        b: 0,
                        out: got,
                    }
                }
                "cas" => {
                    let pair = arg.downcast::<PyTuple>()?;
                    if pair.len() != 2 {
                        return Err(foreign("a cas that is not [old new]"));
                    }
                    let got = if out.is(&unknown) {
                        -1
                    } else if out.is(&*pyo3::types::PyBool::new(out.py(), true)) {
                        1
                    } else if out.is(&*pyo3::types::PyBool::new(out.py(), false)) {
                        0
                    } else {
                        return Err(foreign("a cas outcome other than ok, failed, unknown"));
                    };
                    RegOp {
                        f: 2,
                        a: intern(&values, &pair.get_item(0)?)?,
                        b: intern(&values, &pair.get_item(1)?)?,
                        out: got,
                    }
                }
                _ => return Err(foreign("this register operation")),
            };
            let g = (op.f, op.a, op.b, op.out);
            rows.push((op, g, call, ret));
        }
        Ok(Search::new(
            tables(rows.into_iter(), scratch),
            intern(&values, init)?,
            cache_each,
            slice_steps.max(1),
            scratch,
        ))
    };
    let found = round_robin(parts.len(), &mut scratch, start, timeout_s, &mut Vec::new())?;
    Ok(found.iter().map(part_out).collect())
}

/// A ledger call's symmetry group: equal (input, output) by Python's ==, as
/// search.py's groups. Reads and transfers are compared as the numbers
/// they hold (accounts by their number in the part); a deposit, whose
/// output may be any value, by its pair's number in `values`.
#[derive(Hash, PartialEq, Eq)]
enum LedgerGroup {
    Alone(usize), // in no group but its own (an unhashable deposit)
    Interned(i64),
    Transfer(u32, u32, i64, u8),
    Read(Option<Vec<u32>>, Vec<(u32, i64)>), // the accounts asked, the balances read
    ReadUnknown(Option<Vec<u32>>),
}

/// Limit on a ledger history's cents (initial balances and amounts, summed):
/// within it no balance the search computes can overflow.
const LEDGER_CENTS_MAX: i128 = i64::MAX as i128;

/// Check the parts of a ledger history, as `check_register`: per part (its
/// initial balances, a tuple of (account, cents) as the model's
/// `init_part` gives, its calls); `overdraft` is the model's. Symmetry
/// groups are numbered by (input, output) through `values` (equal by
/// Python's ==, as search.py's groups).
#[pyfunction]
#[pyo3(signature = (parts, values, unknown, overdraft, cache_each, slice_steps, timeout_s=None))]
#[allow(clippy::too_many_arguments)]
fn check_ledger(
    parts: Vec<(Bound<'_, PyTuple>, Bound<'_, PyList>)>,
    values: Bound<'_, PyDict>,
    unknown: Bound<'_, PyAny>,
    overdraft: bool,
    cache_each: u64,
    slice_steps: u64,
    timeout_s: Option<f64>,
) -> PyResult<Vec<PartOut>> {
    let mut scratch = Scratch::with_capacity(parts.iter().map(|p| p.1.len()).max().unwrap_or(0));
    let start = |p: usize, scratch: &mut Scratch<Ledger, _>| -> PyResult<Search<Ledger>> {
        let (init, calls) = &parts[p];
        let py = init.py();
        let mut accounts: FxHashMap<String, u32> = FxHashMap::default();
        let mut number = |a: &Bound<'_, PyAny>| -> PyResult<u32> {
            let a = a
                .downcast::<PyString>()
                .map_err(|_| foreign("an account that is not a string"))?
                .to_str()?;
            let next = accounts.len() as u32;
            Ok(*accounts.entry(a.to_owned()).or_insert(next))
        };
        let mut total: i128 = 0;
        let mut cents = |c: &Bound<'_, PyAny>| -> PyResult<i64> {
            if c.is_instance_of::<pyo3::types::PyBool>() {
                return Err(foreign("a bool for cents"));
            }
            let c = c
                .extract::<i64>()
                .map_err(|_| foreign("cents beyond 64 bits"))?;
            total += (c as i128).abs();
            if total > LEDGER_CENTS_MAX {
                return Err(foreign("so many cents"));
            }
            Ok(c)
        };
        let mut state: Vec<(u32, i64)> = Vec::with_capacity(init.len());
        for pair in init.iter() {
            let pair = pair.downcast::<PyTuple>()?;
            let (a, c) = (number(&pair.get_item(0)?)?, cents(&pair.get_item(1)?)?);
            if c == 0 || state.iter().any(|&(k, _)| k == a) {
                return Err(foreign("initial balances not in the model's form"));
            }
            state.push((a, c));
        }
        state.sort_unstable();
        let (yes, no) = (
            pyo3::types::PyBool::new(py, true),
            pyo3::types::PyBool::new(py, false),
        );
        let mut rows = Vec::with_capacity(calls.len());
        for c in calls.iter() {
            let (inp, out, call, ret) = call_fields(&c)?;
            let pair = (&inp, &out);
            let inp = inp.downcast::<PyTuple>()?;
            let f = inp.get_item(0)?;
            let mut op = LedgerOp {
                f: 0,
                from: 0,
                to: 0,
                cents: 0,
                out: if out.is(&unknown) { 2 } else { 1 },
                read: Vec::new(),
                overdraft,
            };
            let group = match f.downcast::<PyString>()?.to_str()? {
                "read" if inp.len() == 2 => {
                    let asked = inp.get_item(1)?;
                    let asked = if asked.is_none() {
                        None
                    } else {
                        let asked = asked
                            .downcast::<PyTuple>()
                            .map_err(|_| foreign("a read asking for other than a tuple"))?;
                        Some(
                            asked
                                .iter()
                                .map(|a| number(&a))
                                .collect::<PyResult<Vec<u32>>>()?,
                        )
                    };
                    if op.out == 1 {
                        let got = out
                            .downcast::<PyTuple>()
                            .map_err(|_| foreign("a read's balances not as a tuple"))?;
                        for pair in got.iter() {
                            let pair = pair.downcast::<PyTuple>()?;
                            let a = number(&pair.get_item(0)?)?;
                            op.read.push((a, cents(&pair.get_item(1)?)?));
                        }
                        LedgerGroup::Read(asked, op.read.clone())
                    } else {
                        LedgerGroup::ReadUnknown(asked)
                    }
                }
                "deposit" if inp.len() == 3 => {
                    op.f = 1;
                    op.from = number(&inp.get_item(1)?)?;
                    op.cents = cents(&inp.get_item(2)?)?;
                    // Its output may be any value: (input, output) numbered through
                    // `values`, by Python's ==; an unhashable pair is in no group
                    // (search.py skips it).
                    let (inp, out) = pair;
                    match intern(&values, PyTuple::new(py, [inp, out])?.as_any()) {
                        Err(e) if e.is_instance_of::<pyo3::exceptions::PyTypeError>(py) => {
                            LedgerGroup::Alone(rows.len())
                        }
                        id => LedgerGroup::Interned(id?),
                    }
                }
                "transfer" if inp.len() == 4 => {
                    op.f = 2;
                    op.from = number(&inp.get_item(1)?)?;
                    op.to = number(&inp.get_item(2)?)?;
                    op.cents = cents(&inp.get_item(3)?)?;
                    if out.is(no) {
                        op.out = 0;
                    } else if op.out == 1 && !out.is(yes) {
                        return Err(foreign(
                            "a transfer outcome other than ok, rejected, unknown",
                        ));
                    }
                    LedgerGroup::Transfer(op.from, op.to, op.cents, op.out)
                }
                _ => return Err(foreign("this ledger operation")),
            };
            rows.push((op, group, call, ret));
        }
        Ok(Search::new(
            tables(rows.into_iter(), scratch),
            Rc::from(state),
            cache_each,
            slice_steps.max(1),
            scratch,
        ))
    };
    let found = round_robin(parts.len(), &mut scratch, start, timeout_s, &mut Vec::new())?;
    Ok(found.iter().map(part_out).collect())
}

/// A kv output: unknown, None, or a string.
fn kv_value(v: &Bound<'_, PyAny>, unknown: &Bound<'_, PyAny>) -> PyResult<(u8, Option<String>)> {
    if v.is(unknown) {
        Ok((0, None))
    } else if v.is_none() {
        Ok((1, None))
    } else {
        Ok((
            2,
            Some(
                v.downcast::<PyString>()
                    .map_err(|_| foreign("a kv value that is not a string"))?
                    .to_str()?
                    .to_owned(),
            ),
        ))
    }
}

/// Check the parts (keys) of a kv history, as `check_register` (the initial
/// states are strings).
#[pyfunction]
#[pyo3(signature = (parts, unknown, cache_each, slice_steps, timeout_s=None))]
fn check_kv(
    parts: Vec<(String, Bound<'_, PyList>)>,
    unknown: Bound<'_, PyAny>,
    cache_each: u64,
    slice_steps: u64,
    timeout_s: Option<f64>,
) -> PyResult<Vec<PartOut>> {
    let mut scratch = Scratch::with_capacity(parts.iter().map(|p| p.1.len()).max().unwrap_or(0));
    let start = |p: usize, scratch: &mut Scratch<Kv, _>| -> PyResult<Search<Kv>> {
        let (init, calls) = &parts[p];
        let mut rows = Vec::with_capacity(calls.len());
        for c in calls.iter() {
            let (inp, out, call, ret) = call_fields(&c)?;
            let inp = inp.downcast::<PyTuple>()?;
            let f = match inp.get_item(0)?.downcast::<PyString>()?.to_str()? {
                "get" => 0u8,
                "put" => 1,
                "append" => 2,
                _ => return Err(foreign("this kv operation")),
            };
            let (arg_kind, arg) = kv_value(&inp.get_item(2)?, &unknown)?;
            let (out_kind, got) = kv_value(&out, &unknown)?;
            if f == 0 && out_kind == 1 {
                return Err(foreign("a get of None")); // the model reads it as ""
            }
            if f != 0 && arg_kind != 2 {
                return Err(foreign("a put or append of a non-string"));
            }
            let op = KvOp {
                f,
                arg: Text::from(arg.clone().unwrap_or_default().as_bytes()),
                out: if f == 0 {
                    got.as_ref().map(|g| Text::from(g.as_bytes()))
                } else {
                    None
                },
            };
            rows.push((op, (f, arg_kind, arg, out_kind, got), call, ret));
        }
        Ok(Search::new(
            tables(rows.into_iter(), scratch),
            Text::from(init.as_bytes()),
            cache_each,
            slice_steps.max(1),
            scratch,
        ))
    };
    let found = round_robin(parts.len(), &mut scratch, start, timeout_s, &mut Vec::new())?;
    Ok(found.iter().map(part_out).collect())
}

/// One kv operation as `checks/lin/checker.py`'s `prepare` sees it, read
/// from the `Operation` itself: the Python objects its `Call` carries, and
/// the search's view (op, symmetry group, call and return positions).
struct KvRow<'py> {
    key: Bound<'py, PyString>,
    process: Bound<'py, PyAny>,
    f: Bound<'py, PyAny>,
    arg: Bound<'py, PyAny>,
    out: Bound<'py, PyAny>,
    operation: Bound<'py, PyAny>,
    call_at: Bound<'py, PyAny>, // the event indexes, as the Call holds them
    ret_at: Bound<'py, PyAny>,
    op: KvOp,
    group: KvGroup,
    call: i64,
    ret: Option<i64>,
}

/// Equal (input, output) in one part: f, the argument and the output (kind
/// and text; kinds as `kv_value`'s).
type KvGroup = (u8, u8, Option<Text>, u8, Option<Text>);

/// What the search keeps of a `KvRow` (`tables`' rows).
type KvSearchRow = (KvOp, KvGroup, i64, Option<i64>);

/// A kv value as `kv_value` reads it, shared (Rc) between the op and its group.
fn kv_text(
    v: &Bound<'_, PyAny>,
    unknown: &Bound<'_, PyAny>,
) -> PyResult<Option<(u8, Option<Text>)>> {
    if v.is(unknown) {
        return Ok(Some((0, None)));
    }
    if v.is_none() {
        return Ok(Some((1, None)));
    }
    match v.downcast::<PyString>() {
        Ok(s) => Ok(Some((2, Some(Text::from(s.to_str()?.as_bytes()))))),
        Err(_) => Ok(None),
    }
}

/// `KvModel.prepare` and checker.py's `prepare` for one operation: Ok(None)
/// when the fast path cannot vouch for it (the Python code then prepares
/// the whole history, and raises its own errors); Ok(Some(None)) for an
/// operation left out (failed, or a get whose outcome is unknown).
fn kv_row<'py>(
    o: &Bound<'py, PyAny>,
    unknown: &Bound<'py, PyAny>,
) -> PyResult<Option<Option<KvRow<'py>>>> {
    let py = o.py();
    let f_obj = o.getattr(intern!(py, "f"))?;
    let f = match f_obj.downcast::<PyString>() {
        Ok(s) => match s.to_str()? {
            "get" => 0u8,
            "put" => 1,
            "append" => 2,
            _ => return Ok(None),
        },
        Err(_) => return Ok(None),
    };
    let invoke = o.getattr(intern!(py, "invoke"))?;
    let done = o.getattr(intern!(py, "completion"))?;
    // None: no completion or info (unknown outcome); else Some(index).
    let ret_at = if done.is_none() {
        None
    } else {
        match done
            .getattr(intern!(py, "type"))?
            .downcast::<PyString>()?
            .to_str()?
        {
            "fail" => return Ok(Some(None)), // it did not happen
            "info" => None,
            "ok" => Some(done.getattr(intern!(py, "index"))?),
            _ => return Ok(None),
        }
    };
    let ret = ret_at.as_ref().map(|r| r.extract::<i64>()).transpose()?;
    let extra = invoke.getattr(intern!(py, "extra"))?;
    let key = match extra.downcast::<PyDict>() {
        Ok(d) => d.get_item(intern!(py, "key"))?,
        Err(_) => return Ok(None), // not a dict (no extra at all): not the usual shape
    };
    let key = match key {
        Some(k) if k.is_exact_instance_of::<PyString>() => k.downcast_into::<PyString>()?,
        _ => return Ok(None), // no key field, or a key that is not a plain string
    };
    if f == 0 && ret.is_none() {
        return Ok(Some(None)); // a get whose result is unknown constrains nothing
    }
    let arg = invoke.getattr(intern!(py, "value"))?;
    let Some((arg_kind, arg_text)) = kv_text(&arg, unknown)? else {
        return Ok(None);
    };
    if f != 0 && arg_kind != 2 {
        return Ok(None); // a put or append of a non-string: Python's error
    }
    let mut out = if ret.is_none() {
        unknown.clone()
    } else {
        done.getattr(intern!(py, "value"))?
    };
    if f == 0 && out.is_none() {
        out = PyString::new(py, "").into_any(); // a read of nil reads the empty string
    }
    let Some((out_kind, out_text)) = kv_text(&out, unknown)? else {
        return Ok(None);
    };
    let op = KvOp {
        f,
        arg: arg_text.clone().unwrap_or_else(|| Text::from(&b""[..])),
        out: if f == 0 { out_text.clone() } else { None },
    };
    let call_at = invoke.getattr(intern!(py, "index"))?;
    Ok(Some(Some(KvRow {
        key,
        process: o.getattr(intern!(py, "process"))?,
        f: f_obj,
        arg,
        out,
        operation: o.clone(),
        op,
        group: (f, arg_kind, arg_text, out_kind, out_text),
        call: call_at.extract::<i64>()?,
        call_at,
        ret_at: ret_at.unwrap_or_else(|| py.None().into_bound(py)),
        ret,
    })))
}

/// A `checks.lin.model.Call` (a named tuple, so `tuple.__new__` builds it
/// without its Python-level `__new__`).
fn new_call<'py>(
    make: &Bound<'py, PyAny>,
    call_type: &Bound<'py, PyAny>,
    k: usize,
    r: &KvRow<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = make.py();
    let input = PyTuple::new(py, [r.f.clone(), r.key.clone().into_any(), r.arg.clone()])?;
    let fields = PyTuple::new(
        py,
        [
            k.into_pyobject(py)?.into_any(),
            r.process.clone(),
            r.f.clone(),
            input.into_any(),
            r.out.clone(),
            r.call_at.clone(),
            r.ret_at.clone(),
            r.operation.clone(),
        ],
    )?;
    make.call1((call_type, fields))
}

/// A kv history once checked (`KvPrepared.check`): its parts, kept as
/// positions in its list of operations, and what each part's search found.
/// Python reads them only when asked (`parts`, `calls`), for a report or a
/// picture: a verdict needs none of them, and building one `Call` per
/// operation, or one result per part, was most of a small history's check.
#[pyclass(unsendable, module = "d11_lincheck")]
struct KvParts {
    ops: Py<PyList>,
    call_type: Py<PyAny>,
    unknown: Py<PyAny>,
    rows: Vec<KvPreparedRow>,
    members: Vec<usize>, // the parts' rows, part after part, each in call order
    parts: Vec<(usize, usize)>, // each part's start in members, and its size
    found: Vec<Option<Found>>,
}

impl KvParts {
    /// Part `p` as Python reads it: (key, number of calls, outcome).
    fn part<'py>(&self, py: Python<'py>, p: usize) -> (Bound<'py, PyString>, usize, PartOut) {
        let (at, n) = self.parts[p];
        let key = PyString::new(py, &self.rows[self.members[at]].0);
        (key, n, part_out(&self.found[p]))
    }
}

#[pymethods]
impl KvParts {
    fn __len__(&self) -> usize {
        self.parts.len()
    }

    /// Each part as (key, number of calls, outcome: as `check_kv` gives
    /// it), smallest first, as checker.py's `split` orders them.
    fn parts<'py>(&self, py: Python<'py>) -> Vec<(Bound<'py, PyString>, usize, PartOut)> {
        (0..self.parts.len()).map(|p| self.part(py, p)).collect()
    }

    /// Part `p`'s `Call`s, local ids 0..n-1 in call order, as checker.py's
    /// `split` builds them, read again from the operations (which the caller
    /// must not have changed since the check).
    fn calls<'py>(&self, py: Python<'py>, p: usize) -> PyResult<Bound<'py, PyList>> {
        let &(at, n) = self
            .parts
            .get(p)
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err(p))?;
        let part = &self.members[at..at + n];
        let (ops, unknown) = (self.ops.bind(py), self.unknown.bind(py));
        let make = py.get_type::<PyTuple>().getattr(intern!(py, "__new__"))?;
        let calls = PyList::empty(py);
        for (k, &i) in part.iter().enumerate() {
            let Some(Some(row)) = kv_row(&ops.get_item(self.rows[i].1)?, unknown)? else {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "an operation changed after its check",
                ));
            };
            calls.append(new_call(&make, self.call_type.bind(py), k, &row)?)?;
        }
        Ok(calls)
    }
}

/// One operation of a `KvPrepared` history: its key, its position in the
/// list of operations, and the search's view of it.
type KvPreparedRow = (String, usize, KvSearchRow);

/// A kv history read from its `Operation`s (`prepare_kv_ops`): what
/// checker.py's `prepare` makes of it, as the search's own rows, ready for
/// `check` (which splits and searches). Reading the Python objects is most
/// of a small history's cost; it is kept apart from the split and the
/// search so that a benchmark can time them as Porcupine's does: its parser
/// builds the model's inputs before its timer starts; partitioning and
/// searching are timed.
#[pyclass(unsendable, module = "d11_lincheck")]
struct KvPrepared {
    dropped: usize,
    rows: Vec<KvPreparedRow>,
    ops: Py<PyList>,
    call_type: Py<PyAny>,
    unknown: Py<PyAny>,
    checked: bool,
    // The searches once checked, freed with this object rather than inside
    // `check`: freeing c50-bad's caches was ~15% of its check (perf), and
    // Porcupine's CheckEvents leaves its memory to a later collection too.
    spent: Vec<Search<Kv>>,
}

/// `KvPrepared.check`'s answer: calls left out; the failing part, if one
/// failed, as (its position, key, number of calls, outcome); whether every
/// part finished; the steps, cache entries and whether a cache was full,
/// over the finished parts; and the parts, to read on demand.
type KvChecked<'py> = (
    usize,
    Option<(usize, Bound<'py, PyString>, usize, PartOut)>,
    bool,
    (u64, u64, bool),
    KvParts,
);

#[pymethods]
impl KvPrepared {
    /// checker.py's `split`, then the search, once; a verdict's figures
    /// come back at once, the parts (`KvParts`) are read when asked for.
    #[pyo3(signature = (cache_max, slice_steps, timeout_s=None))]
    fn check<'py>(
        &mut self,
        py: Python<'py>,
        cache_max: u64,
        slice_steps: u64,
        timeout_s: Option<f64>,
    ) -> PyResult<KvChecked<'py>> {
        if self.checked {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "a prepared history is checked once",
            ));
        }
        self.checked = true;
        let rows = std::mem::take(&mut self.rows);
        // split: by key, in order of first appearance (the model's
        // partition), into one buffer of rows grouped by part
        let mut by_key: FxHashMap<&str, usize> = FxHashMap::default(); // a few keys: grown as met
        let mut part_of = Vec::with_capacity(rows.len());
        let mut parts: Vec<(usize, usize)> = Vec::new(); // (start in members, size)
        for (key, _, _) in rows.iter() {
            let next = by_key.len();
            let p = *by_key.entry(key.as_str()).or_insert(next);
            if p == parts.len() {
                parts.push((0, 0));
            }
            parts[p].1 += 1;
            part_of.push(p);
        }
        let mut end = 0;
        for part in parts.iter_mut() {
            part.0 = end;
            end += part.1;
        }
        let mut members = vec![0; rows.len()];
        let mut filled: Vec<usize> = parts.iter().map(|&(at, _)| at).collect();
        for (i, &p) in part_of.iter().enumerate() {
            members[filled[p]] = i;
            filled[p] += 1;
        }
        for &(at, n) in &parts {
            let part = &mut members[at..at + n];
            let call = |&i: &usize| rows[i].2 .2;
            if !part.is_sorted_by_key(call) {
                part.sort_by_key(call); // by call position; stable, as Python's sorted
            }
        }
        parts.sort_by_key(|&(_, n)| n); // stable: smallest first, ties in key order
        let cache_each = (cache_max / parts.len().max(1) as u64).max(1000);
        let mut scratch = Scratch::with_capacity(parts.last().map_or(0, |&(_, n)| n)); // the largest
        let start = |p: usize, scratch: &mut Scratch<Kv, _>| -> PyResult<Search<Kv>> {
            let (at, n) = parts[p];
            let searched = members[at..at + n].iter().map(|&i| rows[i].2.clone());
            Ok(Search::new(
                tables(searched, scratch),
                Text::from(&b""[..]),
                cache_each,
                slice_steps.max(1),
                scratch,
            ))
        };
        let found = round_robin(parts.len(), &mut scratch, start, timeout_s, &mut self.spent)?;
        let (mut steps, mut entries, mut full) = (0, 0, false);
        for f in found.iter().flatten() {
            steps += f.steps;
            entries += f.cache_entries;
            full |= f.cache_full;
        }
        let finished = found.iter().all(Option::is_some);
        let split = KvParts {
            ops: self.ops.clone_ref(py),
            call_type: self.call_type.clone_ref(py),
            unknown: self.unknown.clone_ref(py),
            rows,
            members,
            parts,
            found,
        };
        let failing = split
            .found
            .iter()
            .position(|f| f.as_ref().is_some_and(|f| !f.linearizable))
            .map(|p| {
                let (key, n, out) = split.part(py, p);
                (p, key, n, out)
            });
        Ok((
            self.dropped,
            failing,
            finished,
            (steps, entries, full),
            split,
        ))
    }
}

/// A whole kv history, from its `Operation`s: checker.py's `prepare`, for
/// `KvPrepared.check`. Returns None when an operation is not of the usual
/// shape (a `key` field holding a string, string values): the Python code
/// then does it all.
#[pyfunction]
fn prepare_kv_ops(
    ops: &Bound<'_, PyList>,
    call_type: &Bound<'_, PyAny>,
    unknown: &Bound<'_, PyAny>,
) -> PyResult<Option<KvPrepared>> {
    let mut dropped = 0usize;
    let mut rows = Vec::with_capacity(ops.len());
    for (pos, o) in ops.iter().enumerate() {
        match kv_row(&o, unknown)? {
            None => return Ok(None),
            Some(None) => dropped += 1,
            Some(Some(r)) => rows.push((
                r.key.to_str()?.to_owned(),
                pos,
                (r.op, r.group, r.call, r.ret),
            )),
        }
    }
    Ok(Some(KvPrepared {
        dropped,
        rows,
        ops: ops.clone().unbind(),
        call_type: call_type.clone().unbind(),
        unknown: unknown.clone().unbind(),
        checked: false,
        spent: Vec::new(),
    }))
}

#[pymodule]
fn d11_lincheck(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(check_register, m)?)?;
    m.add_function(wrap_pyfunction!(check_kv, m)?)?;
    m.add_function(wrap_pyfunction!(check_ledger, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_kv_ops, m)?)?;
    m.add_class::<KvParts>()?;
    m.add_class::<KvPrepared>()?;
    Ok(())
}
