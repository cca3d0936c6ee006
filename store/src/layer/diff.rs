//! The first difference between two layer tars, for `rbuild build --reproducible-check`
//! to say *which file* made two builds of the same inputs differ, not only that their
//! digests do.
//!
//! Both tars are read in step, entry by entry: [`write_tar`](super::write_tar) writes a
//! tree in one fixed order, so two trees that differ only in a file's bytes or metadata
//! give tars whose entries line up until that file. Everything a layer's digest depends
//! on is compared — name, type, mode, owner, mtime, size, link target, device numbers,
//! PAX records (xattrs, long values) and the content — and the first field that differs
//! is named.

use std::fmt;
use std::io::{self, Read};

/// Where two layer tars first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDifference {
    /// The member's path as the first tar names it (`etc/motd`, `app/` for a directory),
    /// or the second's when the first has ended.
    pub path: String,
    /// What differs, with both values: `mtime 1700000000 != 1700000001`.
    pub what: String,
}

impl fmt::Display for EntryDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// The first entry where the tars `a` and `b` differ, or `None` when they hold the same
/// entries with the same metadata and bytes. An error is a tar that can't be read.
pub fn first_difference(a: impl Read, b: impl Read) -> io::Result<Option<EntryDifference>> {
    let mut a = tar::Archive::new(a);
    let mut b = tar::Archive::new(b);
    let mut ea = a.entries()?;
    let mut eb = b.entries()?;
    loop {
        let (x, y) = match (ea.next().transpose()?, eb.next().transpose()?) {
            (None, None) => return Ok(None),
            (Some(x), None) => {
                return Ok(Some(EntryDifference {
                    path: name(&x),
                    what: "only in the first".into(),
                }));
            }
            (None, Some(y)) => {
                return Ok(Some(EntryDifference {
                    path: name(&y),
                    what: "only in the second".into(),
                }));
            }
            (Some(x), Some(y)) => (x, y),
        };
        if let Some(d) = compare(x, y)? {
            return Ok(Some(d));
        }
    }
}

fn name<R: Read>(e: &tar::Entry<'_, R>) -> String {
    String::from_utf8_lossy(&e.path_bytes()).into_owned()
}

/// The PAX records of an entry, sorted (`path`, `linkpath` and `size` are compared
/// through what they set).
fn pax<R: Read>(e: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = e.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let key = String::from_utf8_lossy(ext.key_bytes()).into_owned();
            if !matches!(key.as_str(), "path" | "linkpath" | "size") {
                out.push((key, ext.value_bytes().to_vec()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn show(v: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(v))
}

fn compare<R: Read, S: Read>(
    mut x: tar::Entry<'_, R>,
    mut y: tar::Entry<'_, S>,
) -> io::Result<Option<EntryDifference>> {
    let path = name(&x);
    let other = name(&y);
    let differ = |what: String| {
        Ok(Some(EntryDifference {
            path: path.clone(),
            what,
        }))
    };
    if path != other {
        return differ(format!("the second has {other:?} in its place"));
    }
    let (hx, hy) = (x.header().clone(), y.header().clone());
    let field = |f: &dyn Fn(&tar::Header) -> io::Result<u64>| -> io::Result<(u64, u64)> {
        Ok((f(&hx)?, f(&hy)?))
    };
    if hx.entry_type() != hy.entry_type() {
        return differ(format!(
            "type {:?} != {:?}",
            hx.entry_type(),
            hy.entry_type()
        ));
    }
    let (mx, my) = field(&|h| h.mode().map(u64::from))?;
    if mx != my {
        return differ(format!("mode {mx:o} != {my:o}"));
    }
    for (label, get) in [
        (
            "uid",
            &(|h: &tar::Header| h.uid()) as &dyn Fn(&tar::Header) -> io::Result<u64>,
        ),
        ("gid", &|h: &tar::Header| h.gid()),
        ("mtime", &|h: &tar::Header| h.mtime()),
    ] {
        let (vx, vy) = field(get)?;
        if vx != vy {
            return differ(format!("{label} {vx} != {vy}"));
        }
    }
    if x.size() != y.size() {
        return differ(format!("size {} != {}", x.size(), y.size()));
    }
    let (lx, ly) = (x.link_name_bytes(), y.link_name_bytes());
    if lx != ly {
        let s = |l: Option<std::borrow::Cow<'_, [u8]>>| l.map_or("none".into(), |l| show(&l));
        return differ(format!("link target {} != {}", s(lx), s(ly)));
    }
    let dev = |h: &tar::Header| {
        (
            h.device_major().ok().flatten(),
            h.device_minor().ok().flatten(),
        )
    };
    if dev(&hx) != dev(&hy) {
        return differ(format!("device {:?} != {:?}", dev(&hx), dev(&hy)));
    }
    let (px, py) = (pax(&mut x)?, pax(&mut y)?);
    if px != py {
        // The first record (by key) that is not in both alike.
        let key = px
            .iter()
            .chain(&py)
            .filter(|r| !(px.contains(r) && py.contains(r)))
            .map(|(k, _)| k.clone())
            .min()
            .unwrap_or_default();
        let get = |p: &[(String, Vec<u8>)]| {
            p.iter()
                .find(|(k, _)| *k == key)
                .map_or("none".to_string(), |(_, v)| show(v))
        };
        return differ(format!("PAX record {key} {} != {}", get(&px), get(&py)));
    }
    let mut left = x.size();
    let mut offset = 0u64;
    let (mut bx, mut by) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    while left > 0 {
        let n = left.min(bx.len() as u64) as usize;
        x.read_exact(&mut bx[..n])?;
        y.read_exact(&mut by[..n])?;
        if let Some(i) = (0..n).find(|&i| bx[i] != by[i]) {
            return differ(format!("content differs from byte {}", offset + i as u64));
        }
        left -= n as u64;
        offset += n as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One member: (name, mode, mtime, content).
    fn tar_of(entries: &[(&str, u32, u64, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, mode, mtime, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_mode(*mode);
            h.set_mtime(*mtime);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn diff(a: &[u8], b: &[u8]) -> Option<String> {
        first_difference(a, b).unwrap().map(|d| d.to_string())
    }

    #[test]
    fn equal_tars_have_no_difference() {
        let a = tar_of(&[("a", 0o644, 1, b"x"), ("b", 0o755, 2, b"yy")]);
        assert_eq!(diff(&a, &a), None);
        assert_eq!(diff(&tar_of(&[]), &tar_of(&[])), None);
    }

    #[test]
    fn names_the_first_file_and_field_that_differ() {
        let a = tar_of(&[("a", 0o644, 1, b"x"), ("b", 0o644, 2, b"yy")]);
        let mtime = tar_of(&[("a", 0o644, 1, b"x"), ("b", 0o644, 3, b"yy")]);
        assert_eq!(diff(&a, &mtime).as_deref(), Some("b: mtime 2 != 3"));
        let mode = tar_of(&[("a", 0o600, 1, b"x"), ("b", 0o644, 3, b"yy")]);
        assert_eq!(diff(&a, &mode).as_deref(), Some("a: mode 644 != 600"));
        let content = tar_of(&[("a", 0o644, 1, b"x"), ("b", 0o644, 2, b"yz")]);
        assert_eq!(
            diff(&a, &content).as_deref(),
            Some("b: content differs from byte 1")
        );
        let size = tar_of(&[("a", 0o644, 1, b"x"), ("b", 0o644, 2, b"yyy")]);
        assert_eq!(diff(&a, &size).as_deref(), Some("b: size 2 != 3"));
        let renamed = tar_of(&[("a", 0o644, 1, b"x"), ("c", 0o644, 2, b"yy")]);
        assert_eq!(
            diff(&a, &renamed).as_deref(),
            Some("b: the second has \"c\" in its place")
        );
        let shorter = tar_of(&[("a", 0o644, 1, b"x")]);
        assert_eq!(diff(&a, &shorter).as_deref(), Some("b: only in the first"));
        assert_eq!(diff(&shorter, &a).as_deref(), Some("b: only in the second"));
    }

    #[test]
    fn content_is_compared_past_the_first_buffer() {
        let big = vec![7u8; 200_000];
        let mut other = big.clone();
        other[150_000] = 8;
        let a = tar_of(&[("f", 0o644, 0, &big)]);
        let b = tar_of(&[("f", 0o644, 0, &other)]);
        assert_eq!(
            diff(&a, &b).as_deref(),
            Some("f: content differs from byte 150000")
        );
    }

    #[test]
    fn xattrs_in_pax_records_are_compared() {
        let layer = |value: &[u8]| {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("f");
            std::fs::write(&f, "x").unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH;
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(t)
                .unwrap();
            xattr::set(&f, "user.note", value).unwrap();
            let mut out = Vec::new();
            super::super::write_tar(dir.path(), &mut out, &Default::default()).unwrap();
            out
        };
        let (a, b) = (layer(b"one"), layer(b"two"));
        assert_eq!(
            diff(&a, &b).as_deref(),
            Some("f: PAX record SCHILY.xattr.user.note \"one\" != \"two\"")
        );
    }
}
