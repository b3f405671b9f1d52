//! A match's named groups: what a failure line captured, by fail2ban's group names.
//!
//! The names the matching rules read on every line (the address, the user, the connection,
//! the NOFAIL/MLF flags) are known by a number, so looking one up is a compare of one byte;
//! comparing their text cost about a tenth of a failure line (a few lookups per line, each
//! over every group). Other names keep their text.

use std::sync::Arc;

use crate::filter::Text;

/// A group name the matching rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Ip4,
    Ip6,
    Dns,
    User,
    Fid,
    Mlfid,
    Nofail,
    Mlfgained,
    Mlfforget,
    Content,
    /// fail2ban's `alt_user`: the user where the line names none in `user`.
    AltUser,
}

impl Key {
    const ALL: [(Key, &'static str); 11] = [
        (Key::Ip4, "ip4"),
        (Key::Ip6, "ip6"),
        (Key::Dns, "dns"),
        (Key::User, "user"),
        (Key::Fid, "fid"),
        (Key::Mlfid, "mlfid"),
        (Key::Nofail, "nofail"),
        (Key::Mlfgained, "mlfgained"),
        (Key::Mlfforget, "mlfforget"),
        (Key::Content, "content"),
        (Key::AltUser, "alt_user"),
    ];

    /// This key's bit in [`Groups`]' set of the keys it holds.
    fn bit(self) -> u16 {
        1 << self as u16
    }

    fn of(name: &str) -> Option<Key> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }
}

/// A group's name: a [`Key`], or any other name fail2ban allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    Known(Key),
    Other(Arc<str>),
}

impl Name {
    pub fn new(name: &str) -> Self {
        match Key::of(name) {
            Some(k) => Name::Known(k),
            None => Name::Other(Arc::from(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Name::Known(k) => k.as_str(),
            Name::Other(s) => s,
        }
    }

    fn is(&self, key: Key) -> bool {
        matches!(self, Name::Known(k) if *k == key)
    }
}

/// Named groups and their text: a handful per line, kept inline (a connection's memory
/// holds them in its own slot, so reading what it knew costs no other cache miss, and
/// taking a line's groups allocates nothing), names shared with the pattern. More than
/// [`INLINE_GROUPS`] go to a list beside.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    inline: [Option<(Name, Text)>; INLINE_GROUPS],
    more: Vec<(Name, Text)>,
    /// The [`Key`]s among the names, by [`Key::bit`]: the rules ask for a few keys a line
    /// that most lines lack (the connection's id, the NOFAIL flag), and a key that is not
    /// here is known absent without a look at every group.
    keys: u16,
}

/// Groups a failure line usually fills (an address, a user, a port, a flag).
const INLINE_GROUPS: usize = 4;

impl Groups {
    pub(super) fn entries(&self) -> impl Iterator<Item = &(Name, Text)> {
        self.inline.iter().flatten().chain(self.more.iter())
    }

    /// The text of the group named `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        match Key::of(k) {
            Some(key) => self.key(key),
            None => self.entries().find(|(n, _)| n.as_str() == k),
        }
        .map(|(_, v)| &**v)
    }

    /// The group a matching rule reads.
    /// The user group's text, as it is kept (cloned without copying a long name).
    pub fn user(&self) -> Option<&Text> {
        self.get_shared(Key::User)
    }

    pub(super) fn get_shared(&self, k: Key) -> Option<&Text> {
        self.key(k).map(|(_, v)| v)
    }

    fn key(&self, k: Key) -> Option<&(Name, Text)> {
        if self.keys & k.bit() == 0 {
            return None;
        }
        self.entries().find(|(n, _)| n.is(k))
    }

    pub(super) fn insert(&mut self, k: Name, v: Text) {
        let known = self
            .inline
            .iter_mut()
            .flatten()
            .chain(self.more.iter_mut())
            .find(|(n, _)| *n == k);
        if let Some(slot) = known {
            slot.1 = v;
            return;
        }
        self.push_new(k, v);
    }

    /// Add a group whose name is not among these (nothing to look for).
    pub(super) fn push_new(&mut self, k: Name, v: Text) {
        debug_assert!(self.entries().all(|(n, _)| *n != k), "{k:?} twice");
        if let Name::Known(key) = k {
            self.keys |= key.bit();
        }
        match self.inline.iter_mut().find(|e| e.is_none()) {
            Some(free) => *free = Some((k, v)),
            None => self.more.push((k, v)),
        }
    }

    /// The groups whose name `keep` accepts.
    pub(super) fn filtered(&self, keep: impl Fn(&Name) -> bool) -> Groups {
        let mut g = Groups::default();
        for (k, v) in self.entries().filter(|(k, _)| keep(k)) {
            g.push_new(k.clone(), v.clone());
        }
        g
    }

    pub(super) fn remove(&mut self, k: Key) -> Option<Text> {
        if self.keys & k.bit() == 0 {
            return None;
        }
        self.keys &= !k.bit();
        for e in &mut self.inline {
            if e.as_ref().is_some_and(|(n, _)| n.is(k)) {
                return e.take().map(|(_, v)| v);
            }
        }
        let at = self.more.iter().position(|(n, _)| n.is(k))?;
        Some(self.more.swap_remove(at).1)
    }

    pub(super) fn extend(&mut self, other: Groups) {
        for (k, v) in other.inline.into_iter().flatten().chain(other.more) {
            self.insert(k, v);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries().map(|(k, v)| (k.as_str(), &**v))
    }

    pub fn len(&self) -> usize {
        self.entries().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<(Name, Text)> for Groups {
    fn from_iter<I: IntoIterator<Item = (Name, Text)>>(iter: I) -> Self {
        let mut g = Groups::default();
        for (k, v) in iter {
            g.insert(k, v);
        }
        g
    }
}

/// The same names with the same texts, in whatever order.
impl PartialEq for Groups {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_name_and_its_text_are_one_group() {
        let mut g = Groups::default();
        g.insert(Name::new("user"), Text::from("root"));
        g.insert(Name::new("x_port"), Text::from("22"));
        assert_eq!(Name::new("user"), Name::Known(Key::User));
        assert_eq!(g.get("user"), Some("root"));
        assert_eq!(g.get_shared(Key::User).map(|t| &**t), Some("root"));
        assert_eq!(g.get("x_port"), Some("22"));
        assert_eq!(g.get("ip4"), None);
        // Inserting a name again replaces its text, whichever way the name was made.
        g.insert(Name::Known(Key::User), Text::from("admin"));
        assert_eq!(g.len(), 2);
        assert_eq!(g.remove(Key::User).as_deref(), Some("admin"));
        assert_eq!(g.get("user"), None);
        assert_eq!(g.remove(Key::User), None);
        g.insert(Name::new("user"), Text::from("again"));
        assert_eq!(g.get_shared(Key::User).map(|t| &**t), Some("again"));
        assert_eq!(g.remove(Key::User).as_deref(), Some("again"));
        let names: Vec<&str> = g.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["x_port"]);
    }

    #[test]
    fn more_groups_than_fit_inline_are_kept_and_found() {
        let g: Groups = ["a", "b", "c", "d", "e", "ip6"]
            .into_iter()
            .map(|n| (Name::new(n), Text::from(n)))
            .collect();
        assert_eq!(g.len(), 6);
        assert_eq!(g.get("e"), Some("e"));
        assert_eq!(g.get_shared(Key::Ip6).map(|t| &**t), Some("ip6"));
        let mut h = Groups::default();
        h.extend(g.clone());
        assert_eq!(h, g);
    }
}
