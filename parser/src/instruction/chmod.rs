//! `COPY/ADD --chmod=`: an octal mode (`0755`, at most `07777`) or a symbolic one as
//! chmod(1) writes it (`u+x`, `go-w`, `a=r,u+w`, `g=u-w`, `+X`).
//!
//! BuildKit reads numbers with `strconv.ParseUint(s, 8, 32)` and everything else with
//! BSD's `setmode(3)` grammar (through `tonistiigi/dchapes-mode`, with a zero umask); this
//! module implements the same grammar and the same application rules, including BSD's
//! quirks (`X` only counts after `+`; `=` keeps the sticky bit unless `t` is named).

use serde::{Serialize, Serializer};

/// A validated `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chmod {
    text: String,
    mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Octal(u32),
    Symbolic(Vec<BitOp>),
}

/// Why a `--chmod` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChmodError {
    /// BuildKit's message for anything that starts like a number.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    NotOctal(String),
    /// A symbolic mode outside chmod(1)'s grammar. (BuildKit prints only "invalid syntax";
    /// the value is named here so the user can see which flag is wrong.)
    #[error("invalid chmod parameter: '{0}': invalid syntax")]
    Syntax(String),
}

impl ChmodError {
    pub fn help(&self) -> &'static str {
        "use an octal mode such as 0755 or a symbolic one such as u=rwx,go=rx"
    }
}

const SUID: u32 = 0o4000;
const SGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;
const RWXU: u32 = 0o700;
const RWXG: u32 = 0o070;
const RWXO: u32 = 0o007;
const READ: u32 = 0o444;
const WRITE: u32 = 0o222;
const EXEC: u32 = 0o111;
/// What `a` selects: everything but the sticky bit, as in BSD.
const STANDARD: u32 = SUID | SGID | RWXU | RWXG | RWXO;
/// With a zero umask every bit is allowed.
const ALL: u32 = 0o7777;

/// The permission class a copy operation (`g=u`) reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    User,
    Group,
    Other,
}

/// One compiled step of a symbolic mode, applied in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BitOp {
    Clear(u32),
    Set(u32),
    /// `+X`: set when the original mode had any execute bit, or for directories.
    SetIfExecutable(u32),
    /// `u=g`, `o+u`, `g-o`: copy one class's rwx bits onto the target classes.
    Copy {
        from: Class,
        to_user: bool,
        to_group: bool,
        to_other: bool,
        clear: bool,
        set: bool,
    },
}

impl Chmod {
    /// Validates a `--chmod` value the way BuildKit does.
    pub fn parse(text: &str) -> Result<Chmod, ChmodError> {
        let looks_numeric = text.starts_with(|c: char| c.is_ascii_digit());
        let mode = if looks_numeric {
            let all_octal = text.bytes().all(|b| (b'0'..=b'7').contains(&b));
            match u32::from_str_radix(text, 8) {
                Ok(v) if all_octal && v <= 0o7777 => Mode::Octal(v),
                _ => return Err(ChmodError::NotOctal(text.to_string())),
            }
        } else {
            Mode::Symbolic(
                compile(text.as_bytes()).ok_or_else(|| ChmodError::Syntax(text.to_string()))?,
            )
        };
        Ok(Chmod {
            text: text.to_string(),
            mode,
        })
    }

    /// The value as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The mode when it was given as a number; symbolic modes depend on each file.
    pub fn octal(&self) -> Option<u32> {
        match self.mode {
            Mode::Octal(v) => Some(v),
            Mode::Symbolic(_) => None,
        }
    }

    /// The permission bits (`0o7777` range: setuid, setgid, sticky, rwx×3) a file with
    /// permission bits `current` gets; `is_dir` matters for `X`.
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        let ops = match &self.mode {
            Mode::Octal(v) => return *v,
            Mode::Symbolic(ops) => ops,
        };
        let original = current & ALL;
        let mut mode = original;
        for op in ops {
            match *op {
                BitOp::Clear(bits) => mode &= !bits,
                BitOp::Set(bits) => mode |= bits,
                BitOp::SetIfExecutable(bits) => {
                    if original & EXEC != 0 || is_dir {
                        mode |= bits;
                    }
                }
                BitOp::Copy {
                    from,
                    to_user,
                    to_group,
                    to_other,
                    clear,
                    set,
                } => {
                    let value = match from {
                        Class::User => (mode & RWXU) >> 6,
                        Class::Group => (mode & RWXG) >> 3,
                        Class::Other => mode & RWXO,
                    };
                    let targets = [(to_user, 6), (to_group, 3), (to_other, 0)];
                    if clear {
                        // `=` empties the target class first; `-` removes only the copied bits.
                        let cleared = if set { 0o7 } else { value };
                        for (_, shift) in targets.iter().filter(|(on, _)| *on) {
                            mode &= !(cleared << shift);
                        }
                    }
                    if set {
                        for (_, shift) in targets.iter().filter(|(on, _)| *on) {
                            mode |= value << shift;
                        }
                    }
                }
            }
        }
        mode & ALL
    }
}

impl Serialize for Chmod {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Compiles a symbolic mode: clauses separated by `,`, each `[ugoa]*` followed by one or
/// more `op perms` groups (`op` is `+ - =`; `perms` are `rwxXst` or a class `ugo` to copy).
fn compile(mut s: &[u8]) -> Option<Vec<BitOp>> {
    let mut ops = Vec::new();
    let mut equal_done = false;
    loop {
        let mut who = 0u32;
        loop {
            match s.first()? {
                b'a' => who |= STANDARD,
                b'u' => who |= SUID | RWXU,
                b'g' => who |= SGID | RWXG,
                b'o' => who |= RWXO,
                _ => break,
            }
            s = &s[1..];
        }
        loop {
            let (&op, rest) = s.split_first()?;
            s = rest;
            match op {
                b'+' | b'-' => {}
                b'=' => equal_done = false,
                _ => return None,
            }
            who &= !STICKY;
            let mut perm = 0u32;
            let mut perm_x = 0u32;
            // Set-id and sticky bits mean nothing for "other" alone, so BSD ignores them there.
            let special_ok = |who: u32| who == 0 || who & !RWXO != 0;
            loop {
                match s.first() {
                    Some(b'r') => perm |= READ,
                    Some(b'w') => perm |= WRITE,
                    Some(b'x') => perm |= EXEC,
                    Some(b'X') if op == b'+' => perm_x = EXEC,
                    Some(b'X') => {}
                    Some(b's') if special_ok(who) => perm |= SUID | SGID,
                    Some(b't') if special_ok(who) => {
                        who |= STICKY;
                        perm |= STICKY;
                    }
                    Some(b's' | b't') => {}
                    Some(&class @ (b'u' | b'g' | b'o')) => {
                        if perm != 0 {
                            push_bits(&mut ops, op, who, perm);
                            perm = 0;
                        }
                        if op == b'=' {
                            equal_done = true;
                        }
                        if perm_x != 0 {
                            push_bits(&mut ops, b'X', who, perm_x);
                            perm_x = 0;
                        }
                        ops.push(copy_op(class, who, op));
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !equal_done) {
                            if op == b'=' {
                                equal_done = true;
                            }
                            push_bits(&mut ops, op, who, perm);
                        }
                        if perm_x != 0 {
                            push_bits(&mut ops, b'X', who, perm_x);
                        }
                        break;
                    }
                }
                s = &s[1..];
            }
            match s.first() {
                None => return Some(ops),
                Some(b',') => {
                    s = &s[1..];
                    break;
                }
                // Another operator for the same classes, as in `u+r-w`.
                Some(_) => {}
            }
        }
    }
}

/// Adds the set/clear steps for `op` on the classes in `who` (all classes when empty).
fn push_bits(ops: &mut Vec<BitOp>, op: u8, who: u32, perm: u32) {
    let selected = |perm: u32| if who != 0 { who & perm } else { perm };
    match op {
        b'=' => {
            ops.push(BitOp::Clear(if who != 0 { who } else { STANDARD }));
            ops.push(BitOp::Set(selected(perm)));
        }
        b'+' => ops.push(BitOp::Set(selected(perm))),
        b'-' => ops.push(BitOp::Clear(selected(perm))),
        _ => ops.push(BitOp::SetIfExecutable(selected(perm))),
    }
}

fn copy_op(class: u8, who: u32, op: u8) -> BitOp {
    let from = match class {
        b'u' => Class::User,
        b'g' => Class::Group,
        _ => Class::Other,
    };
    let all = who == 0;
    BitOp::Copy {
        from,
        to_user: all || who & 0o400 != 0,
        to_group: all || who & 0o040 != 0,
        to_other: all || who & 0o004 != 0,
        clear: op != b'+',
        set: op != b'-',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: bool = true;
    const FILE: bool = false;

    #[test]
    fn octal_values() {
        for (text, want) in [("0", 0), ("755", 0o755), ("0644", 0o644), ("07777", 0o7777)] {
            let c = Chmod::parse(text).unwrap();
            assert_eq!(c.octal(), Some(want), "{text}");
            assert_eq!(c.apply(0o123, FILE), want);
            assert_eq!(c.as_str(), text);
        }
        for text in [
            "10000",
            "017777",
            "9",
            "08",
            "0x1ff",
            "01000000000000000007777",
            "1a",
        ] {
            assert_eq!(
                Chmod::parse(text).unwrap_err().to_string(),
                format!(
                    "invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777"
                ),
            );
        }
    }

    #[test]
    fn symbolic_syntax_errors() {
        for text in [
            "", ",", "q+r", "z", "u", "g", "o", "go", "u+r,", "+755", "u+r;", "-1",
        ] {
            let err = Chmod::parse(text).unwrap_err();
            assert_eq!(
                err,
                ChmodError::Syntax(text.to_string()),
                "{text:?} should be a syntax error"
            );
        }
        assert_eq!(
            Chmod::parse("u+q").unwrap_err().to_string(),
            "invalid chmod parameter: 'u+q': invalid syntax"
        );
    }

    /// (start mode, is_dir, mode string, expected) — chmod(1) semantics with a zero umask.
    const CASES: &[(u32, bool, &str, u32)] = &[
        (0o777, FILE, "=", 0),
        (0o777, FILE, "+", 0o777),
        (0o421, FILE, "+", 0o421),
        (0o421, FILE, "-", 0o421),
        (0o421, FILE, "+t", 0o1421),
        (0o1421, FILE, "-t", 0o421),
        (0, FILE, "u+r", 0o400),
        (0, FILE, "u+w", 0o200),
        (0, FILE, "u+x", 0o100),
        (0, FILE, "u+X", 0),
        (0o001, FILE, "u+X", 0o101),
        (0, DIR, "u+X", 0o100),
        (0, FILE, "u+s", 0o4000),
        (0, FILE, "g+r", 0o040),
        (0o100, FILE, "g+X", 0o110),
        (0, DIR, "g+X", 0o010),
        (0, FILE, "g+s", 0o2000),
        (0, FILE, "o+r", 0o004),
        (0o100, FILE, "o+X", 0o101),
        (0, FILE, "o+s", 0),
        (0, FILE, "o+t", 0),
        (0, FILE, "+r", 0o444),
        (0, FILE, "+w", 0o222),
        (0, FILE, "+x", 0o111),
        (0, FILE, "+X", 0),
        (0o010, FILE, "+X", 0o111),
        (0, DIR, "+X", 0o111),
        (0, FILE, "+s", 0o6000),
        (0o777, FILE, "-r", 0o333),
        (0o777, FILE, "-w", 0o555),
        (0o777, FILE, "-x", 0o666),
        (0o777, FILE, "-X", 0o777),
        (0o777, DIR, "-X", 0o777),
        (0o6777, FILE, "-s", 0o777),
        (0o777, FILE, "u-r", 0o377),
        (0o4777, FILE, "u-s", 0o777),
        (0, FILE, "u=rw", 0o600),
        (0o777, FILE, "u=rw", 0o677),
        (0o777, FILE, "u=", 0o077),
        (0, FILE, "=rw", 0o666),
        (0o777, FILE, "=rw", 0o666),
        (0o1777, FILE, "a=rw", 0o1666),
        (0o042, FILE, "u=g", 0o442),
        (0o742, FILE, "u=g", 0o442),
        (0o722, FILE, "u=g-w", 0o022),
        (0o742, FILE, "u=g-w", 0o442),
        (0o762, FILE, "u=g-w", 0o462),
        (0o772, FILE, "u=g-w", 0o572),
        (0o021, FILE, "u+o", 0o121),
        (0o021, FILE, "u+g", 0o221),
        (0o021, FILE, "u+go", 0o321),
        (0o111, FILE, "-u", 0),
        (0o111, FILE, "-Xu", 0),
        (0, FILE, "a=r,ug=rw,u+x", 0o764),
        (0o777, FILE, "a=r,ug=rw,u+x", 0o764),
        (0, FILE, "o+r,g+w,a+t,g-s,u+og", 0o1624),
        (0o2100, FILE, "o+r,g+w,a+t,g-s,u+og", 0o1724),
        (0o6000, DIR, "o+r,g+w,a+t,g-s,u+og", 0o5624),
        (0o777, FILE, "go-w", 0o755),
        (0o666, FILE, "=rw,+X", 0o666),
        (0o766, FILE, "=rw,+X", 0o777),
        (0, FILE, "u=rwx,go=rx", 0o755),
        (0, FILE, "u=rwx,go=u-w", 0o755),
        (0o777, FILE, "go=", 0o700),
        (0o770, FILE, "go=u-w", 0o755),
        (0o670, FILE, "go=u-w", 0o644),
        (0o570, FILE, "go=u-w", 0o555),
        (0o370, FILE, "go=u-w", 0o311),
        (0o644, FILE, "u+r-w", 0o444),
        (0o600, FILE, "a=X", 0),
        (0o700, DIR, "a=X", 0),
        (0o600, DIR, "-X", 0o600),
        // dchapes-mode (hence BuildKit) honours X only after `+`, unlike GNU chmod.
        (0o600, DIR, "u=rwX", 0o600),
    ];

    #[test]
    fn symbolic_application_matches_chmod() {
        let mut failures = Vec::new();
        for &(start, is_dir, text, want) in CASES {
            match Chmod::parse(text) {
                Ok(c) => {
                    assert_eq!(c.octal(), None);
                    let got = c.apply(start, is_dir);
                    if got != want {
                        failures.push(format!(
                            "{text:?} on {start:#o} (dir={is_dir}): got {got:#o}, want {want:#o}"
                        ));
                    }
                }
                Err(e) => failures.push(format!("{text:?}: {e}")),
            }
        }
        assert_eq!(CASES.len(), 73);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn serializes_as_written() {
        let c = Chmod::parse("u+x").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"u+x\"");
    }
}
