//! Where expansion reads variables from.
//!
//! The expander only needs "is NAME set, and to what"; the rest of rbuild keeps
//! variables in maps (build args) or ordered lists (a stage's `ENV` history, where
//! a later `ENV` overrides an earlier one), so both shapes implement [`Env`].

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

/// Looks up a variable for expansion. `None` means unset; `Some("")` is set but
/// empty, which `${VAR:-x}` and `${VAR-x}` treat differently.
pub trait Env {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl<K, V, S> Env for HashMap<K, V, S>
where
    K: Borrow<str> + Hash + Eq,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref)
    }
}

impl<K, V> Env for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<str>,
{
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(AsRef::as_ref)
    }
}

/// An ordered list of `(name, value)`; the *last* entry for a name wins, like
/// BuildKit's `EnvsFromSlice` over `KEY=value` strings.
impl<K, V> Env for [(K, V)]
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K, V> Env for Vec<(K, V)>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// No variables at all. With [`Lexer::keep_unset`](super::Lexer::keep_unset) this
/// gives a non-expanding pass: quotes and escapes are processed, `$VAR` stays as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_let_the_last_entry_win() {
        let env = vec![
            ("car".to_string(), "hat".to_string()),
            ("foo".to_string(), "bar".to_string()),
            ("car".to_string(), "bike".to_string()),
        ];
        assert_eq!(env.lookup("car"), Some("bike"));
        assert_eq!(env.lookup("foo"), Some("bar"));
        assert_eq!(env.lookup("nope"), None);
        let slice: &[(&str, &str)] = &[("a", ""), ("a", "2")];
        assert_eq!(slice.lookup("a"), Some("2"));
    }

    #[test]
    fn maps_distinguish_empty_from_unset() {
        let mut h: HashMap<String, String> = HashMap::new();
        h.insert("E".into(), String::new());
        assert_eq!(h.lookup("E"), Some(""));
        assert_eq!(h.lookup("X"), None);
        let b: BTreeMap<String, String> = [("K".to_string(), "v".to_string())].into();
        assert_eq!(b.lookup("K"), Some("v"));
        let by_ref: &dyn Env = &&b; // the `&T` impl
        assert_eq!(by_ref.lookup("K"), Some("v"));
        assert_eq!(EmptyEnv.lookup("K"), None);
    }
}
