//! A match's groups found by a chain of DFA searches instead of a backtracker.
//!
//! The backtracker that finds groups walks every state of a pattern at every byte (about
//! 10 ns a byte on sshd's patterns, most of a built-in's cost per failure line). Yet most
//! of a log pattern is text no group lies in (` from `, ` port \d+`), and its groups hold
//! simple runs (`\S+`, an address).
//!
//! A pattern is split along its top-level sequence into pieces: runs with no group (walked
//! step by step, or found by a lazy DFA, or compared when they are one literal), groups,
//! and alternatives that hold groups. The chain searches each piece, anchored where the one
//! before it ended, and hands each of its ends, in the backtracker's order, to the rest.
//!
//! Why that is the backtracker's answer: the backtracker tries the ways to match a sequence
//! `A B` in priority order, `A`'s choices first, and takes the first that lets `B` match.
//! A run holds no group, so its ways differ only in where they end: trying its ends in the
//! order the backtracker first reaches them, and the rest from each, finds the backtracker's
//! match. A run made of simple steps (literals, classes repeated, optional parts,
//! alternatives of those) is walked through its ends in that order, so a greedy part that
//! took what follows needs (`\[?...\]?` before `\]`, `(?:invalid user )?` before a user
//! named `invalid`) gives it back as the backtracker would. A run left to its DFA has one
//! end known, the first; when the rest cannot go on from it the chain cannot tell, and
//! the caller runs the backtracker, as it does when a search runs past its budget of steps
//! (trying ways one after another is exponential at worst).
//! An alternative holding groups (`(?:<IP4>|<IP6>)`, an optional group) tries its
//! branches in order, each walked with the rest of the pattern. Where a branch's walk
//! cannot tell, the branch's DFA (itself followed by that rest, groups left out) says
//! whether any match goes through it; a branch that has none is passed over, as the
//! backtracker passes it.
//! Searches see the whole text, so `^`, `$` and `\b` at a piece's edge look at the real
//! neighbours.

use regex_automata::{
    hybrid::dfa::{Cache, DFA},
    nfa::thompson::{self, backtrack::BoundedBacktracker},
    util::syntax,
    Anchored, Input, MatchKind,
};
use regex_syntax::hir::{Hir, HirKind};

/// A pattern cut into pieces (see the module docs).
#[derive(Debug, Clone)]
pub struct Chain {
    root: Piece,
    dfas: Vec<DFA>,
    /// Groups of the pattern, the whole match (group 0) included.
    groups: usize,
    /// Whether an alternative found to have no way through from a place may be passed
    /// over when the search comes back to it there (see [`Dead`]): not where a
    /// conditional reads which groups took part, which differs from way to way.
    remember_dead: bool,
    /// A literal every match holds (see [`needed_literal`]): a text without it has no
    /// match, which one memmem tells sooner than a walk that tries every way to cut the
    /// line before it finds the literal missing.
    needs: Option<memchr::memmem::Finder<'static>>,
    /// The literal every match starts with, where the pattern starts with one.
    starts: Option<Box<[u8]>>,
}

#[derive(Debug, Clone)]
enum Piece {
    /// Bytes that must follow here.
    Literal(Box<[u8]>),
    /// A run with no group: its ends, in the backtracker's order. Walked by its steps
    /// when they have no alternatives; else the first end by its DFA (one pass, where
    /// walking tries each alternative in turn), and the steps only when the rest of the
    /// pattern cannot go on from there.
    Run {
        steps: Option<Box<[Step]>>,
        /// None where the run holds a look-ahead or a conditional (no DFA can say where
        /// it ends); its steps are walked then.
        dfa: Option<usize>,
        /// The first end is found by the DFA, not by the first-choice loop (the run has a
        /// DFA, and steps that loop would take more slowly or cannot take).
        dfa_first: bool,
        /// Of a `dfa_first` run: its steps hold few alternatives and no repetition (an
        /// optional prefix, `(?:::f{4,6}:)?`), so where they take no choice they find the
        /// one end sooner than the DFA; longer ones cost more than the DFA even then.
        quick: bool,
        /// What may follow the run: an end the rest cannot start at is not tried.
        follow: Follow,
    },
    Seq(Vec<Piece>),
    /// Alternatives in priority order.
    Alt(Vec<Choice>),
    Group(usize, Box<Piece>),
}

/// One alternative of [`Piece::Alt`].
#[derive(Debug, Clone)]
struct Choice {
    piece: Piece,
    /// The DFA that says whether the whole pattern can go on through it from here (none
    /// for the last: it is all that is left).
    through: Option<usize>,
    /// Whether that DFA is asked before the branch is walked.
    ask: Ask,
}

/// When a branch's DFA is asked before the branch is walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Only after, where the walk cannot tell: nearly always the branch gets through, or
    /// fails within a few bytes (an IPv4 address's digits on an IPv6 address).
    After,
    /// Always: the branch decides a conditional further on (it sets the group the
    /// conditional asks about, or leaves it unset). The DFA knows which way the
    /// conditional goes, and refuses in one pass what the walk would refuse only after
    /// trying every way of what lies between (fail2ban's sshd `Failed` pattern: a user
    /// read as `\S+` requires `: ` after the address, which most lines do not have).
    First,
    /// While the branch is often refused (one search in four): it repeats a field
    /// without bound, and a walk that finds no way through it has tried every way to
    /// cut the line into fields (a user read from among logfmt fields, with the fields
    /// after it read too, as grafana's built-in once did, on a line whose `uname=` is
    /// empty), where its DFA refuses it in one pass. On a log whose lines go through,
    /// the DFA's pass would be paid for nothing.
    WhileRefused,
}

impl Piece {
    /// Forgets the groups in this piece (a way through it that did not get through).
    fn clear(&self, slots: &mut [Option<(usize, usize)>]) {
        match self {
            Piece::Literal(_) | Piece::Run { .. } => {}
            Piece::Seq(parts) => parts.iter().for_each(|p| p.clear(slots)),
            Piece::Alt(branches) => branches.iter().for_each(|c| c.piece.clear(slots)),
            Piece::Group(index, inner) => {
                if let Some(slot) = slots.get_mut(*index) {
                    *slot = None;
                }
                inner.clear(slots);
            }
        }
    }
}

/// Most memory one piece's lazy DFA may hold (it starts empty and clears itself when full).
/// A pattern has a dozen pieces and a filter a few dozen patterns: the default (2 MiB) would
/// let a long-running daemon's chains grow to hundreds of MiB on varied input.
const CACHE_CAPACITY: usize = 256 << 10;

/// The span of every group of a match, by index (group 0: the whole match).
pub type Spans = Vec<Option<(usize, usize)>>;

/// The chain cannot tell (see the module docs): the backtracker must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CannotTell;

/// A chain's DFA caches, reused from line to line.
#[derive(Debug, Clone)]
pub struct ChainCache {
    dfas: Vec<Cache>,
    straight: Tally,
    /// Per run found by its DFA (by the DFA's index): how often its steps alone settled
    /// its end (see [`Chain::straight`]).
    alone: Vec<Tally>,
    /// Per branch asked first while often refused (by its DFA's index): how often it was
    /// (see [`Ask::WhileRefused`]).
    refused: Vec<Tally>,
    /// How often the literal every match holds was missing, lately (see
    /// [`Chain::may_match`]).
    missing: Tally,
    /// How often a search of a text not known to hold a match found one, lately (see
    /// [`ChainCache::worth_searching`]).
    unknown: Tally,
    /// Alternatives found to have no way through from a place, in the current search.
    dead: Dead,
    /// The spans of a match handed back after use (see [`ChainCache::give_back`]): a
    /// search that finds one then needs no allocation.
    spare: Spans,
    /// The steps the last search walked (tests read how much a walk tried).
    #[cfg(test)]
    pub walked: u32,
    /// The branch DFAs asked, all searches together.
    #[cfg(test)]
    asked: u32,
}

impl ChainCache {
    /// Whether a text not known to hold a match is worth the chain's own search, without
    /// another engine's pass to find the match first: while at least half of those
    /// searches lately found one. A chain tries every way before it refuses a text, which
    /// costs more than that pass where most texts hold no match (fail2ban's postfix.conf
    /// searched so on every line: a third slower) and less where most do (sshd.conf: 5%
    /// faster).
    pub fn worth_searching(&mut self) -> bool {
        self.unknown.worth_while(|tried, found| found * 2 >= tried)
    }

    /// Counts a search [`ChainCache::worth_searching`] allowed, and whether it found a match.
    pub fn searched(&mut self, found: bool) {
        self.unknown.count(found);
    }

    /// Spans a search returned, once read: the next search fills them instead of
    /// allocating its own (~130 instructions of malloc and free a matched line).
    pub fn give_back(&mut self, spans: Spans) {
        self.spare = spans;
    }
}

/// How a shortcut has done lately (the straight pass, a run's steps before its DFA: see
/// [`Chain::straight`]; a filter's chains before its DFA: see `FirstOf::alone`): where it
/// seldom pays, every search would pay for it and for the way after.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tally {
    tried: u32,
    /// What the tries counted: those that settled, or the searches they made.
    counted: u32,
    /// Searches without it since it was last tried.
    skipped: u32,
}

impl Tally {
    /// Worth trying: at first, and while `holds(tried, counted)`. Once given up, one
    /// search in 64 still tries it, so a log that changes shape is noticed.
    pub(super) fn worth_while(&mut self, holds: impl Fn(u32, u32) -> bool) -> bool {
        if self.tried < 16 || holds(self.tried, self.counted) {
            return true;
        }
        self.skipped += 1;
        if self.skipped < 64 {
            return false;
        }
        self.skipped = 0;
        true
    }

    /// Worth trying while it settles at least seven searches in eight.
    fn worth(&mut self) -> bool {
        self.worth_while(|tried, settled| settled * 8 >= tried * 7)
    }

    /// Counts one try and what it counted; halves both counts now and then, so the
    /// recent lines weigh most.
    pub(super) fn add(&mut self, counted: u32) {
        if self.tried >= 1024 {
            self.tried /= 2;
            self.counted /= 2;
        }
        self.tried += 1;
        self.counted += counted;
    }

    /// Counts one try, and whether it settled.
    fn count(&mut self, settled: bool) {
        self.add(u32::from(settled));
    }
}

/// A chain's caches shared by a filter's copies: one per thread searching at once (nearly
/// always one).
#[derive(Debug, Default)]
pub struct CachePool(std::sync::Mutex<Vec<ChainCache>>);

impl CachePool {
    /// `f` with a cache of `chain`, taken from the pool (or new) and put back after.
    pub fn with<R>(&self, chain: &Chain, f: impl FnOnce(&mut ChainCache) -> R) -> R {
        let held = self.0.lock().ok().and_then(|mut v| v.pop());
        let mut cache = held.unwrap_or_else(|| chain.cache());
        let out = f(&mut cache);
        if let Ok(mut v) = self.0.lock() {
            v.push(cache);
        }
        out
    }

    /// Spans a search of this pool's chain returned, once read (see
    /// [`ChainCache::give_back`]).
    pub fn give_back(&self, spans: Spans) {
        if let Some(cache) = self.0.lock().ok().as_mut().and_then(|v| v.last_mut()) {
            if cache.spare.capacity() < spans.capacity() {
                cache.give_back(spans);
            }
        }
    }
}

/// `pattern` in the chain's syntax: bytes, without Unicode (the ASCII twin's).
pub fn ascii_hir(pattern: &str) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()
}

/// NFAs of the chain's syntax: on bytes, a match may end inside what UTF-8 would call one
/// character.
fn ascii_nfa() -> thompson::Config {
    thompson::Config::new().utf8(false)
}

/// `pattern`'s backtracker in the chain's syntax.
pub fn ascii_backtracker(pattern: &str) -> Option<BoundedBacktracker> {
    BoundedBacktracker::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(ascii_nfa())
        .build(pattern)
        .ok()
}

/// One lazy DFA for `hirs` (in the chain's syntax), leftmost-first (the first in order
/// wins), its cache up to `capacity` bytes. A DFA reports no groups, so its NFA keeps none
/// (as regex-automata's own DFA builders do).
pub fn ascii_dfa(hirs: &[Hir], capacity: usize) -> Option<DFA> {
    let nfa = thompson::Compiler::new()
        .configure(ascii_nfa().which_captures(thompson::WhichCaptures::None))
        .build_many_from_hir(hirs)
        .ok()?;
    DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::LeftmostFirst)
                .cache_capacity(capacity),
        )
        .build_from_nfa(nfa)
        .ok()
}

impl Chain {
    /// Cut `pattern`, run without Unicode on bytes (the ASCII twin's syntax). None for what
    /// a chain cannot follow: a group inside a repetition that may match more than once.
    pub fn new(pattern: &str) -> Option<Self> {
        Self::of(&ascii_hir(pattern)?)
    }

    /// [`Chain::new`] for a pattern already parsed by [`ascii_hir`].
    pub fn of(hir: &Hir) -> Option<Self> {
        let mut dfas = Vec::new();
        let root = piece(hir, &Hir::empty(), &mut dfas)?;
        Some(Self {
            root,
            dfas,
            groups: hir.properties().explicit_captures_len() + 1,
            remember_dead: !has_conditionals(hir),
            needs: needed_finder(hir),
            starts: leading_literal(hir).map(Box::from),
        })
    }

    /// Whether `text` lacks the literal every match holds (where the pattern has one).
    pub fn lacks_needed(&self, text: &[u8]) -> bool {
        self.needs.as_ref().is_some_and(|n| n.find(text).is_none())
    }

    /// Whether no match starts at `start` of `text` (the chain's own search): it does
    /// not start with the literal every match starts with, or lacks the one every match
    /// holds.
    pub fn refuses_at(&self, text: &[u8], start: usize) -> bool {
        let Some(rest) = text.get(start..) else {
            return true;
        };
        self.starts.as_deref().is_some_and(|l| !rest.starts_with(l)) || self.lacks_needed(rest)
    }

    /// Whether `text` from `start` may hold a match: false where it lacks a literal every
    /// match holds. Looked for while it is missing in at least half the texts: a walk
    /// that fails within a few bytes costs less than the memmem (fail2ban's
    /// nginx-http-auth.conf, four lines in ten not its own: 10% slower with the look at
    /// one in eight), so it pays where most lines are another pattern's (exim's
    /// messages: one in five or eight is a pattern's own).
    pub fn may_match(&self, text: &[u8], start: usize, cache: &mut ChainCache) -> bool {
        let Some(rest) = text.get(start..) else {
            return false;
        };
        if self.needs.is_none()
            || !cache
                .missing
                .worth_while(|tried, missing| missing * 2 >= tried)
        {
            return true;
        }
        let missing = self.lacks_needed(rest);
        cache.missing.count(missing);
        !missing
    }

    pub fn cache(&self) -> ChainCache {
        ChainCache {
            dfas: self.dfas.iter().map(DFA::create_cache).collect(),
            straight: Tally::default(),
            alone: vec![Tally::default(); self.dfas.len()],
            refused: vec![Tally::default(); self.dfas.len()],
            missing: Tally::default(),
            unknown: Tally::default(),
            dead: Dead::default(),
            spare: Vec::new(),
            #[cfg(test)]
            walked: 0,
            #[cfg(test)]
            asked: 0,
        }
    }

    /// The groups of the pattern's leftmost-first match starting at `start`, which must
    /// end at `end` (found by another engine); None when the chain cannot tell (see the
    /// module docs) and the backtracker must.
    pub fn groups(
        &self,
        text: &[u8],
        start: usize,
        end: usize,
        cache: &mut ChainCache,
    ) -> Option<Spans> {
        self.search(text, start, cache)
            .ok()
            .flatten()
            .filter(|slots| slots[0] == Some((start, end)))
    }

    /// The groups of the pattern's leftmost-first match starting at `start` (the
    /// backtracker's first way from there, whatever its end): `Ok(None)` when there is
    /// none, `Err(CannotTell)` when the chain cannot tell.
    pub fn search(
        &self,
        text: &[u8],
        start: usize,
        cache: &mut ChainCache,
    ) -> Result<Option<Spans>, CannotTell> {
        let mut slots = std::mem::take(&mut cache.spare);
        slots.clear();
        slots.resize(self.groups, None);
        let mut walker = Walker {
            text,
            cache,
            slots: &mut slots,
            budget: BUDGET,
        };
        walker.cache.dead.clear();
        let mut way = None;
        if walker.cache.straight.worth() {
            let found = self.straight(&self.root, &mut walker, start, &mut false);
            walker.cache.straight.count(found != First::Unsure);
            match found {
                First::End(end) => way = Some(Way::Done(end)),
                First::No => way = Some(Way::No),
                First::Unsure => {
                    walker.slots.fill(None);
                    walker.budget = BUDGET;
                }
            }
        }
        let way = way
            .unwrap_or_else(|| self.run(&self.root, &mut walker, start, &mut |_, e| Way::Done(e)));
        #[cfg(test)]
        {
            walker.cache.walked = BUDGET - walker.budget;
        }
        match way {
            Way::Done(end) => {
                slots[0] = Some((start, end));
                Ok(Some(slots))
            }
            Way::No => {
                cache.spare = slots;
                Ok(None)
            }
            Way::Unsure => {
                cache.spare = slots;
                Err(CannotTell)
            }
        }
    }

    /// The ways through `piece` from `at`, in the backtracker's order, each handed to
    /// `then` (the rest of the pattern) until one gets through.
    fn run(&self, piece: &Piece, w: &mut Walker<'_>, at: usize, then: Then<'_>) -> Way {
        match piece {
            Piece::Literal(bytes) => match w.text.get(at..) {
                Some(rest) if rest.starts_with(bytes) => then(w, at + bytes.len()),
                _ => Way::No,
            },
            Piece::Run {
                steps,
                dfa,
                dfa_first,
                follow,
                ..
            } => {
                // A run holds no group: ways ending at the same place are one way.
                let mut tried = Tried::default();
                // The usual case first: the first choice at every step, in a plain loop
                // where the steps have no alternatives; else by the run's DFA, whose one
                // pass costs less than the loop trying each branch (callgrind: about half).
                let first = match steps.as_deref() {
                    Some(s) if !*dfa_first => Some(first_end(s, w.text, at, &mut false)),
                    _ => None,
                };
                if first == Some(First::No) {
                    return Way::No;
                }
                if let Some(First::End(first)) = first {
                    if follow.allows(w.text, first) {
                        let way = then(w, first);
                        if way != Way::No {
                            return way;
                        }
                    }
                    tried.seen(first);
                } else if let (true, Some(dfa)) = (*dfa_first || steps.is_none(), dfa) {
                    match self.dfa_end(*dfa, w, at, false) {
                        Ok(Some(end)) => {
                            if follow.allows(w.text, end) {
                                let way = then(w, end);
                                if way != Way::No {
                                    return way;
                                }
                            }
                            tried.seen(end);
                        }
                        Ok(None) => return Way::No,
                        Err(CannotTell) => return Way::Unsure,
                    }
                }
                match steps {
                    Some(steps) if tried.only_end(steps, w.text, at) => Way::No,
                    Some(steps) => walk(steps, w, at, &mut |w, e| {
                        if tried.seen(e) {
                            Way::No
                        } else {
                            then(w, e)
                        }
                    }),
                    // The DFA knows the first way only: a later one might go on.
                    None => Way::Unsure,
                }
            }
            Piece::Seq(parts) => self.seq(parts, w, at, then),
            Piece::Alt(branches) => {
                // Every way to this alternative at `at` goes on with the same rest of the
                // pattern, so one that found none through it needs no other to try again.
                let key = (branches.as_ptr() as usize, at);
                if self.remember_dead && w.cache.dead.holds(key) {
                    return Way::No;
                }
                for c in branches {
                    // The branch's DFA with the rest of the pattern (one scan to the
                    // line's end) says whether it could lead to a match at all; a branch
                    // that cannot is passed over as the backtracker would (see [`Ask`]).
                    let ask = self.asks_first(c, w);
                    if ask && self.hopeless(c.through, w, at) {
                        self.note(c, w, true);
                        continue;
                    }
                    let way = self.run(&c.piece, w, at, then);
                    self.note(c, w, way == Way::No);
                    match way {
                        Way::No => continue,
                        Way::Unsure if !ask && self.hopeless(c.through, w, at) => continue,
                        way => return way,
                    }
                }
                if self.remember_dead {
                    w.cache.dead.add(key);
                }
                Way::No
            }
            Piece::Group(index, inner) => {
                let index = *index;
                self.run(inner, w, at, &mut |w, e| {
                    let Some(old) = w.slots.get(index).copied() else {
                        return Way::Unsure;
                    };
                    w.slots[index] = Some((at, e));
                    let way = then(w, e);
                    if !matches!(way, Way::Done(_)) {
                        w.slots[index] = old;
                    }
                    way
                })
            }
        }
    }

    /// The first choice of every piece from `at`, in one pass without handing ends on:
    /// the backtracker's first way when it gets through (most lines, for most patterns);
    /// `No` when a first choice failed where nothing before it had another way (`chose`,
    /// as in [`first_end`]); else `Unsure`, and the search that tries every way decides.
    /// Handing each piece's end on through a closure cost more than finding it.
    fn straight(&self, piece: &Piece, w: &mut Walker<'_>, at: usize, chose: &mut bool) -> First {
        let fail = |chose: bool| if chose { First::Unsure } else { First::No };
        match piece {
            Piece::Literal(bytes) => match w.text.get(at..) {
                Some(rest) if rest.starts_with(bytes) => First::End(at + bytes.len()),
                _ => fail(*chose),
            },
            Piece::Run {
                steps,
                dfa,
                dfa_first,
                quick,
                follow,
            } => {
                let before = *chose;
                // Where the steps take no choice (the optional prefix absent, a branch the
                // next byte rules out), their end is the run's only one, found without the
                // DFA's start-up; where they take one, the DFA finds the first end. Runs
                // whose steps seldom settle it (a choice most lines make) are left to
                // the DFA: they would pay for both.
                let alone = match (steps.as_deref(), dfa) {
                    (Some(s), Some(d)) if *quick => w.cache.alone.get_mut(*d).and_then(|tally| {
                        if !tally.worth() {
                            return None;
                        }
                        let mut inner = false;
                        let found = match first_end(s, w.text, at, &mut inner) {
                            f @ (First::End(_) | First::No) if !inner => Some(f),
                            _ => None,
                        };
                        tally.count(found.is_some());
                        found
                    }),
                    _ => None,
                };
                let first = match (alone, steps.as_deref(), dfa) {
                    (Some(found), _, _) => found,
                    (None, Some(s), _) if !*dfa_first => first_end(s, w.text, at, chose),
                    (None, _, Some(d)) => match self.dfa_end(*d, w, at, false) {
                        // The first end; whether there are others the DFA does not say.
                        Ok(Some(e)) => {
                            *chose = true;
                            First::End(e)
                        }
                        Ok(None) => First::No,
                        Err(CannotTell) => First::Unsure,
                    },
                    _ => First::Unsure,
                };
                match first {
                    First::End(e) if follow.allows(w.text, e) => First::End(e),
                    First::No => fail(before),
                    // The first end the rest can start at, found as the search finds it
                    // (`\]?` before `\]` gives back what it took).
                    _ => match self.run(piece, w, at, &mut |_, e| Way::Done(e)) {
                        Way::Done(e) => {
                            *chose = true;
                            First::End(e)
                        }
                        Way::No => fail(before),
                        Way::Unsure => First::Unsure,
                    },
                }
            }
            Piece::Seq(parts) => {
                let mut at = at;
                for part in parts {
                    match self.straight(part, w, at, chose) {
                        First::End(e) => at = e,
                        other => return other,
                    }
                }
                First::End(at)
            }
            Piece::Alt(branches) => {
                for (i, c) in branches.iter().enumerate() {
                    if self.asks_first(c, w) && self.hopeless(c.through, w, at) {
                        self.note(c, w, true);
                        continue;
                    }
                    // A branch's own choices count only when it is the one taken.
                    let mut inner = false;
                    match self.straight(&c.piece, w, at, &mut inner) {
                        First::End(e) => {
                            self.note(c, w, false);
                            *chose |= inner || i + 1 < branches.len();
                            return First::End(e);
                        }
                        First::Unsure if !self.hopeless(c.through, w, at) => return First::Unsure,
                        // No way through this branch: its groups are not taken.
                        _ => c.piece.clear(w.slots),
                    }
                }
                fail(*chose)
            }
            Piece::Group(index, inner) => {
                let found = self.straight(inner, w, at, chose);
                if let First::End(e) = found {
                    match w.slots.get_mut(*index) {
                        Some(slot) => *slot = Some((at, e)),
                        None => return First::Unsure,
                    }
                }
                found
            }
        }
    }

    /// Whether branch `c`'s DFA is asked before the branch is walked (see [`Ask`]).
    fn asks_first(&self, c: &Choice, w: &mut Walker<'_>) -> bool {
        match c.ask {
            Ask::After => false,
            Ask::First => true,
            Ask::WhileRefused => c
                .through
                .and_then(|i| w.cache.refused.get_mut(i))
                .is_some_and(|t| t.worth_while(|tried, refused| refused * 4 >= tried)),
        }
    }

    /// Counts whether branch `c` was found to have no way through, where that decides
    /// whether its DFA is asked first.
    fn note(&self, c: &Choice, w: &mut Walker<'_>, refused: bool) {
        if c.ask == Ask::WhileRefused {
            if let Some(t) = c.through.and_then(|i| w.cache.refused.get_mut(i)) {
                t.add(u32::from(refused));
            }
        }
    }

    /// Does the DFA of a branch with the rest of the pattern (`through`) find that no match
    /// goes through the branch from `at`? (No DFA: the last branch, all that is left.)
    fn hopeless(&self, through: Option<usize>, w: &mut Walker<'_>, at: usize) -> bool {
        #[cfg(test)]
        {
            w.cache.asked += u32::from(through.is_some());
        }
        through.is_some_and(|i| self.dfa_end(i, w, at, true) == Ok(None))
    }

    /// Where DFA `i`'s match anchored at `at` ends (with `earliest`, the first end it
    /// reaches, enough to know there is one); Err when it cannot say (it gave up).
    fn dfa_end(
        &self,
        i: usize,
        w: &mut Walker<'_>,
        at: usize,
        earliest: bool,
    ) -> Result<Option<usize>, CannotTell> {
        let (Some(dfa), Some(cache)) = (self.dfas.get(i), w.cache.dfas.get_mut(i)) else {
            return Err(CannotTell);
        };
        let input = Input::new(w.text)
            .span(at..w.text.len())
            .anchored(Anchored::Yes)
            .earliest(earliest);
        dfa.try_search_fwd(cache, &input)
            .map(|found| found.map(|m| m.offset()))
            .map_err(|_| CannotTell)
    }

    fn seq(&self, parts: &[Piece], w: &mut Walker<'_>, at: usize, then: Then<'_>) -> Way {
        match parts.split_first() {
            None => then(w, at),
            Some((first, rest)) => self.run(first, w, at, &mut |w, e| self.seq(rest, w, e, then)),
        }
    }
}

/// Steps a search may take before it gives the line to the backtracker: trying the ways
/// of runs one after another is exponential in the worst case.
const BUDGET: u32 = 4096;

/// How a search through the pieces went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// The whole pattern matched, ending here.
    Done(usize),
    /// No way through from here.
    No,
    /// Cannot tell: a run found by its DFA could not go on from its first end (its other
    /// ends are unknown), or the budget ran out.
    Unsure,
}

/// What a search carries through the pieces.
struct Walker<'a> {
    text: &'a [u8],
    cache: &'a mut ChainCache,
    slots: &'a mut [Option<(usize, usize)>],
    budget: u32,
}

/// Alternatives (by address) found to have no way through from a place (by offset), in
/// one search. A lazy or greedy run before an alternative comes back to it at the same
/// place from each of its ends that the run's next literal allows: pam's `ruser=` read as
/// `\S*` and then as `\S.*?` reaches `rhost=<HOST>` twice, and every branch of the
/// address (a hostname's every end) failed the first time. The last few are kept; one
/// forgotten is tried again, which is slower, never wrong.
#[derive(Debug, Clone, Default)]
struct Dead {
    keys: [(usize, usize); 8],
    len: usize,
    next: usize,
}

impl Dead {
    fn clear(&mut self) {
        self.len = 0;
        self.next = 0;
    }

    fn holds(&self, key: (usize, usize)) -> bool {
        self.keys[..self.len].contains(&key)
    }

    fn add(&mut self, key: (usize, usize)) {
        self.keys[self.next] = key;
        self.next = (self.next + 1) % self.keys.len();
        self.len = (self.len + 1).min(self.keys.len());
    }
}

/// The rest of the pattern, from where a piece ended.
type Then<'t> = &'t mut dyn FnMut(&mut Walker<'_>, usize) -> Way;

/// The ends of one run already handed on (the first few; more are handed on again, which
/// is slower, never wrong).
#[derive(Default)]
struct Tried {
    ends: [usize; 8],
    len: usize,
}

impl Tried {
    fn seen(&mut self, end: usize) -> bool {
        if self.ends[..self.len].contains(&end) {
            return true;
        }
        if self.len < self.ends.len() {
            self.ends[self.len] = end;
            self.len += 1;
        }
        false
    }

    /// Is the one end handed on the only end `steps` can have from `at`? It is where they
    /// end with a literal that `text` holds only once from `at` on, since every end
    /// follows that literal (pam's `... tty=\S* ruser=`, whose repeated fields the walk
    /// would otherwise cut every way to find no other end).
    fn only_end(&self, steps: &[Step], text: &[u8], at: usize) -> bool {
        let (1, Some(Step::Literal(tail))) = (self.len, steps.last()) else {
            return false;
        };
        let (Some(&first), Some(rest)) = (tail.first(), text.get(at..)) else {
            return false;
        };
        // The end handed on follows the literal; is it anywhere else? (A memmem searcher
        // costs more to build than these short lines take to scan.)
        let end = self.ends[0];
        !memchr::memchr_iter(first, rest)
            .any(|i| at + i + tail.len() != end && rest[i..].starts_with(tail))
    }
}

/// What a group with a reserved name stands for (see [`super::pyre::marked`]): the
/// look-aheads and conditionals of a backtracking pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// `(?!X)` and `(?=X)`.
    Ahead {
        negate: bool,
    },
    /// `(?(g)Y|N)`, by the index of group `g`; its two branches are `Yes` and `No`.
    If(usize),
    Yes,
    No,
}

fn mark(name: Option<&str>) -> Option<Mark> {
    let rest = name?.strip_prefix("__mark_")?;
    if rest.starts_with("neg") {
        Some(Mark::Ahead { negate: true })
    } else if rest.starts_with("pos") {
        Some(Mark::Ahead { negate: false })
    } else if let Some(r) = rest.strip_prefix("if") {
        let (_, group) = r.split_once("_g")?;
        group.parse().ok().map(Mark::If)
    } else if rest.starts_with("yes") {
        Some(Mark::Yes)
    } else if rest.starts_with("no") {
        Some(Mark::No)
    } else {
        None
    }
}

/// Does `hir` hold a group of the pattern's own (not a mark)?
fn has_groups(hir: &Hir) -> bool {
    if hir.properties().explicit_captures_len() == 0 {
        return false;
    }
    match hir.kind() {
        HirKind::Capture(c) if mark(c.name.as_deref()).is_some() => has_groups(&c.sub),
        HirKind::Capture(_) => true,
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(has_groups),
        HirKind::Repetition(r) => has_groups(&r.sub),
        _ => false,
    }
}

/// Does `hir` hold a mark that `which` accepts (see [`Mark`])?
fn has_mark(hir: &Hir, which: fn(Mark) -> bool) -> bool {
    match hir.kind() {
        HirKind::Capture(c) => {
            mark(c.name.as_deref()).is_some_and(which) || has_mark(&c.sub, which)
        }
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(|h| has_mark(h, which)),
        HirKind::Repetition(r) => has_mark(&r.sub, which),
        _ => false,
    }
}

/// The longest literal of at least three bytes that every match of `hir` holds (its first
/// 32 bytes where it is longer): one on
/// its spine (its sequence, a group's body, what repeats at least once; not an
/// alternative, an optional part or a look-ahead, whose text a match may not hold),
/// other than one the pattern starts with: its walk refuses a text without that one at
/// once, where a search for it would read the whole text.
fn needed_literal(hir: &Hir) -> Option<Vec<u8>> {
    fn spine<'h>(hir: &'h Hir, out: &mut Vec<&'h [u8]>) {
        match hir.kind() {
            HirKind::Literal(l) => out.push(&l.0),
            HirKind::Capture(c) if mark(c.name.as_deref()).is_none() => spine(&c.sub, out),
            HirKind::Concat(parts) => parts.iter().for_each(|p| spine(p, out)),
            HirKind::Repetition(r) if r.min > 0 => spine(&r.sub, out),
            _ => {}
        }
    }
    let mut literals = Vec::new();
    spine(hir, &mut literals);
    // The one it starts with is the first on its spine: its walk checks that one first.
    if leading_literal(hir).is_some() {
        literals.remove(0);
    }
    let longest = literals.into_iter().max_by_key(|l| l.len())?;
    // Any part of it is held too; memchr's vector search takes needles up to 32 bytes
    // (longer ones go to a slower two-way search).
    (longest.len() >= 3).then(|| longest[..longest.len().min(32)].to_vec())
}

/// A searcher for [`needed_literal`]'s literal: a chain's, and a pattern's that is only
/// asked whether it matches (see `Re::is_match`).
pub(super) fn needed_finder(hir: &Hir) -> Option<memchr::memmem::Finder<'static>> {
    needed_literal(hir).map(|l| memchr::memmem::Finder::new(&l).into_owned())
}

/// The literal every match of `hir` starts with, where it starts with one (after looks,
/// which take no bytes).
pub(super) fn leading_literal(hir: &Hir) -> Option<&[u8]> {
    let mut first = hir;
    loop {
        first = match first.kind() {
            HirKind::Concat(parts) => parts
                .iter()
                .find(|p| !matches!(p.kind(), HirKind::Look(_)))?,
            HirKind::Capture(c) if mark(c.name.as_deref()).is_none() => &c.sub,
            HirKind::Literal(l) => return Some(&l.0),
            _ => return None,
        };
    }
}

/// Does `hir` hold a conditional?
fn has_conditionals(hir: &Hir) -> bool {
    has_mark(hir, |m| matches!(m, Mark::If(_)))
}

/// Does `hir` hold a look-ahead or a conditional?
fn has_marks(hir: &Hir) -> bool {
    has_mark(hir, |_| true)
}

/// `hir` without its groups (what the DFAs that decide between branches run).
/// Look-aheads are left out too and conditionals take either branch: what the DFAs then
/// match is more, never less, so a branch they refuse cannot match. A conditional keeps
/// its marks (a DFA reads no group), so that [`resolve`] can still find it.
fn strip(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Capture(c) if matches!(mark(c.name.as_deref()), Some(Mark::Ahead { .. })) => {
            Hir::empty()
        }
        HirKind::Capture(c) if mark(c.name.as_deref()).is_none() => strip(&c.sub),
        _ => rebuilt(hir, strip),
    }
}

/// `hir` with each of its parts (a group's body, a sequence's or an alternation's parts,
/// what repeats) replaced by `f` of it; a group keeps its name and index.
fn rebuilt(hir: &Hir, f: impl Fn(&Hir) -> Hir) -> Hir {
    match hir.kind() {
        HirKind::Capture(c) => Hir::capture(regex_syntax::hir::Capture {
            sub: Box::new(f(&c.sub)),
            ..c.clone()
        }),
        HirKind::Concat(v) => Hir::concat(v.iter().map(f).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(f).collect()),
        HirKind::Repetition(r) => Hir::repetition(regex_syntax::hir::Repetition {
            sub: Box::new(f(&r.sub)),
            ..r.clone()
        }),
        _ => hir.clone(),
    }
}

/// The pieces of `hir`; `rest`: what follows it in the whole pattern, without groups.
fn piece(hir: &Hir, rest: &Hir, dfas: &mut Vec<DFA>) -> Option<Piece> {
    if !has_groups(hir) {
        return run(hir, next_of(&[], rest), dfas);
    }
    match hir.kind() {
        HirKind::Capture(c) if mark(c.name.as_deref()).is_some() => None,
        HirKind::Capture(c) => {
            let body = if has_groups(&c.sub) {
                piece(&c.sub, rest, dfas)?
            } else {
                group_body(&c.sub, rest, dfas)?
            };
            Some(Piece::Group(c.index as usize, Box::new(body)))
        }
        HirKind::Concat(parts) => seq(parts, rest, dfas, has_groups, piece),
        HirKind::Alternation(branches) => alt(branches.iter().collect(), rest, dfas),
        // `X?` is `X|` (greedy) or `|X` (lazy); `X{1}` is `X`. A group repeated more than
        // once keeps its last match, which a chain does not follow.
        HirKind::Repetition(r) => match (r.min, r.max) {
            (1, Some(1)) => piece(&r.sub, rest, dfas),
            (0, Some(1)) => {
                let none = Hir::empty();
                alt(
                    if r.greedy {
                        vec![&*r.sub, &none]
                    } else {
                        vec![&none, &*r.sub]
                    },
                    rest,
                    dfas,
                )
            }
            _ => None,
        },
        _ => None,
    }
}

/// What a group without groups inside holds. Where it ends matters, so alternatives in it
/// are decided by what follows (`(?P<d_m>0?[1-9]|1[0-2])` on `11/`: the first alternative
/// matches `1` alone, but only the second lets the rest match), not by their own first
/// match; what lies between them is searched as runs.
fn group_body(hir: &Hir, rest: &Hir, dfas: &mut Vec<DFA>) -> Option<Piece> {
    fn is_alt(h: &Hir) -> bool {
        matches!(h.kind(), HirKind::Alternation(_))
    }
    fn decided(h: &Hir, rest: &Hir, dfas: &mut Vec<DFA>) -> Option<Piece> {
        match h.kind() {
            HirKind::Alternation(branches) => alt(branches.iter().collect(), rest, dfas),
            _ => None,
        }
    }
    match hir.kind() {
        HirKind::Alternation(_) => decided(hir, rest, dfas),
        HirKind::Concat(parts) if parts.iter().any(is_alt) => {
            seq(parts, rest, dfas, is_alt, decided)
        }
        _ => run(hir, next_of(&[], rest), dfas),
    }
}

/// A sequence whose `cut` parts become pieces of their own (by `make`, told what follows
/// them, groups left out); the neighbours between them are searched as one run.
fn seq(
    parts: &[Hir],
    rest: &Hir,
    dfas: &mut Vec<DFA>,
    cut: fn(&Hir) -> bool,
    make: fn(&Hir, &Hir, &mut Vec<DFA>) -> Option<Piece>,
) -> Option<Piece> {
    let mut out = Vec::new();
    let mut plain: Vec<Hir> = Vec::new();
    for (k, p) in parts.iter().enumerate() {
        if cut(p) {
            if !plain.is_empty() {
                let next = next_of(&parts[k..], rest);
                out.push(run(&Hir::concat(std::mem::take(&mut plain)), next, dfas)?);
            }
            let mut after: Vec<Hir> = parts[k + 1..].iter().map(strip).collect();
            after.push(rest.clone());
            out.push(make(p, &Hir::concat(after), dfas)?);
        } else {
            plain.push(p.clone());
        }
    }
    if !plain.is_empty() {
        out.push(run(&Hir::concat(plain), next_of(&[], rest), dfas)?);
    }
    Some(Piece::Seq(out))
}

/// Branches in priority order, each but the last with the DFA of itself and `rest`. In
/// that DFA, the conditionals of `rest` on a group the branch always sets take their
/// yes branch, and those on a group only another branch holds their no branch (a group
/// appears once in a pattern, and a chain never repeats one).
fn alt(branches: Vec<&Hir>, rest: &Hir, dfas: &mut Vec<DFA>) -> Option<Piece> {
    let last = branches.len().checked_sub(1)?;
    let held: Vec<Vec<usize>> = branches
        .iter()
        .map(|b| {
            let mut out = Vec::new();
            groups_in(b, false, &mut out);
            out
        })
        .collect();
    let mut out = Vec::new();
    for (i, b) in branches.into_iter().enumerate() {
        let (through, ask) = if i < last {
            let mut set = Vec::new();
            groups_in(b, true, &mut set);
            let mut known: Vec<(usize, bool)> = set.into_iter().map(|g| (g, true)).collect();
            for (j, others) in held.iter().enumerate() {
                if j != i {
                    known.extend(others.iter().map(|&g| (g, false)));
                }
            }
            let decided = resolve(rest, &known);
            let ask = if decided != *rest {
                Ask::First
            } else if refuted_slowly(b) {
                Ask::WhileRefused
            } else {
                Ask::After
            };
            let through = dfa(&Hir::concat(vec![strip(b), decided]), dfas)?;
            (Some(through), ask)
        } else {
            (None, Ask::After)
        };
        out.push(Choice {
            piece: piece(b, rest, dfas)?,
            through,
            ask,
        });
    }
    Some(Piece::Alt(out))
}

/// Does `hir` repeat, without bound, something longer than one byte-step (`(?: key=value)*`)?
/// See [`Ask::WhileRefused`].
fn refuted_slowly(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Repetition(r) => {
            let simple = matches!(r.sub.kind(), HirKind::Class(_) | HirKind::Literal(_));
            (r.max.is_none() && !simple) || refuted_slowly(&r.sub)
        }
        HirKind::Capture(c) => refuted_slowly(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(refuted_slowly),
        _ => false,
    }
}

/// The pattern's own groups in `hir` (not marks, nor what look-aheads hold); with
/// `always`, only those every match of `hir` sets.
fn groups_in(hir: &Hir, always: bool, out: &mut Vec<usize>) {
    match hir.kind() {
        HirKind::Capture(c) => match mark(c.name.as_deref()) {
            None => {
                out.push(c.index as usize);
                groups_in(&c.sub, always, out);
            }
            Some(Mark::Ahead { .. }) => {}
            Some(_) if always => {}
            Some(_) => groups_in(&c.sub, always, out),
        },
        HirKind::Concat(v) => v.iter().for_each(|h| groups_in(h, always, out)),
        HirKind::Alternation(v) if !always => v.iter().for_each(|h| groups_in(h, always, out)),
        HirKind::Repetition(r) if !always || r.min > 0 => groups_in(&r.sub, always, out),
        _ => {}
    }
}

/// `hir` with each conditional on a group of `known` replaced by the branch it takes
/// (`true`: the group took part).
fn resolve(hir: &Hir, known: &[(usize, bool)]) -> Hir {
    let again = |h: &Hir| resolve(h, known);
    let HirKind::Capture(c) = hir.kind() else {
        return rebuilt(hir, again);
    };
    let took = match mark(c.name.as_deref()) {
        Some(Mark::If(g)) => known.iter().find(|(k, _)| *k == g).map(|(_, t)| *t),
        _ => None,
    };
    let branch = took.and_then(|took| match c.sub.kind() {
        HirKind::Alternation(v) => v.iter().find_map(|b| match b.kind() {
            HirKind::Capture(y) => match (mark(y.name.as_deref()), took) {
                (Some(Mark::Yes), true) | (Some(Mark::No), false) => Some(&*y.sub),
                _ => None,
            },
            _ => None,
        }),
        _ => None,
    });
    match branch {
        Some(b) => again(b),
        None => rebuilt(hir, again),
    }
}

fn dfa(hir: &Hir, dfas: &mut Vec<DFA>) -> Option<usize> {
    let dfa = ascii_dfa(std::slice::from_ref(hir), CACHE_CAPACITY)?;
    dfas.push(dfa);
    Some(dfas.len() - 1)
}

/// The most branches (all alternatives' together) of a run whose steps are tried before its
/// DFA: sshd's `(?:(?:error|fatal): (?:PAM: )?)?` has four. Postfix's longer lists of
/// literals cost more in the steps than in the DFA (callgrind: +3.6% a line).
const QUICK_BRANCHES: usize = 4;

/// How many branches the alternatives in `steps` have in all; None where a step repeats or
/// looks around.
fn branch_count(steps: &[Step]) -> Option<usize> {
    steps.iter().try_fold(0, |n, step| match step {
        Step::Alt(branches) => branches
            .iter()
            .try_fold(n + branches.len(), |n, b| Some(n + branch_count(&b.steps)?)),
        Step::Repeat(_) | Step::Ahead { .. } | Step::Cond { .. } => None,
        _ => Some(n),
    })
}

/// A run with no group: compared when it is one literal, else its own lazy DFA. `next`:
/// what may follow it.
fn run(hir: &Hir, next: Follow, dfas: &mut Vec<DFA>) -> Option<Piece> {
    match hir.kind() {
        HirKind::Literal(lit) => return Some(Piece::Literal(lit.0.clone())),
        HirKind::Empty => return Some(Piece::Literal(Box::default())),
        _ => {}
    }
    let mut steps = steps_of(hir);
    if let Some(steps) = steps.as_deref_mut() {
        follow_steps(steps, next);
    }
    let index = if has_marks(hir) {
        steps.as_ref()?;
        None
    } else {
        Some(dfa(hir, dfas)?)
    };
    // Steps the plain first-choice loop cannot take: the DFA's one pass finds the first
    // end sooner than walking them.
    let dfa_first = index.is_some()
        && steps.as_deref().is_some_and(|s| {
            s.iter().any(|s| {
                !matches!(
                    s,
                    Step::Literal(_)
                        | Step::Optional(_)
                        | Step::Class { .. }
                        | Step::Start
                        | Step::End
                )
            })
        });
    let quick = dfa_first
        && steps
            .as_deref()
            .and_then(branch_count)
            .is_some_and(|n| n <= QUICK_BRANCHES);
    Some(Piece::Run {
        steps,
        dfa: index,
        dfa_first,
        quick,
        follow: next,
    })
}

/// The bytes that may come next at a point of a pattern, and whether the text may end
/// there: more than may, never less. A walk passes over an end whose next byte the rest
/// of the pattern cannot start with, without trying the rest there: a greedy `.*` before
/// `>,` tries only the places before a `>`, where trying each end from the line's end
/// back cost a trip through the rest's pieces (most of a dovecot line's cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Follow {
    set: [u64; 4],
    end: bool,
}

impl Follow {
    /// Anything, or the end.
    const ANY: Follow = Follow {
        set: [u64::MAX; 4],
        end: true,
    };
    const NONE: Follow = Follow {
        set: [0; 4],
        end: false,
    };
    /// The end only.
    const END: Follow = Follow {
        set: [0; 4],
        end: true,
    };

    fn bytes(set: [u64; 4]) -> Self {
        Follow { set, end: false }
    }

    fn byte(b: u8) -> Self {
        let mut set = [0; 4];
        add_byte(&mut set, b);
        Self::bytes(set)
    }

    fn union(self, other: Self) -> Self {
        let mut set = self.set;
        for (s, o) in set.iter_mut().zip(other.set) {
            *s |= o;
        }
        Follow {
            set,
            end: self.end || other.end,
        }
    }

    /// The one byte that may follow, where only one may (not the end either).
    fn only(&self) -> Option<u8> {
        let ones: u32 = self.set.iter().map(|w| w.count_ones()).sum();
        if self.end || ones != 1 {
            return None;
        }
        let (word, bits) = self.set.iter().enumerate().find(|(_, w)| **w != 0)?;
        u8::try_from(word * 64 + bits.trailing_zeros() as usize).ok()
    }

    /// May what follows start at `at` of `text`?
    fn allows(&self, text: &[u8], at: usize) -> bool {
        match text.get(at) {
            Some(&b) => has_byte(&self.set, b),
            None => self.end,
        }
    }
}

/// What may start `hir` followed by what `next` says. Look-arounds take nothing and are
/// passed over (more, never less).
fn first(hir: &Hir, next: Follow) -> Follow {
    use regex_syntax::hir::{Class, Look};
    match hir.kind() {
        // Nothing may follow the text's end; a line's end may be followed by its newline.
        HirKind::Look(Look::End) => Follow::END,
        HirKind::Look(Look::EndLF) => Follow::byte(b'\n').union(Follow::END),
        HirKind::Look(Look::EndCRLF) => Follow::byte(b'\n')
            .union(Follow::byte(b'\r'))
            .union(Follow::END),
        HirKind::Empty | HirKind::Look(_) => next,
        HirKind::Literal(lit) => lit.0.first().map_or(next, |&b| Follow::byte(b)),
        HirKind::Class(Class::Bytes(c)) => Follow::bytes(byte_set(c)),
        // Its ASCII part byte by byte; any other character starts with a byte of 0x80 up.
        HirKind::Class(Class::Unicode(c)) => {
            let mut set = [0u64; 4];
            for r in c.iter() {
                let ascii = u32::from(r.start())..=u32::from(r.end()).min(0x7F);
                for b in ascii.filter_map(|b| u8::try_from(b).ok()) {
                    add_byte(&mut set, b);
                }
                if u32::from(r.end()) > 0x7F {
                    set[2] = u64::MAX;
                    set[3] = u64::MAX;
                }
            }
            Follow::bytes(set)
        }
        HirKind::Capture(c) if matches!(mark(c.name.as_deref()), Some(Mark::Ahead { .. })) => next,
        HirKind::Capture(c) => first(&c.sub, next),
        HirKind::Repetition(r) if r.max == Some(0) => next,
        HirKind::Repetition(r) => {
            let f = first(&r.sub, next);
            if r.min == 0 {
                f.union(next)
            } else {
                f
            }
        }
        HirKind::Concat(parts) => parts.iter().rev().fold(next, |f, h| first(h, f)),
        HirKind::Alternation(branches) => branches
            .iter()
            .fold(Follow::NONE, |acc, b| acc.union(first(b, next))),
    }
}

/// What may follow `parts` and then `rest`, the end of the pattern (after which anything
/// may come: a match ends where it ends).
fn next_of(parts: &[Hir], rest: &Hir) -> Follow {
    parts
        .iter()
        .rev()
        .fold(first(rest, Follow::ANY), |f, h| first(h, f))
}

/// Tells each class and repetition in `steps` what may follow it, `next` being what
/// follows the steps; returns what may start them.
fn follow_steps(steps: &mut [Step], mut next: Follow) -> Follow {
    // The literal right after the step at hand, where one is.
    let mut literal: Option<Box<[u8]>> = None;
    for step in steps.iter_mut().rev() {
        let this = match step {
            Step::Literal(b) => Some(b.clone()),
            _ => None,
        };
        let after = std::mem::replace(&mut literal, this);
        next = match step {
            Step::Literal(b) => b.first().map_or(next, |&c| Follow::byte(c)),
            Step::Optional(b) => b.first().map_or(next, |&c| Follow::byte(c)).union(next),
            Step::Class {
                set,
                min,
                max,
                greedy,
                follow,
                apart,
                before,
                ..
            } => {
                *follow = next;
                let disjoint = set.iter().zip(next.set).all(|(s, f)| s & f == 0);
                *apart = match after {
                    _ if disjoint => Some(0),
                    Some(lit) => lit
                        .iter()
                        .position(|&b| !has_byte(set, b))
                        .and_then(|k| u32::try_from(k).ok()),
                    None => None,
                };
                // Where the class holds no byte that may follow, its greedy run has one
                // end (`apart`), found without looking for that byte.
                *before = next
                    .only()
                    .filter(|&b| *max > *min && (!*greedy || has_byte(set, b)));
                let here = Follow::bytes(*set);
                if *min == 0 {
                    here.union(next)
                } else {
                    here
                }
            }
            Step::Start | Step::End | Step::Boundary { .. } => next,
            // A look-ahead's own steps end where it is decided: anything may follow them.
            Step::Ahead { steps, .. } => {
                follow_steps(steps, Follow::ANY);
                next
            }
            Step::Alt(branches) => branches.iter_mut().fold(Follow::NONE, |acc, b| {
                b.lead = follow_steps(&mut b.steps, next);
                acc.union(b.lead)
            }),
            Step::Cond { yes, no, .. } => follow_steps(yes, next).union(follow_steps(no, next)),
            Step::Repeat(rep) => {
                rep.follow = next;
                // The body takes a byte each time: it starts with what it alone starts
                // with, and is followed by itself again or by what follows.
                let starts = follow_steps(&mut rep.body, Follow::NONE);
                follow_steps(&mut rep.body, starts.union(next));
                if rep.min == 0 {
                    starts.union(next)
                } else {
                    starts
                }
            }
        };
    }
    next
}

/// One step of a run that needs no going back: the usual shape of a log pattern's fixed
/// text (` from `, `\S+`, `\d{1,3}`, `(?: ssh2)?`).
#[derive(Debug, Clone)]
enum Step {
    Literal(Box<[u8]>),
    /// A literal that is taken when it is there (a greedy `(?:...)?`).
    Optional(Box<[u8]>),
    /// A byte class repeated `min..=max` times; `follow`: what may come after it;
    /// `apart`: `Some(k)` where the run has one end that can go on, `k` bytes before the
    /// place a greedy run of it stops at: 0 where none of its bytes may follow it;
    /// else the first byte outside it in the literal that follows, `k` bytes in
    /// (`\S+\)\. From `: that literal's space is the first one after the run, so the
    /// run ends two bytes before it). Not where the run stops at `max` (unless `k` is 0).
    Class {
        set: [u64; 4],
        min: u32,
        max: u32,
        greedy: bool,
        follow: Follow,
        apart: Option<u32>,
        /// Of a class repeated: the one byte that may follow it, where only one may
        /// (`.*>`, `.*? `) and, when greedy, the class holds it: its ends are the places
        /// before that byte, found from the back when greedy, from the front when lazy.
        before: Option<u8>,
        /// The bytes that end a run of it, where they are few.
        stops: Stops,
    },
    /// `^` or `$` (the whole text's, not a line's).
    Start,
    End,
    /// Alternatives, each steps of its own, in priority order (`(?:[^"]+|.*?)`; a greedy
    /// `(?:...)?` is its body or nothing, a lazy one the other way round).
    Alt(Box<[Branch]>),
    /// An ASCII word boundary (`\b`), or its negation (`\B`).
    Boundary {
        negate: bool,
    },
    /// A look-ahead: the steps must (or, negated, must not) match here; nothing is taken.
    Ahead {
        negate: bool,
        steps: Box<[Step]>,
    },
    /// A conditional: `yes` when the group with this index took part, else `no`.
    Cond {
        group: usize,
        yes: Box<[Step]>,
        no: Box<[Step]>,
    },
    /// Steps repeated `min..=max` times (each time taking at least one byte).
    Repeat(Repeat),
}

/// One alternative's steps, and what a way through it (with what follows it) may start
/// with: a branch the next byte rules out is passed over without being tried (`error: `
/// before `Failed`, `::ffff:` before `198.18.0.7`).
#[derive(Debug, Clone)]
struct Branch {
    steps: Box<[Step]>,
    lead: Follow,
}

impl Branch {
    /// Before [`follow_steps`] says better, anything may start it.
    fn new(steps: Box<[Step]>) -> Self {
        Branch {
            steps,
            lead: Follow::ANY,
        }
    }
}

/// Steps repeated `min..=max` times, each time taking at least one byte; `follow`: what
/// may come after them.
#[derive(Debug, Clone)]
struct Repeat {
    body: Box<[Step]>,
    min: u32,
    max: u32,
    greedy: bool,
    follow: Follow,
}

/// The fewest bytes `steps` take.
fn min_len(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Literal(b) => b.len(),
            Step::Class { min, .. } => *min as usize,
            Step::Alt(branches) => branches
                .iter()
                .map(|b| min_len(&b.steps))
                .min()
                .unwrap_or(0),
            Step::Cond { yes, no, .. } => min_len(yes).min(min_len(no)),
            Step::Repeat(r) => min_len(&r.body).saturating_mul(r.min as usize),
            _ => 0,
        })
        .fold(0, usize::saturating_add)
}

/// `hir` as steps, if it is a sequence of what [`Step`] knows.
fn simple_steps(hir: &Hir, out: &mut Vec<Step>) -> bool {
    use regex_syntax::hir::{Class, Look};
    let class_set = |c: &Class| match c {
        Class::Bytes(b) => Some(byte_set(b)),
        Class::Unicode(_) => None,
    };
    match hir.kind() {
        HirKind::Empty => true,
        HirKind::Literal(lit) => {
            out.push(Step::Literal(lit.0.clone()));
            true
        }
        HirKind::Class(c) => class_set(c).is_some_and(|set| {
            out.push(Step::Class {
                set,
                min: 1,
                max: 1,
                greedy: true,
                follow: Follow::ANY,
                apart: None,
                before: None,
                stops: Stops::of(&set),
            });
            true
        }),
        HirKind::Look(Look::Start) => {
            out.push(Step::Start);
            true
        }
        HirKind::Look(Look::End) => {
            out.push(Step::End);
            true
        }
        HirKind::Concat(parts) => parts.iter().all(|p| simple_steps(p, out)),
        HirKind::Repetition(r) => {
            // A class repeated; `a{1,2}`, `0*`: one byte repeated is a class of one.
            let set = match r.sub.kind() {
                HirKind::Class(c) => class_set(c),
                HirKind::Literal(lit) if lit.0.len() == 1 => {
                    let mut set = [0u64; 4];
                    add_byte(&mut set, lit.0[0]);
                    Some(set)
                }
                _ => None,
            };
            if let Some(set) = set {
                out.push(Step::Class {
                    set,
                    min: r.min,
                    max: r.max.unwrap_or(u32::MAX),
                    greedy: r.greedy,
                    follow: Follow::ANY,
                    apart: None,
                    before: None,
                    stops: Stops::of(&set),
                });
                return true;
            }
            repeated_steps(r, out)
        }
        HirKind::Look(Look::WordAscii | Look::WordAsciiNegate) => {
            out.push(Step::Boundary {
                negate: matches!(hir.kind(), HirKind::Look(Look::WordAsciiNegate)),
            });
            true
        }
        HirKind::Capture(c) => match mark(c.name.as_deref()) {
            Some(Mark::Ahead { negate }) => steps_of(&c.sub).is_some_and(|steps| {
                out.push(Step::Ahead { negate, steps });
                true
            }),
            Some(Mark::If(group)) => {
                let HirKind::Alternation(branches) = c.sub.kind() else {
                    return false;
                };
                let branch = |want: Mark| {
                    branches.iter().find_map(|b| match b.kind() {
                        HirKind::Capture(c) if mark(c.name.as_deref()) == Some(want) => {
                            steps_of(&c.sub)
                        }
                        _ => None,
                    })
                };
                match (branches.len(), branch(Mark::Yes), branch(Mark::No)) {
                    (2, Some(yes), Some(no)) => {
                        out.push(Step::Cond { group, yes, no });
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        },
        HirKind::Alternation(branches) => {
            let Some(branches) = branches
                .iter()
                .map(|b| steps_of(b).map(Branch::new))
                .collect::<Option<Box<_>>>()
            else {
                return false;
            };
            out.push(Step::Alt(branches));
            true
        }
        _ => false,
    }
}

/// A repetition of what is not one byte: a literal when optional, a few copies in a row,
/// an optional part, or steps repeated.
fn repeated_steps(r: &regex_syntax::hir::Repetition, out: &mut Vec<Step>) -> bool {
    match r.sub.kind() {
        HirKind::Literal(lit) if r.min == 0 && r.max == Some(1) && r.greedy => {
            out.push(Step::Optional(lit.0.clone()));
            true
        }
        // `(?:\d{1,3}\.){3}`: a few copies in a row.
        _ if Some(r.min) == r.max && r.min <= 4 => (0..r.min).all(|_| simple_steps(&r.sub, out)),
        _ if r.min == 0 && r.max == Some(1) => {
            let (Some(body), none) = (steps_of(&r.sub), Box::default()) else {
                return false;
            };
            let (body, none) = (Branch::new(body), Branch::new(none));
            out.push(Step::Alt(if r.greedy {
                Box::new([body, none])
            } else {
                Box::new([none, body])
            }));
            true
        }
        // `(?:(?! from ).)*?`: steps repeated, each time taking something.
        _ => match steps_of(&r.sub) {
            Some(body) if min_len(&body) > 0 => {
                out.push(Step::Repeat(Repeat {
                    body,
                    min: r.min,
                    max: r.max.unwrap_or(u32::MAX),
                    greedy: r.greedy,
                    follow: Follow::ANY,
                }));
                true
            }
            _ => false,
        },
    }
}

fn steps_of(hir: &Hir) -> Option<Box<[Step]>> {
    let mut out = Vec::new();
    simple_steps(hir, &mut out).then(|| out.into_boxed_slice())
}

/// A set of bytes is a bit for each byte in four words.
pub(super) fn add_byte(set: &mut [u64; 4], b: u8) {
    set[usize::from(b >> 6)] |= 1 << (b & 63);
}

pub(super) fn has_byte(set: &[u64; 4], b: u8) -> bool {
    set[usize::from(b >> 6)] & (1 << (b & 63)) != 0
}

/// The bytes of a byte class.
fn byte_set(class: &regex_syntax::hir::ClassBytes) -> [u64; 4] {
    let mut set = [0u64; 4];
    for r in class.iter() {
        for b in r.start()..=r.end() {
            add_byte(&mut set, b);
        }
    }
    set
}

/// The bytes outside a class, where there are at most three (`.`: `\n`; `[^)]`: `)`): a
/// run of the class then ends at the first of them, found by memchr, where a byte at a
/// time cost a dovecot line more than its DFA passes (`.*` to the line's end, twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stops {
    One(u8),
    Two(u8, u8),
    Three(u8, u8, u8),
    /// More (`\S`), or none at all: the bytes are looked up one at a time.
    Many,
}

impl Stops {
    fn of(set: &[u64; 4]) -> Self {
        let mut out = (0..=255u8).filter(|&b| !has_byte(set, b));
        match (out.next(), out.next(), out.next(), out.next()) {
            (Some(a), None, _, _) => Stops::One(a),
            (Some(a), Some(b), None, _) => Stops::Two(a, b),
            (Some(a), Some(b), Some(c), None) => Stops::Three(a, b, c),
            _ => Stops::Many,
        }
    }
}

/// How many bytes from `at` are in `set` (ended by `stops`), counting at most `limit`.
#[inline]
fn class_run(set: &[u64; 4], stops: Stops, text: &[u8], at: usize, limit: u32) -> usize {
    let t = text.get(at..).unwrap_or_default();
    let t = t
        .get(..usize::try_from(limit).unwrap_or(usize::MAX))
        .unwrap_or(t);
    // memchr's call costs more than a short scan.
    if stops != Stops::Many && t.len() >= 16 {
        return stops_run(stops, t);
    }
    t.iter().position(|&b| !has_byte(set, b)).unwrap_or(t.len())
}

/// How many bytes `t` has before its first of `stops` (not `Many`).
#[inline(never)]
fn stops_run(stops: Stops, t: &[u8]) -> usize {
    match stops {
        Stops::One(a) => memchr::memchr(a, t),
        Stops::Two(a, b) => memchr::memchr2(a, b, t),
        Stops::Three(a, b, c) => memchr::memchr3(a, b, c, t),
        Stops::Many => None,
    }
    .unwrap_or(t.len())
}

/// What the first-choice loop found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    /// The first end [`walk`] hands on.
    End(usize),
    /// No way through: a first choice failed where no earlier step had another way.
    No,
    /// A first choice failed after a step that had another way, or the steps need going
    /// back (repetitions, look-arounds, conditionals): the walk or the DFA must decide.
    Unsure,
}

/// Where `steps` end from `at` taking the first choice at each (as many bytes as a greedy
/// class allows, as few as a lazy one needs; an optional literal when it is there; the
/// first branch that gets through): the first end [`walk`] hands on.
///
/// A failure is final (`No`) while no step before it had another way: a literal, a greedy
/// class that nothing after it could follow inside its run (`\d+` before `.`), an optional
/// literal that was not there, the last branch. Then the run has no way at all (an IPv4
/// address's run on an IPv6 address), and an alternative whose branch fails so tries its
/// next branch, as the backtracker would (in a run holding a look-around, which has no DFA).
/// `chose`: whether a step before had another way; set when one here has.
fn first_end(steps: &[Step], text: &[u8], mut at: usize, chose: &mut bool) -> First {
    let fail = |chose: bool| if chose { First::Unsure } else { First::No };
    for step in steps {
        match step {
            Step::Literal(bytes) => {
                if !text.get(at..).is_some_and(|t| t.starts_with(bytes)) {
                    return fail(*chose);
                }
                at += bytes.len();
            }
            Step::Optional(bytes) => {
                if text.get(at..).is_some_and(|t| t.starts_with(bytes)) {
                    at += bytes.len();
                    *chose = true;
                }
            }
            Step::Class {
                set,
                min,
                max,
                greedy,
                before: Some(b),
                stops,
                ..
            } => {
                // The run's first end that what follows can start at: the last `b` within
                // its most bytes when greedy, the first from its fewest when lazy.
                let lo = at + *min as usize;
                let hi = (at + class_run(set, *stops, text, at, *max) + 1).min(text.len());
                let ends = text.get(lo..hi).unwrap_or_default();
                let Some(i) = byte_place(*b, *greedy, ends) else {
                    return fail(*chose);
                };
                let others = if *greedy { &ends[..i] } else { &ends[i + 1..] };
                *chose |= byte_place(*b, *greedy, others).is_some();
                at = lo + i;
            }
            Step::Class {
                set,
                min,
                max,
                greedy,
                apart,
                stops,
                ..
            } => {
                let mut n = class_run(set, *stops, text, at, if *greedy { *max } else { *min });
                if n < *min as usize {
                    return fail(*chose);
                }
                // Ends inside a greedy run are followed by the class's own bytes: none
                // can go on when what follows never starts with one of them. Where what
                // follows starts with some, only the end `k` bytes back can.
                match apart {
                    Some(0) if *greedy => {}
                    Some(k) if *greedy && n < *max as usize => {
                        n = match n.checked_sub(*k as usize) {
                            Some(n) if n >= *min as usize => n,
                            _ => return fail(*chose),
                        };
                    }
                    _ => *chose |= n > *min as usize,
                }
                *chose |= !*greedy && class_run(set, *stops, text, at + n, 1) == 1;
                at += n;
            }
            Step::Alt(branches) => {
                let mut found = None;
                for (i, branch) in branches.iter().enumerate() {
                    if !branch.lead.allows(text, at) {
                        continue;
                    }
                    // A branch's own choices count only when it is the one taken, and a
                    // later branch is another way only where the next byte allows it.
                    let mut inner = false;
                    match first_end(&branch.steps, text, at, &mut inner) {
                        First::End(e) => {
                            found = Some(e);
                            *chose |=
                                inner || branches[i + 1..].iter().any(|b| b.lead.allows(text, at));
                            break;
                        }
                        First::No => continue,
                        First::Unsure => return First::Unsure,
                    }
                }
                match found {
                    Some(e) => at = e,
                    None => return fail(*chose),
                }
            }
            Step::Boundary { negate } => {
                let word = |i: Option<usize>| {
                    i.and_then(|i| text.get(i))
                        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                };
                if (word(at.checked_sub(1)) != word(Some(at))) == *negate {
                    return fail(*chose);
                }
            }
            Step::Start if at == 0 => {}
            Step::End if at == text.len() => {}
            Step::Start | Step::End => return fail(*chose),
            Step::Ahead { .. } | Step::Cond { .. } | Step::Repeat(_) => return First::Unsure,
        }
    }
    First::End(at)
}

/// The ends of `steps` from `at`, in the backtracker's order (a greedy class from the
/// most bytes down, a lazy one from the fewest up; an optional literal taken first), each
/// handed to `then` until one gets through.
fn walk(steps: &[Step], w: &mut Walker<'_>, at: usize, then: Then<'_>) -> Way {
    if w.budget == 0 {
        return Way::Unsure;
    }
    w.budget -= 1;
    let Some((step, rest)) = steps.split_first() else {
        return then(w, at);
    };
    let text = w.text;
    match step {
        Step::Literal(bytes) => match text.get(at..) {
            Some(t) if t.starts_with(bytes) => walk(rest, w, at + bytes.len(), then),
            _ => Way::No,
        },
        Step::Optional(bytes) => {
            if text.get(at..).is_some_and(|t| t.starts_with(bytes)) {
                let way = walk(rest, w, at + bytes.len(), then);
                if way != Way::No {
                    return way;
                }
            }
            walk(rest, w, at, then)
        }
        Step::Class {
            set,
            min,
            max,
            greedy,
            follow,
            before,
            apart,
            stops,
            ..
        } => {
            let run = class_run(set, *stops, text, at, *max);
            let min = usize::try_from(*min).unwrap_or(usize::MAX);
            if run < min {
                return Way::No;
            }
            // Only one byte may follow (`.*>`, a user before dovecot's `>,`): the places
            // before it, found by memchr instead of asking at each end.
            if let Some(b) = *before {
                let hi = (at + run + 1).min(text.len());
                return walk_before(b, *greedy, rest, w, at + min, hi, then);
            }
            // Nothing that may follow a greedy run is in its class: only its whole run can
            // be followed (`\d+` before `.`).
            if *greedy && *apart == Some(0) {
                return match follow.allows(text, at + run) {
                    true => walk(rest, w, at + run, then),
                    false => Way::No,
                };
            }
            for k in 0..=run - min {
                let n = if *greedy { run - k } else { min + k };
                if !follow.allows(text, at + n) {
                    continue;
                }
                let way = walk(rest, w, at + n, then);
                if way != Way::No {
                    return way;
                }
            }
            Way::No
        }
        Step::Alt(branches) => {
            for branch in branches.iter() {
                let way = walk(&branch.steps, w, at, &mut |w, e| walk(rest, w, e, then));
                if way != Way::No {
                    return way;
                }
            }
            Way::No
        }
        Step::Boundary { negate } => {
            let word = |i: Option<usize>| {
                i.and_then(|i| text.get(i))
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            };
            if (word(at.checked_sub(1)) != word(Some(at))) != *negate {
                walk(rest, w, at, then)
            } else {
                Way::No
            }
        }
        Step::Ahead { negate, steps } => {
            match (walk(steps, w, at, &mut |_, e| Way::Done(e)), negate) {
                (Way::Done(_), false) | (Way::No, true) => walk(rest, w, at, then),
                (Way::Done(_), true) | (Way::No, false) => Way::No,
                (Way::Unsure, _) => Way::Unsure,
            }
        }
        Step::Cond { group, yes, no } => {
            let Some(took_part) = w.slots.get(*group).map(Option::is_some) else {
                return Way::Unsure;
            };
            let branch = if took_part { yes } else { no };
            walk(branch, w, at, &mut |w, e| walk(rest, w, e, then))
        }
        Step::Repeat(rep) => repeat(rep, 0, rest, w, at, then),
        Step::Start if at == 0 => walk(rest, w, at, then),
        Step::End if at == text.len() => walk(rest, w, at, then),
        Step::Start | Step::End => Way::No,
    }
}

/// The walk of `rest` from each place in `lo..hi` where byte `b` is, from the back when
/// `greedy`, else from the front: a run's ends where only `b` may follow it. Its own
/// function, so that `walk`'s frame, paid at every step of every walk, stays as small as
/// it was.
#[inline(never)]
fn walk_before(
    b: u8,
    greedy: bool,
    rest: &[Step],
    w: &mut Walker<'_>,
    mut lo: usize,
    mut hi: usize,
    then: Then<'_>,
) -> Way {
    while lo < hi {
        let Some(i) = w.text.get(lo..hi).and_then(|t| byte_place(b, greedy, t)) else {
            break;
        };
        let way = walk(rest, w, lo + i, then);
        if way != Way::No {
            return way;
        }
        if greedy {
            hi = lo + i;
        } else {
            lo += i + 1;
        }
    }
    Way::No
}

/// The place of `b` in `t` that a run's ends are tried at first: the last when `greedy`,
/// else the first.
fn byte_place(b: u8, greedy: bool, t: &[u8]) -> Option<usize> {
    match (greedy, t.len()) {
        // memrchr's call costs more than a short scan (nginx's quotes lie close).
        (true, 0..16) => t.iter().rposition(|&c| c == b),
        (true, _) => memchr::memrchr(b, t),
        (false, _) => memchr::memchr(b, t),
    }
}

/// Times a repeated body of more than one byte may recurse before the walk hands the line
/// back: each time is a few frames of stack.
const REPEAT_DEPTH: u32 = 256;

/// Does `body` take exactly one byte, one way (`(?! from ).`)? Then repeating it has one
/// way per count, and the counts are tried in a loop instead of recursing a byte at a time.
fn one_byte(body: &[Step]) -> bool {
    let mut taking = 0;
    for step in body {
        match step {
            Step::Class { min: 1, max: 1, .. } => taking += 1,
            Step::Literal(b) if b.len() == 1 => taking += 1,
            Step::Ahead { .. } | Step::Boundary { .. } | Step::Start | Step::End => {}
            _ => return false,
        }
    }
    taking == 1
}

/// `rep`'s body (one byte, see [`one_byte`]) repeated then `rest`, counts in the
/// backtracker's order: the most first when greedy, the fewest first when lazy.
fn repeat_bytes(rep: &Repeat, rest: &[Step], w: &mut Walker<'_>, at: usize, then: Then<'_>) -> Way {
    let min = rep.min as usize;
    let max = usize::try_from(rep.max).unwrap_or(usize::MAX);
    // Can the body be taken once more after `n` times?
    let again =
        |w: &mut Walker<'_>, n: usize| match walk(&rep.body, w, at + n, &mut |_, e| Way::Done(e)) {
            Way::Done(_) => Ok(true),
            Way::No => Ok(false),
            Way::Unsure => Err(Way::Unsure),
        };
    if rep.greedy {
        let mut n = 0;
        while n < max {
            match again(w, n) {
                Ok(true) => n += 1,
                Ok(false) => break,
                Err(way) => return way,
            }
        }
        while n >= min {
            let way = after_repeat(rep, rest, w, at + n, then);
            if way != Way::No || n == 0 {
                return way;
            }
            n -= 1;
        }
        return Way::No;
    }
    let mut n = 0;
    loop {
        if n >= min {
            let way = after_repeat(rep, rest, w, at + n, then);
            if way != Way::No {
                return way;
            }
        }
        if n >= max {
            return Way::No;
        }
        match again(w, n) {
            Ok(true) => n += 1,
            Ok(false) => return Way::No,
            Err(way) => return way,
        }
    }
}

/// `rest` after `rep` ended at `at`, where what follows `rep` can start.
fn after_repeat(rep: &Repeat, rest: &[Step], w: &mut Walker<'_>, at: usize, then: Then<'_>) -> Way {
    if rep.follow.allows(w.text, at) {
        walk(rest, w, at, then)
    } else {
        Way::No
    }
}

/// `rep`'s body repeated (`done` times so far) then `rest`, in the backtracker's order:
/// one more time first when greedy, stopping first when lazy.
fn repeat(
    rep: &Repeat,
    done: u32,
    rest: &[Step],
    w: &mut Walker<'_>,
    at: usize,
    then: Then<'_>,
) -> Way {
    if done == 0 && one_byte(&rep.body) {
        return repeat_bytes(rep, rest, w, at, then);
    }
    if done >= REPEAT_DEPTH {
        return Way::Unsure;
    }
    if done >= rep.min && !rep.greedy {
        match after_repeat(rep, rest, w, at, then) {
            Way::No => {}
            way => return way,
        }
    }
    if done < rep.max {
        let way = walk(&rep.body, w, at, &mut |w, e| {
            if e == at {
                Way::No
            } else {
                repeat(rep, done + 1, rest, w, e, then)
            }
        });
        if way != Way::No {
            return way;
        }
    }
    if done >= rep.min && rep.greedy {
        return after_repeat(rep, rest, w, at, then);
    }
    Way::No
}

/// Every text of up to `len` bytes from `alphabet` (the exhaustive tests' inputs).
#[cfg(test)]
pub(super) fn every_text(alphabet: &[u8], len: usize) -> Vec<String> {
    let mut texts = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..len {
        last = last
            .iter()
            .flat_map(|t| {
                alphabet
                    .iter()
                    .map(move |c| format!("{t}{}", char::from(*c)))
            })
            .collect();
        texts.extend(last.iter().cloned());
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans handed back to a pool are the memory its next search fills, not a new list.
    #[test]
    fn spans_given_back_are_filled_by_the_next_search() {
        let chain = Chain::new(r"^a(b+)c").unwrap();
        let pool = CachePool::default();
        let search = |text: &[u8]| pool.with(&chain, |c| chain.search(text, 0, c));
        let spans = search(b"abbc").unwrap().unwrap();
        assert_eq!(spans, [Some((0, 4)), Some((1, 3))]);
        let memory = spans.as_ptr();
        pool.give_back(spans);
        let again = search(b"abc").unwrap().unwrap();
        assert_eq!(again, [Some((0, 3)), Some((1, 2))]);
        assert_eq!(again.as_ptr(), memory);
        // Not given back: the next search has its own.
        let other = search(b"abc").unwrap().unwrap();
        assert_ne!(other.as_ptr(), again.as_ptr());
    }

    /// The literal a chain looks for before it walks is one every match holds: the
    /// longest on the pattern's spine, never one in an alternative, an optional part or a
    /// look-ahead, nor the one the pattern starts with (its walk refuses a line without it
    /// at once). A text without it is refused unwalked; one with it is walked.
    #[test]
    fn a_chain_looks_for_the_literal_every_match_holds_before_it_walks() {
        let needs =
            |p: &str| needed_literal(&ascii_hir(p).unwrap()).map(|l| String::from_utf8(l).unwrap());
        assert_eq!(
            needs(
                r"^(?:\[\d+\] )?\S+ SA: Action: (?:x|flagged as spam but accepted) for (?P<h>\S+)$"
            )
            .as_deref(),
            Some(" SA: Action: ")
        );
        assert_eq!(
            needs(r"^\S+ (?:rejected by local_scan\(\): )?from (?P<h>\S+)(?: port \d+)?$")
                .as_deref(),
            Some("from ")
        );
        assert_eq!(
            needs(r"^\S+ (?:connection from)+ (?P<h>\S+)$").as_deref(),
            Some("connection from")
        );
        // The literal a pattern starts with is not the one looked for: the walk checks it
        // first. The pattern starts with it, even in a group; never in a look-ahead.
        assert_eq!(
            needs(r"^Failed password for \S+ from (?P<h>\S+)$").as_deref(),
            Some(" from ")
        );
        assert_eq!(
            needs(r"^(?P<u>Failed) password for \S+ from (?P<h>\S+)$").as_deref(),
            Some(" password for ")
        );
        assert_eq!(needs(r"^Failed (?:a|b)"), None);
        let starts = |p: &str| leading_literal(&ascii_hir(p).unwrap()).map(<[u8]>::to_vec);
        assert_eq!(starts(r"^(?P<u>Failed) x").as_deref(), Some(&b"Failed"[..]));
        assert_eq!(starts(r"^\bUser x").as_deref(), Some(&b"User x"[..]));
        assert_eq!(starts(r"^(?P<__mark_neg_0>Failed) x"), None);
        assert_eq!(starts(r"^(?:Failed)? x"), None);
        assert_eq!(needs(r"^\S+ (?:ab|cd) (?P<h>\S+)$"), None);
        // A look-ahead's text is not held by a match (fail2ban's marks for `(?!...)`).
        let ahead = r"^\S+ (?P<__mark_neg_0>not this one at all) x (?P<h>\S+)$";
        assert_eq!(needs(ahead).as_deref(), Some(" x "));

        let chain = Chain::new(r"^(?:\[\d+\] )?\S+ rejected RCPT (?P<h>\S+): .*dnsbl.*$").unwrap();
        let mut cache = chain.cache();
        let line = b"[12] 1Unmew rejected RCPT a@b.example: listed in dnsbl.example";
        assert!(chain.may_match(line, 0, &mut cache));
        assert!(chain.search(line, 0, &mut cache).unwrap().is_some());
        let other = b"[12] 1Unmew rejected after DATA: This message contains a virus";
        assert!(!chain.may_match(other, 0, &mut cache));
        assert!(!chain.may_match(line, 12, &mut cache));
        assert!(chain.may_match(line, 11, &mut cache));
        assert!(!chain.may_match(line, line.len() + 1, &mut cache));
        // Where every line holds it, it is soon no longer looked for (one line in 64
        // still looks), and looked for again once lines lack it.
        let mut fresh = chain.cache();
        let refused = |cache: &mut ChainCache, n| {
            (0..n).filter(|_| !chain.may_match(other, 0, cache)).count()
        };
        for _ in 0..200 {
            assert!(chain.may_match(line, 0, &mut fresh));
        }
        let lacking = refused(&mut fresh, 128);
        assert!((1..=3).contains(&lacking), "{lacking} of 128 refused");
        // Once it was missing in half the lines it was looked for in (a look in 64 lines
        // while given up), it is looked for on every line again.
        let lacking = refused(&mut fresh, 1500);
        assert!(lacking < 1000, "{lacking} of 1500 refused");
        let lacking = refused(&mut fresh, 500);
        assert!(lacking == 500, "{lacking} of 500 refused");
    }

    /// The backtracker's groups for `pattern` anchored at the start of `text`.
    fn backtracked(pattern: &str, text: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let bt = ascii_backtracker(pattern).expect("the pattern compiles");
        let mut cache = bt.create_cache();
        let mut caps = bt.create_captures();
        let input = Input::new(text).anchored(Anchored::Yes);
        bt.try_search(&mut cache, &input, &mut caps).unwrap();
        caps.is_match().then(|| {
            (0..caps.group_len())
                .map(|i| caps.get_group(i).map(|s| (s.start, s.end)))
                .collect()
        })
    }

    /// The chain agrees with the backtracker wherever it answers, and answers on `must`:
    /// the same groups where there is a match, "no match" only where there is none.
    fn agree(pattern: &str, texts: &[&str], must: &[&str]) {
        let chain = Chain::new(pattern).expect("a chain");
        for text in texts.iter().chain(must) {
            // A fresh cache: the straight pass is tried on every text (a cache gives it up
            // where it seldom settles).
            let mut cache = chain.cache();
            let got = chain.search(text.as_bytes(), 0, &mut cache);
            match (backtracked(pattern, text), got) {
                (Some(want), Ok(Some(got))) => assert_eq!(got, want, "{pattern} on {text:?}"),
                (None, Ok(None)) => {}
                (want, Ok(got)) => panic!("{pattern} on {text:?}: {got:?}, not {want:?}"),
                (_, Err(CannotTell)) => {
                    assert!(!must.contains(text), "{pattern} gave up on {text:?}")
                }
            }
        }
    }

    /// What may follow `$` is the end alone: a hostname's run before `\s*$` hands on only
    /// its last end. And a run ending in a literal the line holds once has that one end:
    /// where the rest fails after it, the run's other ways (pam's repeated fields, cut
    /// every way) are not walked to find none. Both with the backtracker's groups.
    #[test]
    fn a_run_is_walked_only_to_the_ends_what_follows_it_allows() {
        let pattern = r"^x(?:\s+(?:a|e?b)=\S*){0,3} t=\S* r=(?P<u>\S*|\S.*?) h=(?:(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<dns>[\w\-.^_]*\w))(?:\s+u=(?P<user>\S*))?\s*$";
        let lines = [
            "x a= b=0 eb=0 t=y r=z h=198.18.0.151 h=198.18.0.1",
            "x a= b=0 eb=0 t=y r= h=198.18.0.2 u=z h=198.18.0.152",
            "x a= b=0 t= r= h=host.example.org",
            "x a= b=0 t= r=q r= h=198.18.0.3 z",
        ];
        agree(pattern, &[], &lines);
        let chain = Chain::new(pattern).expect("a chain");
        let mut cache = chain.cache();
        // Before: 38 steps (each end inside the first address, tried before `$`) and 73
        // (every way through the fields, to find no other end of `r=`).
        for line in &lines[..2] {
            chain.search(line.as_bytes(), 0, &mut cache).unwrap();
            assert!(cache.walked <= 30, "{line}: {} steps", cache.walked);
        }
    }

    /// pam's `ruser=` read as `\S*` and then as `\S.*?` reaches the address at the same
    /// place twice: the second time its alternative, whose every branch failed there the
    /// first time (a hostname's every end), is passed over, with the backtracker's groups.
    #[test]
    fn an_alternative_that_failed_at_a_place_is_not_walked_there_again() {
        let pattern = r"^ruser=(?P<ruser>\S*|\S.*?) rhost=(?:(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<dns>[\w\-.^_]*\w))(?:\s+user=(?P<user>\S*))?\s*$";
        let lines = [
            "ruser=test rhost=192.0.2.151 rhost=192.0.2.1",
            "ruser=a rhost=host.example.org b rhost=198.18.0.1 user=c",
            "ruser= rhost=192.0.2.2 user=test rhost=192.0.2.152",
        ];
        agree(pattern, &[], &lines);
        let chain = Chain::new(pattern).expect("a chain");
        let mut cache = chain.cache();
        // Without the memory: 72 steps on the first line; with it, 36.
        chain.search(lines[0].as_bytes(), 0, &mut cache).unwrap();
        assert!(cache.walked <= 40, "{} steps", cache.walked);
        // Nor does one search's memory carry over to the next line.
        assert!(chain
            .search(b"ruser=x rhost=198.18.0.9", 0, &mut cache)
            .unwrap()
            .is_some());
    }

    /// A branch that repeats a field without bound is refused by its DFA before it is
    /// walked: a `uname=` branch of the shape grafana's built-in once had, on a line whose
    /// `uname=` is empty, walked every way to cut the line into fields before the branch
    /// without a user was tried.
    #[test]
    fn a_branch_that_repeats_fields_is_refused_by_its_dfa_first() {
        let field = r#"(?: [^\s=]+=(?:"[^"]*"|\S*))"#;
        let pattern = format!(
            r"^msg=x(?:{field}*? uname=(?P<user>\S+){field}*?|{field}*?) addr=(?P<addr>\S+)$"
        );
        let lines = [
            r#"msg=x a=1 uname= error="no such user" b=2 addr=198.18.0.1"#,
            r#"msg=x a=1 uname=bob error="x addr=198.18.66.66" addr=198.18.0.2"#,
            r#"msg=x uname="a b" addr=198.18.0.3"#,
        ];
        agree(&pattern, &[], &lines);
        let chain = Chain::new(&pattern).expect("a chain");
        let mut cache = chain.cache();
        // Walked first, the line took 91 steps; with the branch refused first, 39.
        chain.search(lines[0].as_bytes(), 0, &mut cache).unwrap();
        assert!(cache.walked <= 50, "{} steps", cache.walked);
        // On a log whose lines go through the branch, its DFA is soon no longer asked
        // first (nor after: the walk tells).
        for _ in 0..32 {
            chain.search(lines[1].as_bytes(), 0, &mut cache).unwrap();
        }
        let asked = cache.asked;
        for _ in 0..32 {
            chain.search(lines[1].as_bytes(), 0, &mut cache).unwrap();
        }
        assert!(cache.asked - asked <= 1, "{} asked", cache.asked - asked);
        // And where they are refused again, it is asked again.
        for _ in 0..200 {
            chain.search(lines[0].as_bytes(), 0, &mut cache).unwrap();
        }
        let asked = cache.asked;
        chain.search(lines[0].as_bytes(), 0, &mut cache).unwrap();
        assert_eq!(cache.asked - asked, 1);
    }

    #[test]
    fn a_chain_finds_the_backtrackers_groups() {
        let host = r"\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?";
        let sshd = format!(
            r"^(?:(?:error|fatal): (?:PAM: )?)?Failed (?:(?P<nofail>publickey)|\S+) for (?:invalid user )?(?P<user>\S+) from {host}(?: (?:port \d+|on \S+)){{0,2}}(?: ssh\d*)?(?:: .*)?$"
        );
        agree(
            &sshd,
            &[],
            &[
                // A user named `invalid`: the optional prefix takes too much at first,
                // and the chain goes back as the backtracker does.
                "Failed password for invalid user from 198.18.0.1 port 22 ssh2",
                "Failed password for root from 198.18.3.4 port 2222 ssh2",
                "Failed publickey for root from 198.18.3.4 port 2222 ssh2: RSA SHA256:abc",
                "Failed password for invalid user oracle from 2001:db8:1::1a2b port 2222 ssh2",
                "error: PAM: Failed password for root from [::ffff:198.18.0.9] port 22",
                "Failed none for invalid user x from 2001:db8::1",
            ],
        );
        // Optional and nested groups; a literal-only alternative; `\b` and `$` at the
        // edge of a piece.
        agree(
            r"^(?P<a>x(?P<b>y)?)? (?:(?P<c>\w+)\b|-) end(?P<d>s)?$",
            &[],
            &["xy abc end", "x - ends", " abc end", "xy a ends"],
        );
        agree(r"^(?:(?P<a>ab)|a)(?P<b>b*)c", &[], &["abbbc", "abc", "ac"]);
        // A branch whose first way fails further on is still the backtracker's choice
        // when another way through it exists: the chain may not take the next branch.
        agree(r"^(?:(?P<a>\S+)x|(?P<b>.*))$", &["abx"], &["ab"]);
        agree(r"^(?:(?P<a>\S+)x)?(?P<b>.*)$", &["abx", "abxy"], &["ab"]);
        // A branch whose walk cannot tell (its run's DFA knows one end, and the rest
        // fails there) is passed over when its DFA with the rest finds no match through
        // it, as the backtracker would pass it.
        agree(
            r"^(?:(?P<a>(?:a|b)+)c|(?P<b>.*))$",
            &["abbac", "abc"],
            &["ab", "abba", "aab"],
        );
        // Alternatives inside a group are decided by what follows the group.
        agree(
            r"^(?P<m>0?[1-9]|1[0-2])/(?P<h> ?(?:[0-1]?\d|2[0-3])):",
            &[],
            &["11/22:", "1/ 9:", "09/23:", "12/2:"],
        );
        // A run whose greedy class takes what the next step needs goes to its DFA.
        agree(
            r"^\S+x(?P<a>\d{1,3}(?:\.\d{1,3}){3})(?: port)?$",
            &[],
            &["abxx1.2.3.4", "ax1.2.3.4 port"],
        );
        // Lazy parts stop as early as they can, and what follows may not match there:
        // the chain gives up (the backtracker would go back), never answers otherwise.
        agree(
            r"^(?P<a>x(?P<b>y)?)?? (?:(?P<c>\w+?)\b|-) end(?P<d>s)??$",
            &["xy abc end", "x - ends", " abc end", "xy a ends"],
            &[" - end"],
        );
    }

    /// Every text up to 5 bytes over a small alphabet, through patterns made of what the
    /// walk knows and what it leaves to the DFA (alternatives, optional
    /// parts, repetitions, lazy classes):
    /// wherever the chain answers, it is the backtracker's answer.
    #[test]
    fn the_walk_never_disagrees_with_the_backtracker() {
        let patterns = [
            r"^(?:(?:ab|a): (?:b )?)?(?P<x>a+)(?: (?:1|a\d+)){0,2}(?: :\d*)?$",
            r"^(?P<x>a|ab)(?P<y>b?)(?:1|b1)?",
            r"^(?:a(?:b|)|(?P<x>ab))(?P<y>\S*)$",
            r"^(?P<x>[ab]{1,2}?)(?P<y>b*)(?:: )?",
            r"^(?:(?P<x>a)|b){0,1}(?:(?:a:|b)(?: 1)?){1,3}(?P<y>.*)$",
            r"^(?:(?:a|a:)1)?(?P<x>\S+)",
            r"^(?:(?P<x>\S+)b|(?P<y>.*))(?: 1)?$",
            r"^(?:(?P<x>a\S*)(?P<y>:1)?)?(?P<z>\S*)(?: (?P<w>b+)| a)?",
            // Runs with alternatives taken by their first choices: a branch whose first
            // byte is not there is passed over, a class-first one, an empty one.
            r"^(?:b:|[ab]+)(?P<x>1?)(?: a| b|)$",
            r"^(?:1|a+b|\S+?)(?P<x>:?)(?:[ab]+1|b)?$",
            r"^(?:: |a|)b(?P<x>[^:]*|.*):(?P<y>1*)$",
            r"^(?:a:|b){1,3}?(?P<x>\S*)$",
            r"^(?:ab|a){0,2}(?P<x>b?)1?$",
            // A class before a literal it holds the first byte of: it gives bytes back.
            r"^a\S*:b(?P<x>\S*)$",
            r"^(?P<x>a?)[ab:]*?:1(?P<y>.*)$",
            r"^\S{1,3}b (?P<x>[^ ]*)",
            // A branch that took a group and failed after it; a branch taken, and a
            // failure after the alternative that a later branch gets past.
            r"^(?:(?P<x>a)b|(?P<y>a)1)",
            r"^(?:(?P<x>a)|(?P<y>a1))b",
        ];
        let texts = every_text(b"ab 1:", 5);
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for p in patterns {
            agree(p, &refs, &[]);
        }
        // Made of steps alone (no run left to a DFA): the chain goes back wherever the
        // backtracker would, so it answers on every text.
        let stepped = [
            r"^:?(?P<x>[ab]+):?:(?P<y>1*)b?b$",
            r"^(?:a )?(?P<x>\S+) (?P<y>\S*?)1?1",
            r"^a*(?P<x>a{1,2})(?P<y>b*?)b?(?: 1)?$",
            r"^\S*(?P<x>:?)(?P<y>:1|1)?$",
            r"^(?:a|ab)(?P<x>b?)(?:1|b1)?$",
            r"^(?P<x>[ab]+|.*?):(?P<y>(?:1|:1)?)\S*$",
            r"^(?:a(?:b )?)??(?P<x>\S+?)(?: 1|1)?$",
        ];
        for p in stepped {
            agree(p, &[], &refs);
        }
    }

    /// nginx-http-auth's `user "(?:[^"]+|.*?)"` on a user name holding `"`: the first
    /// alternative stops at the quote, the rest fails, and the lazy one goes on.
    #[test]
    fn alternatives_without_groups_are_walked_in_order() {
        agree(
            r#"^\s*\[error\] \d+#\d+: \*\d+ user "(?:[^"]+|.*?)":? (?:password mismatch|was not found in "[^\"]*"), client: (?P<ip4>\S+), server: \S*"#,
            &[],
            &[
                r#"[error] 30708#0: *3 user "test": password mismatch, client: 127.0.0.1, server: test, request: "GET / HTTP/1.1", host: "localhost:8443"": was not found in "/etc/nginx/.htpasswd", client: 192.0.2.2, server: , request"#,
                r#"[error] 2865#0: *66647 user "xyz": password mismatch, client: 192.0.43.10, server: www.myhost.com"#,
            ],
        );
    }

    /// fail2ban's `[<HOST>]`: the address's own optional `]` takes the bracket the
    /// pattern needs after it, and the chain gives it back.
    #[test]
    fn an_optional_bracket_is_given_back_to_what_follows() {
        let host = r"\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?";
        agree(
            &format!(
                r"^[A-Z]{{4}} from [^\[]*\[(?:{host}|(?P<dns>[\w\-.^_]*\w))\](?::\d+)?: [45]\d\d "
            ),
            &[],
            &[
                "RCPT from example.com[198.18.0.10]: 450 ",
                "RCPT from x[2001:db8::1]:25: 554 ",
                "RCPT from unknown[[198.18.0.1]]: 550 ",
                "RCPT from a[b[mail.example.com]: 550 ",
            ],
        );
    }

    /// The first-choice loop takes the first branch that gets through; a failure is final
    /// (`No`) while no step before it had another way, and left to the walk or the DFA
    /// (`Unsure`) after one that had.
    #[test]
    fn the_first_choice_loop_takes_the_first_branch_that_gets_through() {
        let end = |pattern: &str, text: &str| {
            let mut steps = steps_of(&ascii_hir(pattern).unwrap()).unwrap();
            follow_steps(&mut steps, Follow::ANY);
            first_end(&steps, text.as_bytes(), 0, &mut false)
        };
        use First::{End, No, Unsure};
        assert_eq!(end(r"(?:x:|[ab]+|)c", "abc"), End(3));
        assert_eq!(end(r"(?:x:|[ab]+|)c", "c"), End(1));
        assert_eq!(end(r#"(?:[^"]*|.*)""#, r#"a"b""#), End(2));
        // A branch that starts and fails where nothing had another way: the next branch.
        assert_eq!(end(r"(?:ab|a)c", "ac"), End(2));
        let tail = r"(?: (?:port \d+|on \S+))?(?: ssh2)?$";
        assert_eq!(end(tail, " port 22 ssh2"), End(13));
        assert_eq!(end(tail, " ssh2"), End(5));
        assert_eq!(end(r"\d+\.\d+", "12:3"), No);
        assert_eq!(end(r"(?:a+b|a)c", "aac"), No);
        // A greedy class that holds the one byte that may follow gives back to that
        // byte's last place; a failure after it is final only where it held no other.
        assert_eq!(end(r"[a-z]+ab", "xxab"), End(4));
        assert_eq!(end(r"[a-z]+ab", "xaxab"), End(5));
        assert_eq!(end(r"[a-z]+ab", "xxac"), No);
        assert_eq!(end(r"[a-z]+ab", "xaxac"), Unsure);
        assert_eq!(end(r"[a-z]{2,}ab", "aab"), No);
        // ... unless what follows holds a byte outside the class: the run ends right
        // before that byte's place in it (the first space), as the backtracker finds.
        assert_eq!(end(r"\S*, r", "s.com,, r"), End(9));
        assert_eq!(end(r"\S*, r", "s.com,,, r x"), End(10));
        assert_eq!(end(r"\S+\)\. From", "a)b).c). From"), End(13));
        assert_eq!(end(r"\S+\)\. From", "a). Fro"), No);
        assert_eq!(end(r"\S{2,}, r", "a, r"), No);
        // Stopped by its most: its ends are the places of `,` within its most bytes.
        assert_eq!(end(r"\S{1,3}, r", "a, r"), End(4));
        assert_eq!(end(r"\S{1,3}, r", "abcd, r"), No);
        assert_eq!(end(r"\S{1,3}, r", "ab,, r"), End(6));
        // After a branch taken with another left: not final.
        assert_eq!(end(r"(?:a|ab)c", "abc"), Unsure);
        // The last branch taken, whose own class gives back to what follows (`a+` taking
        // one `a` lets `ab` follow); a failure after it is not final where the run held
        // another `a` to give back to.
        assert_eq!(end(r"(?:x|a+)ab", "aab"), End(3));
        assert_eq!(end(r"(?:x|a+)ac", "aaab"), Unsure);
        // A repetition of more than a few: left to the others.
        assert_eq!(end(r"(?:ab){1,9}", "abab"), Unsure);
        // A branch whose first byte the text rules out is no other way: taking the first
        // branch (`ab`) left none, so the failure after it is final. Where a later branch
        // could start (`a`), it is not.
        assert_eq!(end(r"(?:ab|cd|)x", "abz"), No);
        assert_eq!(end(r"(?:ab|cd|)x", "abx"), End(3));
        assert_eq!(end(r"(?:ab|a)c", "abd"), Unsure);
        // An optional prefix the first byte rules out is passed over without a choice.
        assert_eq!(end(r"(?:(?:error|fatal): )?Failed ", "Failed x"), End(7));
        assert_eq!(end(r"(?:(?:error|fatal): )?Failed \d", "Failed x"), No);
        // A lazy class only one byte may follow ends at that byte's first place: final
        // where it holds no other, else not.
        assert_eq!(end(r".*? r", "ab r"), End(4));
        assert_eq!(end(r".*? r", "a b r"), Unsure);
        assert_eq!(end(r".*? r", "ab x"), No);
        assert_eq!(end(r".{3,}? r", "a r r"), End(5));
        assert_eq!(end(r"x.*? r", "x r"), End(3));
    }

    /// A run with a short optional prefix is settled by its steps (no DFA) where the next
    /// bytes leave one way through it, by its DFA where they leave more (`PAM: ` there or
    /// not before `Failed`); both find what the backtracker finds. A run with many branches
    /// is always left to its DFA.
    #[test]
    fn a_short_optional_prefix_is_passed_over_without_the_dfa() {
        let pattern = r"^(?:(?:error|fatal): (?:PAM: )?)?Failed (?P<u>\S+) from (?P<h>\S+)$";
        let chain = Chain::new(pattern).unwrap();
        let Piece::Seq(pieces) = &chain.root else {
            panic!("{:?}", chain.root)
        };
        let Some(Piece::Run {
            quick: true,
            dfa: Some(first),
            ..
        }) = pieces.first()
        else {
            panic!("{:?}", pieces.first())
        };
        let mut cache = chain.cache();
        for text in [
            "Failed root from 198.18.0.1",
            "error: Failed root from 198.18.0.1",
            "fatal: PAM: Failed a b from 198.18.0.1",
            "Failed root from 198.18.0.2",
        ] {
            let found = chain.search(text.as_bytes(), 0, &mut cache);
            assert_eq!(found, Ok(backtracked(pattern, text)), "{text}");
        }
        // Settled by the steps on every line but the one with `PAM: `.
        assert_eq!(cache.alone[*first].counted, 3);
        assert_eq!(cache.alone[*first].tried, 4);
        let many = Chain::new(r"^(?:a|b|c|d|e)x(?P<u>\S+)$").unwrap();
        let Piece::Seq(pieces) = &many.root else {
            panic!("{:?}", many.root)
        };
        assert!(matches!(
            pieces.first(),
            Some(Piece::Run { quick: false, .. })
        ));
    }

    /// The straight pass is given up where it seldom settles a search, tried again one
    /// search in 64, and taken up again once it settles most of them.
    #[test]
    fn the_straight_pass_is_given_up_where_it_seldom_settles() {
        let mut tally = Tally::default();
        for _ in 0..16 {
            assert!(tally.worth());
            tally.count(false);
        }
        let tried = (0..640).filter(|_| tally.worth()).count();
        assert_eq!(tried, 10);
        let mut good = Tally::default();
        for _ in 0..2000 {
            assert!(good.worth());
            good.count(true);
        }
        // A log that changes shape: the one try in 64 sees it and counts.
        let mut searches = 0;
        while tally.counted * 8 < tally.tried * 7 {
            if tally.worth() {
                tally.count(true);
            }
            searches += 1;
            assert!(searches < 100_000, "never taken up again");
        }
        assert!(tally.worth());
    }

    /// A run holding a look-around has no DFA, and its first-choice loop goes through its
    /// alternatives. The last branch taken (`a+` on `aa`) could still give back: a failure
    /// after it is not final, and the walk finds `a+` = `a`. (To the chain the empty
    /// `__mark_pos` group is a look-ahead that always holds.)
    #[test]
    fn a_failure_after_a_last_branch_that_could_give_back_is_not_final() {
        let chain = Chain::new(r"^(?:x|a+)a(?P<__mark_pos_1>)(?P<y>b)").unwrap();
        let mut cache = chain.cache();
        let found = chain.search(b"aab", 0, &mut cache);
        assert_eq!(found.map(|g| g.map(|g| g[2])), Ok(Some(Some((2, 3)))));
    }

    /// What may follow a point: the first bytes of what comes next, through optional and
    /// empty parts, and the text's end only where everything after may be empty.
    #[test]
    fn what_may_follow_passes_through_optional_parts() {
        let follow = |pattern: &str| next_of(&[ascii_hir(pattern).unwrap()], &Hir::empty());
        let allows = |f: Follow, text: &str| -> String {
            (0..=text.len())
                .filter(|&i| f.allows(text.as_bytes(), i))
                .map(|i| text.as_bytes().get(i).map_or('$', |&b| char::from(b)))
                .collect()
        };
        let required = follow(r"(?:a|b)?c*d");
        assert_eq!(allows(required, "abcdex"), "abcd");
        // Nothing required: anything may follow, the end too.
        assert_eq!(allows(follow(r"(?:x )?\d*"), "ab"), "ab$");
        // A look-ahead takes nothing: what follows it decides, not what it looks for.
        let ahead = ascii_hir(r"(?P<__mark_neg_1>z)q").unwrap();
        assert_eq!(allows(next_of(&[ahead], &Hir::empty()), "qz"), "q");
    }

    /// A greedy `.*` before `>`: only the places before a `>` are tried, so a long line
    /// whose `>` sits far from its end is answered within the walk's budget (trying every
    /// end from the line's end back ran out of it: the line went to the backtracker).
    #[test]
    fn a_greedy_run_tries_only_ends_the_rest_can_start_at() {
        let chain = Chain::new(r"^x=<(?P<u>.*)>,y").unwrap();
        let mut cache = chain.cache();
        let text = format!("x=<{}>,y{}", "ab".repeat(3000), "c".repeat(5000));
        let slots = chain
            .search(text.as_bytes(), 0, &mut cache)
            .expect("answered within the budget")
            .expect("a match");
        assert_eq!(slots[1], Some((3, 6003)));
        assert_eq!(slots, backtracked(r"^x=<(?P<u>.*)>,y", &text).unwrap());
    }

    /// A class that only one byte may follow is walked to the places before that byte,
    /// found from the back when greedy and from the front when lazy (grafana's fields
    /// skipped as `(?: .*?)? remote_addr=`): the same ends in the same order as trying
    /// each end, so the backtracker's answer, whether the right place is the last, an
    /// earlier one, none, or within the class's least count. A greedy class that cannot
    /// hold that byte (`[^;]*;`) is not looked through for it: its whole run is its one end.
    #[test]
    fn a_class_before_one_byte_ends_where_the_backtracker_ends_it() {
        let patterns = [
            r#"^u "(?:[^"]*|.*)": x=(?P<h>\d+)"#,
            r"^a(?P<u>.*)>,(?:c|d)(?P<v>\S*)>$",
            r"^a(?P<u>.{2,})>,(?P<v>\d+)",
            r"^a(?P<u>[^;]*);(?:x|y)(?P<v>\w+)",
            r"^a(?P<u>.*?)>,(?:c|d)(?P<v>\S*)>$",
            r"^a(?P<u>.{2,}?)>,(?P<v>\d+)",
            r"^a(?:.*?)?>,(?P<v>\d+)$",
        ];
        let texts = [
            r#"u "a"b": x=1"#,
            r#"u "a": x=1 "b": x=2"#,
            r#"u "a": y "#,
            "a>,c>,d>",
            "ax>,cq>,dz>",
            "a>>,1",
            "a>,1>,2",
            "ab>,1>",
            "a;;xq",
            "a;x;y;z",
            "a;;",
        ];
        let (mut answered, mut matched) = (0, 0);
        let bytes = [b'"', b'>', b'>', 0, b'>', b'>', b'>'];
        for (pattern, byte) in patterns.iter().zip(bytes) {
            let chain = Chain::new(pattern).unwrap();
            let shown = format!("{chain:?}");
            match byte {
                0 => assert!(!shown.contains("before: Some("), "{pattern}"),
                b => assert!(shown.contains(&format!("before: Some({b})")), "{pattern}"),
            }
            for text in texts {
                let got = chain.search(text.as_bytes(), 0, &mut chain.cache());
                if let Ok(got) = got {
                    assert_eq!(got, backtracked(pattern, text), "{pattern} on {text:?}");
                    answered += 1;
                    matched += usize::from(got.is_some());
                }
            }
        }
        assert!(
            answered >= 70 && matched >= 9,
            "{answered} answered, {matched} matched"
        );
    }

    /// A class with at most three bytes outside it ends its runs where memchr finds the
    /// first of them: the same length a byte-by-byte scan finds, at every length, limit
    /// and place of the stop; and through a chain, the backtracker's groups on long lines.
    #[test]
    fn a_class_with_few_bytes_outside_it_ends_its_runs_by_memchr() {
        let set_of = |pattern: &str| match ascii_hir(pattern).map(|h| h.into_kind()) {
            Some(HirKind::Class(regex_syntax::hir::Class::Bytes(c))) => byte_set(&c),
            other => panic!("{pattern}: {other:?}"),
        };
        assert_eq!(Stops::of(&set_of(".")), Stops::One(b'\n'));
        assert_eq!(Stops::of(&set_of("[^)]")), Stops::One(b')'));
        assert_eq!(Stops::of(&set_of("[^):]")), Stops::Two(b')', b':'));
        assert_eq!(Stops::of(&set_of("[^()<]")), Stops::Three(b'(', b')', b'<'));
        assert_eq!(Stops::of(&set_of(r"\S")), Stops::Many);
        assert_eq!(Stops::of(&set_of(r"[\s\S]")), Stops::Many);
        let mut tried = 0;
        for class in [".", "[^)]", "[^):]", "[^()<]", r"\S", r"[\s\S]"] {
            let set = set_of(class);
            let stops = Stops::of(&set);
            for len in [0, 1, 15, 16, 17, 40, 100] {
                for stop in (0..len).step_by(7).chain([len]) {
                    for at in [0, 3] {
                        for limit in [1, 16, 50, u32::MAX] {
                            for b in [b'\n', b')', b':', b'<', b' '] {
                                let mut text = vec![b'x'; len];
                                if let Some(c) = text.get_mut(stop) {
                                    *c = b;
                                }
                                let naive = text
                                    .get(at..)
                                    .unwrap_or_default()
                                    .iter()
                                    .take(limit as usize)
                                    .take_while(|&&c| has_byte(&set, c))
                                    .count();
                                let got = class_run(&set, stops, &text, at, limit);
                                assert_eq!(got, naive, "{class} on {text:?} from {at} to {limit}");
                                tried += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(tried > 5_000, "{tried}");
        let long = "x".repeat(40);
        agree(
            r"^a(?P<u>[^)]*)\)(?P<v>.*)$",
            &[],
            &[
                &format!("a{long})b{long}"),
                &format!("a{long}){long})"),
                &format!("a{long}"),
                &format!("a{long})b{long}\nc"),
            ],
        );
        agree(
            r"^(?P<u>[^):]+):(?P<v>.*)<(?P<w>[^()<]{2,})$",
            &[],
            &[
                &format!("{long}:{long}<{long}"),
                &format!("{long}:{long}<{long}<ab"),
                &format!("{long}:{long}<{long}(ab"),
                &format!("{long})x:{long}<ab"),
            ],
        );
    }

    /// Spans handed back are filled by the next search, nothing of the last match left in
    /// them (a group the new match leaves out is empty), and a search that finds nothing
    /// keeps them for the one after.
    #[test]
    fn spans_handed_back_are_reused_and_start_empty() {
        let pattern = r"^u=(?P<u>\w+)(?: port (?P<p>\d+))?(?: (?P<s>ssh\d))?$";
        let chain = Chain::new(pattern).unwrap();
        let mut cache = chain.cache();
        let search = |text: &str, cache: &mut ChainCache| {
            let got = chain.search(text.as_bytes(), 0, cache).expect("answered");
            assert_eq!(got, backtracked(pattern, text), "{text}");
            got
        };
        let first = search("u=root port 22 ssh2", &mut cache).unwrap();
        assert!(first[2].is_some() && first[3].is_some());
        let kept = first.as_ptr();
        cache.give_back(first);
        assert_eq!(search("u=x y", &mut cache), None);
        let second = search("u=admin", &mut cache).unwrap();
        assert_eq!(second.as_ptr(), kept, "the spans handed back");
        assert_eq!(second, vec![Some((0, 7)), Some((2, 7)), None, None]);
    }

    #[test]
    fn groups_repeated_more_than_once_are_left_to_the_backtracker() {
        assert!(Chain::new(r"^(?:(?P<a>\d)\.)+$").is_none());
        assert!(Chain::new(r"^(?:(?P<a>\d)\.){2}$").is_none());
        assert!(Chain::new(r"^(?:(?P<a>\d)\.){1}$").is_some());
    }
}
