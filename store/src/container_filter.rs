//! `ps --filter`: docker's container filters that rbuild can answer (moby
//! `daemon/list.go`): `status=created|running|paused|exited` (docker's other states
//! never happen here but are accepted), `name=` (a substring of the name, as docker's regular
//! expression match does for plain text) and `id=` (an ID prefix). Values of one key
//! are ORed, keys ANDed.

use crate::containers::{Container, State};
use crate::filters::{FilterError, Filters};

const KEYS: &[&str] = &["status", "name", "id"];
const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A checked set of container filters.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter(Filters);

impl ContainerFilter {
    /// Refuses keys and statuses docker refuses, with its texts.
    pub fn new(filters: Filters) -> Result<ContainerFilter, FilterError> {
        filters.validate(KEYS)?;
        if let Some(bad) = filters
            .get("status")
            .iter()
            .find(|s| !STATUSES.contains(&s.as_str()))
        {
            return Err(FilterError::Other(format!("invalid filter 'status={bad}'")));
        }
        Ok(ContainerFilter(filters))
    }

    /// True when a status filter is given: docker's `ps` then lists stopped ones too.
    pub fn has_status(&self) -> bool {
        self.0.contains("status")
    }

    /// `paused`: the running container `c` is frozen (the store cannot tell).
    pub fn matches(&self, c: &Container, paused: bool) -> bool {
        let any = |key: &str, f: &dyn Fn(&str) -> bool| {
            let values = self.0.get(key);
            values.is_empty() || values.iter().any(|v| f(v))
        };
        let state = match c.state {
            State::Created => "created",
            State::Running if paused => "paused",
            State::Running => "running",
            State::Exited => "exited",
        };
        any("status", &|v| v == state)
            && any("name", &|v| c.name.contains(v.trim_start_matches('/')))
            && any("id", &|v| c.id.starts_with(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn container(name: &str, id: &str, state: State) -> Container {
        Container {
            id: id.repeat(64 / id.len()),
            name: name.into(),
            image_id: Digest::of(b""),
            created: 0,
            command: vec![],
            state,
            exit_code: None,
            pid: None,
            init_pid: None,
            started_at: None,
            finished_at: None,
        }
    }

    fn filter(args: &[&str]) -> Result<ContainerFilter, FilterError> {
        ContainerFilter::new(Filters::parse(args)?)
    }

    #[test]
    fn same_keys_or_and_different_keys_and() {
        let web = container("web", "ab", State::Running);
        let db = container("db", "cd", State::Exited);
        let f = filter(&["status=running", "status=exited"]).unwrap();
        assert!(f.matches(&web, false) && f.matches(&db, false));
        let f = filter(&["status=exited", "name=web"]).unwrap();
        assert!(!f.matches(&web, false) && !f.matches(&db, false));
        let f = filter(&["id=cdc", "name=d"]).unwrap();
        assert!(f.matches(&db, false) && !f.matches(&web, false));
        assert!(filter(&[]).unwrap().matches(&web, false));
    }

    #[test]
    fn bad_filters_get_dockers_errors() {
        let e = filter(&["foo=bar"]).unwrap_err().to_string();
        assert_eq!(e, "invalid filter 'foo'");
        let e = filter(&["status=bogus"]).unwrap_err().to_string();
        assert_eq!(e, "invalid filter 'status=bogus'");
        let e = filter(&["status"]).unwrap_err().to_string();
        assert_eq!(e, "bad format of filter (expected name=value)");
    }
}
