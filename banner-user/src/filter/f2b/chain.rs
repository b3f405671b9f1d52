//! A match's groups found by a chain of DFA searches instead of a backtracker.
//!
//! The backtracker that finds groups walks every state of a pattern at every byte (about
//! 10 ns a byte on sshd's patterns, most of a built-in's cost per failure line). Yet most
//! of a log pattern is text no group lies in (` from `, ` port \d+`), and its groups hold
//! simple runs (`\S+`, an address).
//!
//! A pattern is split along its top-level sequence into pieces: runs with no group (found
//! by a lazy DFA, or compared when they are one literal), groups, and alternatives that hold
//! groups. The chain searches each piece, anchored where the one before it ended, and keeps
//! its leftmost-first match.
//!
//! Why that is the backtracker's answer: the backtracker tries the ways to match a sequence
//! `A B` in priority order, `A`'s choices first. The first way to match `A` from here is
//! what a leftmost-first search of `A` alone finds. If `B` then matches from where that
//! ended, the backtracker's first full match goes through exactly that way of `A`, and, by
//! the same argument, through `B`'s own first way. So when every piece matches in turn, the
//! chain has the backtracker's match; when a piece fails (an earlier piece took too much,
//! `(?:invalid user )?\S+` on a user named `invalid`), the caller runs the backtracker.
//! An alternative holding groups (`(?:<IP4>|<IP6>)`, an optional group) is different: the
//! backtracker takes the first branch from which the rest of the whole pattern can still
//! match, which is no local question. Each branch but the last therefore has a DFA for
//! itself followed by that rest (groups left out), and the chain takes the first branch
//! whose DFA matches here. Searches see the whole text, so `^`, `$` and `\b` at a piece's
//! edge look at the real neighbours.

use regex_automata::{
    hybrid::dfa::{Cache, DFA},
    nfa::thompson,
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
}

#[derive(Debug, Clone)]
enum Piece {
    /// Bytes that must follow here.
    Literal(Box<[u8]>),
    /// A run with no group: its leftmost-first end, by simple steps when they get through
    /// without going back, else by the DFA with this index.
    Run(Option<Box<[Step]>>, usize),
    Seq(Vec<Piece>),
    /// Alternatives in priority order, each with the DFA that says whether the whole
    /// pattern can go on through it from here (none for the last: it is all that is left).
    Alt(Vec<(Piece, Option<usize>)>),
    Group(usize, Box<Piece>),
}

/// Most memory one piece's lazy DFA may hold (it starts empty and clears itself when full).
/// A pattern has a dozen pieces and a filter a few dozen patterns: the default (2 MiB) would
/// let a long-running daemon's chains grow to hundreds of MiB on varied input.
const CACHE_CAPACITY: usize = 256 << 10;

/// A chain's DFA caches, reused from line to line.
#[derive(Debug, Clone)]
pub struct ChainCache(Vec<Cache>);

impl Chain {
    /// Cut `pattern`, run without Unicode on bytes (the ASCII twin's syntax). None for what
    /// a chain cannot follow: a group inside a repetition that may match more than once.
    pub fn new(pattern: &str) -> Option<Self> {
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(pattern)
            .ok()?;
        let mut dfas = Vec::new();
        let root = piece(&hir, &Hir::empty(), &mut dfas)?;
        Some(Self {
            root,
            dfas,
            groups: hir.properties().explicit_captures_len() + 1,
        })
    }

    pub fn cache(&self) -> ChainCache {
        ChainCache(self.dfas.iter().map(DFA::create_cache).collect())
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
    ) -> Option<Vec<Option<(usize, usize)>>> {
        let mut slots = vec![None; self.groups];
        let stop = self.run(&self.root, text, start, cache, &mut slots)?;
        if stop != end {
            return None;
        }
        slots[0] = Some((start, end));
        Some(slots)
    }

    fn run(
        &self,
        piece: &Piece,
        text: &[u8],
        at: usize,
        cache: &mut ChainCache,
        slots: &mut [Option<(usize, usize)>],
    ) -> Option<usize> {
        match piece {
            Piece::Literal(bytes) => text
                .get(at..)?
                .starts_with(bytes)
                .then_some(at + bytes.len()),
            Piece::Run(steps, i) => {
                if let Some(end) = steps.as_deref().and_then(|s| walk(s, text, at)) {
                    return Some(end);
                }
                let input = Input::new(text)
                    .span(at..text.len())
                    .anchored(Anchored::Yes);
                let dfa = self.dfas.get(*i)?;
                let found = dfa.try_search_fwd(cache.0.get_mut(*i)?, &input).ok()??;
                Some(found.offset())
            }
            Piece::Seq(parts) => parts
                .iter()
                .try_fold(at, |at, p| self.run(p, text, at, cache, slots)),
            Piece::Alt(branches) => {
                for (branch, through) in branches {
                    let Some(i) = through else {
                        return self.run(branch, text, at, cache, slots);
                    };
                    let input = Input::new(text)
                        .span(at..text.len())
                        .anchored(Anchored::Yes)
                        .earliest(true);
                    let dfa = self.dfas.get(*i)?;
                    if dfa
                        .try_search_fwd(cache.0.get_mut(*i)?, &input)
                        .ok()?
                        .is_some()
                    {
                        return self.run(branch, text, at, cache, slots);
                    }
                }
                None
            }
            Piece::Group(index, inner) => {
                let stop = self.run(inner, text, at, cache, slots)?;
                *slots.get_mut(*index)? = Some((at, stop));
                Some(stop)
            }
        }
    }
}

fn has_groups(hir: &Hir) -> bool {
    hir.properties().explicit_captures_len() > 0
}

/// `hir` without its groups (what the DFAs that decide between branches run).
fn strip(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Capture(c) => strip(&c.sub),
        HirKind::Concat(v) => Hir::concat(v.iter().map(strip).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(strip).collect()),
        HirKind::Repetition(r) => Hir::repetition(regex_syntax::hir::Repetition {
            sub: Box::new(strip(&r.sub)),
            ..r.clone()
        }),
        _ => hir.clone(),
    }
}

/// The pieces of `hir`; `rest`: what follows it in the whole pattern, without groups.
fn piece(hir: &Hir, rest: &Hir, dfas: &mut Vec<DFA>) -> Option<Piece> {
    if !has_groups(hir) {
        return run(hir, dfas);
    }
    match hir.kind() {
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
        _ => run(hir, dfas),
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
                out.push(run(&Hir::concat(std::mem::take(&mut plain)), dfas)?);
            }
            let mut after: Vec<Hir> = parts[k + 1..].iter().map(strip).collect();
            after.push(rest.clone());
            out.push(make(p, &Hir::concat(after), dfas)?);
        } else {
            plain.push(p.clone());
        }
    }
    if !plain.is_empty() {
        out.push(run(&Hir::concat(plain), dfas)?);
    }
    Some(Piece::Seq(out))
}

/// Branches in priority order, each but the last with the DFA of itself and `rest`.
fn alt(branches: Vec<&Hir>, rest: &Hir, dfas: &mut Vec<DFA>) -> Option<Piece> {
    let last = branches.len().checked_sub(1)?;
    let mut out = Vec::new();
    for (i, b) in branches.into_iter().enumerate() {
        let through = if i < last {
            Some(dfa(&Hir::concat(vec![strip(b), rest.clone()]), dfas)?)
        } else {
            None
        };
        out.push((piece(b, rest, dfas)?, through));
    }
    Some(Piece::Alt(out))
}

fn dfa(hir: &Hir, dfas: &mut Vec<DFA>) -> Option<usize> {
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().utf8(false))
        .build_from_hir(hir)
        .ok()?;
    let dfa = DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::LeftmostFirst)
                .cache_capacity(CACHE_CAPACITY),
        )
        .build_from_nfa(nfa)
        .ok()?;
    dfas.push(dfa);
    Some(dfas.len() - 1)
}

/// A run with no group: compared when it is one literal, else its own lazy DFA.
fn run(hir: &Hir, dfas: &mut Vec<DFA>) -> Option<Piece> {
    match hir.kind() {
        HirKind::Literal(lit) => return Some(Piece::Literal(lit.0.clone())),
        HirKind::Empty => return Some(Piece::Literal(Box::default())),
        _ => {}
    }
    let index = dfa(hir, dfas)?;
    let mut out = Vec::new();
    let steps = simple_steps(hir, &mut out).then(|| out.into_boxed_slice());
    Some(Piece::Run(steps, index))
}

/// One step of a run that needs no going back: the usual shape of a log pattern's fixed
/// text (` from `, `\S+`, `\d{1,3}`, `(?: ssh2)?`).
#[derive(Debug, Clone)]
enum Step {
    Literal(Box<[u8]>),
    /// A literal that is taken when it is there (a greedy `(?:...)?`).
    Optional(Box<[u8]>),
    /// A byte class repeated `min..=max` times.
    Class {
        set: [u64; 4],
        min: u32,
        max: u32,
        greedy: bool,
    },
    /// `^` or `$` (the whole text's, not a line's).
    Start,
    End,
}

/// `hir` as steps, if it is a sequence of what [`Step`] knows.
fn simple_steps(hir: &Hir, out: &mut Vec<Step>) -> bool {
    use regex_syntax::hir::{Class, Look};
    let class_set = |c: &Class| -> Option<[u64; 4]> {
        let Class::Bytes(b) = c else {
            return None;
        };
        let mut set = [0u64; 4];
        for r in b.iter() {
            for byte in r.start()..=r.end() {
                set[usize::from(byte >> 6)] |= 1 << (byte & 63);
            }
        }
        Some(set)
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
        HirKind::Repetition(r) => match r.sub.kind() {
            HirKind::Class(c) => class_set(c).is_some_and(|set| {
                out.push(Step::Class {
                    set,
                    min: r.min,
                    max: r.max.unwrap_or(u32::MAX),
                    greedy: r.greedy,
                });
                true
            }),
            HirKind::Literal(lit) if r.min == 0 && r.max == Some(1) && r.greedy => {
                out.push(Step::Optional(lit.0.clone()));
                true
            }
            // `(?:\d{1,3}\.){3}`: a few copies in a row.
            _ if Some(r.min) == r.max && r.min <= 4 => {
                (0..r.min).all(|_| simple_steps(&r.sub, out))
            }
            _ => false,
        },
        _ => false,
    }
}

/// Where `steps` end from `at`, taking the first choice at each (as many bytes as a greedy
/// class allows, as few as a lazy one needs; an optional literal when it is there). That
/// is the leftmost-first match when it gets through; None when it does not (a later step
/// might have needed an earlier one to take less), and the DFA decides.
fn walk(steps: &[Step], text: &[u8], mut at: usize) -> Option<usize> {
    for step in steps {
        match step {
            Step::Literal(bytes) => {
                if !text.get(at..)?.starts_with(bytes) {
                    return None;
                }
                at += bytes.len();
            }
            Step::Optional(bytes) => {
                if text.get(at..)?.starts_with(bytes) {
                    at += bytes.len();
                }
            }
            Step::Class {
                set,
                min,
                max,
                greedy,
            } => {
                let want = if *greedy { *max } else { *min };
                let mut n = 0u32;
                while n < want {
                    match text.get(at) {
                        Some(&b) if set[usize::from(b >> 6)] & (1 << (b & 63)) != 0 => {
                            at += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                if n < *min {
                    return None;
                }
            }
            Step::Start => {
                if at != 0 {
                    return None;
                }
            }
            Step::End => {
                if at != text.len() {
                    return None;
                }
            }
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::nfa::thompson::backtrack::BoundedBacktracker;

    /// The backtracker's groups for `pattern` anchored at the start of `text`.
    fn backtracked(pattern: &str, text: &str) -> Option<Vec<Option<(usize, usize)>>> {
        let bt = BoundedBacktracker::builder()
            .syntax(
                regex_automata::util::syntax::Config::new()
                    .unicode(false)
                    .utf8(false),
            )
            .thompson(thompson::Config::new().utf8(false))
            .build(pattern)
            .unwrap();
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

    /// The chain agrees with the backtracker wherever it answers, and answers on `must`.
    fn agree(pattern: &str, texts: &[&str], must: &[&str]) {
        let chain = Chain::new(pattern).expect("a chain");
        let mut cache = chain.cache();
        for text in texts.iter().chain(must) {
            let want = backtracked(pattern, text);
            let Some(w) = &want else {
                continue;
            };
            let (start, end) = w[0].unwrap();
            let got = chain.groups(text.as_bytes(), start, end, &mut cache);
            if let Some(g) = &got {
                assert_eq!(g, w, "{pattern} on {text:?}");
            } else {
                assert!(!must.contains(text), "{pattern} gave up on {text:?}");
            }
        }
    }

    #[test]
    fn a_chain_finds_the_backtrackers_groups() {
        let host = r"\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?";
        let sshd = format!(
            r"^(?:(?:error|fatal): (?:PAM: )?)?Failed (?:(?P<nofail>publickey)|\S+) for (?:invalid user )?(?P<user>\S+) from {host}(?: (?:port \d+|on \S+)){{0,2}}(?: ssh\d*)?(?:: .*)?$"
        );
        agree(
            &sshd,
            &[
                // A user named `invalid`: the optional prefix took too much; the chain
                // may give up, but never answers wrong.
                "Failed password for invalid user from 198.18.0.1 port 22 ssh2",
            ],
            &[
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
        ];
        let alphabet = [b'a', b'b', b' ', b'1', b':'];
        let mut texts = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..5 {
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
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for p in patterns {
            agree(p, &refs, &[]);
        }
    }

    #[test]
    fn groups_repeated_more_than_once_are_left_to_the_backtracker() {
        assert!(Chain::new(r"^(?:(?P<a>\d)\.)+$").is_none());
        assert!(Chain::new(r"^(?:(?P<a>\d)\.){2}$").is_none());
        assert!(Chain::new(r"^(?:(?P<a>\d)\.){1}$").is_some());
    }
}
