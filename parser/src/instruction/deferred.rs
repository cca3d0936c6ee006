//! Flag values that BuildKit validates only after variable expansion.
//!
//! `COPY --chmod=$MODE` and `RUN --mount=type=cache,uid=$UID` are legal: the value is
//! known only once the build arguments are. BuildKit therefore checks them when the step
//! runs. We check them while typing whenever the text cannot change under expansion, so
//! typos are reported with their line before anything is built, and leave the rest to
//! [`super::Instruction::expand`], which validates the expanded text the same way.

use serde::Serialize;

use super::mount::{self, Mount, MountError};

/// A value as written plus, once it could be checked, its validated form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deferred<T> {
    /// The text as written in the Dockerfile (before expansion).
    pub raw: String,
    /// The validated value: `Some` when `raw` holds nothing expansion could change, and
    /// always after [`super::Instruction::expand`].
    pub value: Option<T>,
}

impl<T> Deferred<T> {
    /// Validates `raw` now unless expansion could change it.
    pub(crate) fn check<E>(raw: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<Self, E> {
        let value = if may_expand(raw) {
            None
        } else {
            Some(parse(raw)?)
        };
        Ok(Deferred {
            raw: raw.to_string(),
            value,
        })
    }

    /// The validated value, if known yet.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

impl Deferred<Mount> {
    /// Reads a `--mount` value: always makes BuildKit's pre-expansion checks (CSV syntax,
    /// no variables in `from=`), and validates it fully when no option value can change
    /// under expansion.
    pub(crate) fn mount(raw: &str) -> Result<Self, MountError> {
        let fields = mount::split_fields(raw)?;
        mount::check_unexpanded(&fields)?;
        let pending = fields
            .iter()
            .any(|f| f.value.as_deref().is_some_and(may_expand));
        let value = if pending {
            None
        } else {
            Some(Mount::from_fields(&fields)?)
        };
        Ok(Deferred {
            raw: raw.to_string(),
            value,
        })
    }

    /// The stage or image the mount reads from. Known before expansion, because BuildKit
    /// forbids variables in `from=`; the stage graph relies on it.
    pub fn from(&self) -> Option<String> {
        match &self.value {
            Some(m) => m.from.clone(),
            None => mount::split_fields(&self.raw)
                .ok()
                .and_then(|f| mount::from_of(&f)),
        }
    }
}

/// Whether single-word expansion could change `text`: it holds a variable reference,
/// a quote, or an escape character (`\`, or `` ` `` under `# escape=`` ` ``).
pub fn may_expand(text: &str) -> bool {
    text.contains(['$', '\'', '"', '\\', '`'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_plain_text_now() {
        let d = Deferred::check("12", |s| s.parse::<u8>()).unwrap();
        assert_eq!(d.get(), Some(&12));
        assert!(Deferred::check("x", |s| s.parse::<u8>()).is_err());
    }

    #[test]
    fn defers_what_expansion_could_change() {
        for raw in ["$X", "${X}", "'1'", "\"1\"", "1\\2", "1`2"] {
            let d = Deferred::check(raw, |s| s.parse::<u8>()).unwrap();
            assert_eq!(d.get(), None, "{raw}");
            assert_eq!(d.raw, raw);
        }
    }

    #[test]
    fn mounts_keep_their_from_while_pending() {
        let d = Deferred::mount("type=cache,from=base,uid=$UID,target=/c").unwrap();
        assert_eq!(d.get(), None);
        assert_eq!(d.from().as_deref(), Some("base"));
        let d = Deferred::mount("type=cache,from=base,uid=1,target=/c").unwrap();
        assert_eq!(d.get().map(|m| m.uid), Some(Some(1)));
        assert_eq!(d.from().as_deref(), Some("base"));
    }

    #[test]
    fn mounts_make_pre_expansion_checks_even_when_pending() {
        assert!(matches!(
            Deferred::mount("from=$BASE,target=/x"),
            Err(MountError::FromVariable)
        ));
        assert!(matches!(
            Deferred::mount("target=$X,a\"b"),
            Err(MountError::Csv(_))
        ));
        // Not checked until expansion: BuildKit accepts this at parse time too.
        assert!(Deferred::mount("type=$T,bogus=$X").is_ok());
        assert!(matches!(
            Deferred::mount("type=cache,bogus=1"),
            Err(MountError::UnknownKey { .. })
        ));
    }
}
