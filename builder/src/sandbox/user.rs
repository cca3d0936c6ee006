//! `USER` resolution against the rootfs' `/etc/passwd` and `/etc/group`, with the
//! semantics of moby/sys `user.GetExecUser` (what runc, and so BuildKit, use):
//!
//! - `""` is uid 0; a passwd entry with uid 0 gives its name, gid and home.
//! - `name` must exist in passwd; `uid` may be absent (gid is then 0).
//! - Supplementary groups are the /etc/group entries that list the matched user name,
//!   and only when no group was given: `user:group` sets the primary gid and no others.
//! - The primary gid is always the first of the groups given to setgroups(2), as
//!   containerd, moby and BuildKit do since CVE-2023-25173 (otherwise a process could
//!   drop it with setgroups and get past group-deny permissions).
//! - `group` is a name (must exist) or a number (may be absent).
//! - Numbers are checked: decimal digits only, at most `i32::MAX` (the OCI runtimes'
//!   limit, see containerd commit de1341c2), never wrapped or truncated.

use std::fmt;

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Exactly what `setgroups(2)` receives: the primary gid, then the others.
    pub groups: Vec<u32>,
    /// From passwd, for `HOME` when the environment has none.
    pub home: Option<String>,
}

/// Why a `USER` value could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    NoSuchUser(String),
    NoSuchGroup(String),
    OutOfRange(String),
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::NoSuchUser(u) => write!(
                f,
                "unable to find user {u}: no matching entries in passwd file"
            ),
            UserError::NoSuchGroup(g) => write!(
                f,
                "unable to find group {g}: no matching entries in group file"
            ),
            UserError::OutOfRange(n) => write!(f, "id {n} is out of range (0..={})", i32::MAX),
        }
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// `Some(n)` for an all-digit string, `Err` when it is all digits but too big, `None`
/// when it is a name.
fn numeric(s: &str) -> Result<Option<u32>, UserError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if n <= i32::MAX as u32 => Ok(Some(n)),
        _ => Err(UserError::OutOfRange(s.to_string())),
    }
}

/// passwd(5): `name:password:UID:GID:GECOS:directory:shell`. Lines whose ids are not
/// valid numbers are skipped, as libc's parsers skip them.
fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        let uid = numeric(f.get(2)?).ok()??;
        let gid = numeric(f.get(3)?).ok()??;
        Some(PasswdEntry {
            name: f[0],
            uid,
            gid,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

/// group(5): `group_name:password:GID:user_list`.
fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        let gid = numeric(f.get(2)?).ok()??;
        let members = f
            .get(3)
            .map(|l| {
                l.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Some(GroupEntry {
            name: f[0],
            gid,
            members,
        })
    })
}

/// Resolves a `USER` value. `passwd`/`group` are the files' contents, `None` when the
/// rootfs has no such file (then only numbers resolve).
pub fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let group_part = group_part.filter(|g| !g.is_empty());
    let user_num = numeric(user_part)?;
    let group_num = match group_part {
        Some(g) => numeric(g)?,
        None => None,
    };

    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        home: None,
    };
    let found = passwd.and_then(|text| {
        passwd_entries(text).find(|e| {
            if user_part.is_empty() {
                e.uid == 0
            } else {
                e.name == user_part || user_num == Some(e.uid)
            }
        })
    });
    let matched_name = match found {
        Some(e) => {
            out.uid = e.uid;
            out.gid = e.gid;
            out.home = Some(e.home.to_string()).filter(|h| !h.is_empty());
            Some(e.name.to_string())
        }
        None if user_part.is_empty() => None,
        None => match user_num {
            Some(uid) => {
                out.uid = uid;
                None
            }
            None => return Err(UserError::NoSuchUser(user_part.to_string())),
        },
    };

    match group_part {
        Some(g) => {
            let entry = group.and_then(|text| {
                group_entries(text).find(|e| e.name == g || group_num == Some(e.gid))
            });
            out.gid = match (entry, group_num) {
                (Some(e), _) => e.gid,
                (None, Some(n)) => n,
                (None, None) => return Err(UserError::NoSuchGroup(g.to_string())),
            };
        }
        None => {
            if let (Some(name), Some(text)) = (&matched_name, group) {
                out.groups = group_entries(text)
                    .filter(|e| e.members.contains(&name.as_str()))
                    .map(|e| e.gid)
                    .collect();
            }
        }
    }
    out.groups.retain(|g| *g != out.gid);
    out.groups.insert(0, out.gid);
    let mut seen = std::collections::HashSet::new();
    out.groups.retain(|g| seen.insert(*g));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken:x:notanumber:1::/:/bin/sh\n\
        huge:x:4294967296:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:root,app\n\
        audio:x:29: app , other\n\
        app:x:1000:\n\
        staff:x:50:\n";

    fn r(spec: &str) -> Result<ExecUser, UserError> {
        resolve(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_is_root_with_roots_groups() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.groups), (0, 0, vec![0, 10]));
        assert_eq!(u.home.as_deref(), Some("/root"));
    }

    #[test]
    fn name_gives_passwd_ids_and_exact_member_groups() {
        let u = r("app").unwrap();
        assert_eq!((u.uid, u.gid, u.groups), (1000, 1000, vec![1000, 10, 29]));
    }

    #[test]
    fn number_matching_an_entry_is_that_user() {
        assert_eq!(r("1000").unwrap(), r("app").unwrap());
    }

    #[test]
    fn unknown_number_is_allowed_with_gid_0() {
        let u = r("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.groups, u.home), (4242, 0, vec![0], None));
    }

    #[test]
    fn explicit_group_replaces_supplementary_groups() {
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid, u.groups), (1000, 50, vec![50]));
        let u = r("app:7").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 7));
        let u = r("4242:29").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 29));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(r("nobody"), Err(UserError::NoSuchUser("nobody".into())));
        assert_eq!(
            r("app:nogroup"),
            Err(UserError::NoSuchGroup("nogroup".into()))
        );
    }

    #[test]
    fn numbers_are_checked_not_wrapped() {
        assert_eq!(
            r("4294967296"),
            Err(UserError::OutOfRange("4294967296".into()))
        );
        assert_eq!(
            r("2147483648"),
            Err(UserError::OutOfRange("2147483648".into()))
        );
        assert_eq!(
            r("0:99999999999"),
            Err(UserError::OutOfRange("99999999999".into()))
        );
        assert_eq!(r("2147483647").unwrap().uid, 2147483647);
        // "-1" and "+5" are names, not numbers, and no such names exist.
        assert!(matches!(r("-1"), Err(UserError::NoSuchUser(_))));
        assert!(matches!(r("+5"), Err(UserError::NoSuchUser(_))));
    }

    #[test]
    fn missing_files_allow_only_numbers() {
        let u = resolve("", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.groups), (0, 0, vec![0]));
        assert_eq!(resolve("12:34", None, None).unwrap().gid, 34);
        assert!(resolve("app", None, None).is_err());
    }
}
