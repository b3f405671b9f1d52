//! A short piece of a log line kept past the line: an address, a user name, a connection's
//! id. Nearly all fit in 22 bytes and are kept inline, so a failure line's captures cost no
//! allocation to take, copy or drop (they were an `Arc<str>` each: about a fifth of the time
//! of a failure line went to allocating and freeing them and their copies); longer ones
//! share one allocation.

use std::{fmt, ops::Deref, sync::Arc};

/// Bytes kept inline: with the length and the tag, the same 24 bytes as the shared form.
const INLINE: usize = 22;

#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Text {
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Read on every lookup of a line's groups: checking the bytes again each time
            // was a few percent of a failure line.
            Repr::Inline { len, bytes } => {
                // SAFETY: only `From<&str>` fills an inline text, with the bytes of a whole
                // str (`len` of them), and nothing changes them after.
                unsafe { std::str::from_utf8_unchecked(&bytes[..usize::from(*len)]) }
            }
            Repr::Shared(s) => s,
        }
    }

    #[cfg(test)]
    fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::from("")
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Text(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            Text(Repr::Shared(Arc::from(s)))
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            Text::from(s.as_str())
        } else {
            Text(Repr::Shared(Arc::from(s)))
        }
    }
}

impl From<&Text> for Arc<str> {
    fn from(t: &Text) -> Self {
        match &t.0 {
            Repr::Shared(s) => s.clone(),
            Repr::Inline { .. } => Arc::from(t.as_str()),
        }
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_inline_and_long_ones_shared() {
        for s in [
            "",
            "root",
            "198.51.100.7",
            "2001:db8:ffff:ffff::1",
            "0123456789abcdefghijkl",
        ] {
            let t = Text::from(s);
            assert!(t.is_inline(), "{s}");
            assert_eq!(&*t, s);
            assert_eq!(t.clone(), Text::from(s.to_string()));
        }
        let long = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff";
        let t = Text::from(long);
        assert!(!t.is_inline());
        assert_eq!(t.as_str(), long);
        assert_eq!(&*Arc::<str>::from(&t), long);
        // Multi-byte characters up to the limit stay whole.
        let u = "ÿÿÿÿÿÿÿÿÿÿÿ";
        assert_eq!(u.len(), 22);
        assert_eq!(&*Text::from(u), u);
        assert_eq!(std::mem::size_of::<Text>(), 24);
    }
}
