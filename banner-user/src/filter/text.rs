//! A short piece of a log line kept past the line: an address, a user name, a connection's
//! id. Nearly all fit in 22 bytes and are kept inline, so a failure line's captures cost no
//! allocation to take, copy or drop (they were an `Arc<str>` each: about a fifth of the time
//! of a failure line went to allocating and freeing them and their copies); longer ones
//! share one allocation.

use std::{fmt, ops::Deref, sync::Arc};

/// Bytes kept inline: with the length and the tag, the same 24 bytes as the shared form.
const INLINE: usize = 22;

#[derive(Clone)]
pub enum Text {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Text {
    pub fn as_str(&self) -> &str {
        match self {
            Text::Inline { len, bytes } => {
                let b = &bytes[..usize::from(*len)];
                // Only `From<&str>` fills an inline text, with a whole str.
                match std::str::from_utf8(b) {
                    Ok(s) => s,
                    Err(_) => unreachable!("an inline text holds a whole str"),
                }
            }
            Text::Shared(s) => s,
        }
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Text::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Text::Shared(Arc::from(s))
        }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            Text::from(s.as_str())
        } else {
            Text::Shared(Arc::from(s))
        }
    }
}

impl From<&Text> for Arc<str> {
    fn from(t: &Text) -> Self {
        match t {
            Text::Shared(s) => s.clone(),
            Text::Inline { .. } => Arc::from(t.as_str()),
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
            assert!(matches!(t, Text::Inline { .. }), "{s}");
            assert_eq!(&*t, s);
            assert_eq!(t.clone(), Text::from(s.to_string()));
        }
        let long = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff";
        let t = Text::from(long);
        assert!(matches!(t, Text::Shared(_)));
        assert_eq!(t.as_str(), long);
        assert_eq!(&*Arc::<str>::from(&t), long);
        // Multi-byte characters up to the limit stay whole.
        let u = "ÿÿÿÿÿÿÿÿÿÿÿ";
        assert_eq!(u.len(), 22);
        assert_eq!(&*Text::from(u), u);
        assert_eq!(std::mem::size_of::<Text>(), 24);
    }
}
