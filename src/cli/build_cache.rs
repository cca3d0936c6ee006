//! `build --cache-from` / `--cache-to`, read as buildx reads them:
//! `type=registry,ref=R[,mode=min|max]`, `type=local,src=DIR` / `dest=DIR`, and a bare
//! reference for `type=registry,ref=`.

use std::path::PathBuf;

use rbuild_builder::build::remote_cache::{CacheLocation, CacheMode, CacheOptions, CacheTarget};
use rbuild_builder::store::ImageRef;

/// Attributes buildx accepts that change nothing here (our artifact has one format).
const IGNORED: &[&str] = &[
    "oci-mediatypes",
    "image-manifest",
    "compression",
    "compression-level",
    "force-compression",
];

/// The options for `--cache-from` (repeatable) and `--cache-to` (repeatable).
pub fn options(from: &[String], to: &[String]) -> Result<CacheOptions, String> {
    Ok(CacheOptions {
        from: from
            .iter()
            .map(|s| parse(s, "--cache-from").map(|t| t.location))
            .collect::<Result<_, _>>()?,
        to: to
            .iter()
            .map(|s| parse(s, "--cache-to"))
            .collect::<Result<_, _>>()?,
    })
}

fn parse(spec: &str, flag: &str) -> Result<CacheTarget, String> {
    let (mut kind, mut reference, mut dir, mut mode) = (None, None, None, CacheMode::Min);
    let mut ignore_error = false;
    if !spec.contains('=') {
        reference = Some(spec.to_string());
        kind = Some("registry".to_string());
    } else {
        for field in spec.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| {
                format!("{flag} {spec}: invalid field {field:?}, expected key=value")
            })?;
            match k.trim() {
                "type" => kind = Some(v.to_string()),
                "ref" => reference = Some(v.to_string()),
                "src" if flag == "--cache-from" => dir = Some(v.to_string()),
                "dest" if flag == "--cache-to" => dir = Some(v.to_string()),
                "mode" if flag == "--cache-to" => {
                    mode = match v {
                        "min" => CacheMode::Min,
                        "max" => CacheMode::Max,
                        other => {
                            return Err(format!(
                                "{flag} {spec}: invalid mode {other:?} (min or max)"
                            ));
                        }
                    }
                }
                "ignore-error" if flag == "--cache-to" => {
                    ignore_error = match v {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(format!(
                                "{flag} {spec}: invalid ignore-error {other:?} (true or false)"
                            ));
                        }
                    }
                }
                k if IGNORED.contains(&k) => {}
                other => return Err(format!("{flag} {spec}: unexpected key {other:?}")),
            }
        }
    }
    let location = match kind.as_deref() {
        Some("registry") => {
            let r = reference.ok_or_else(|| format!("{flag} {spec}: ref is required"))?;
            let r = ImageRef::parse(&r)
                .map_err(|e| format!("{flag} {spec}: invalid ref {r:?}: {e}"))?;
            CacheLocation::Registry(r.with_default_tag())
        }
        Some("local") => {
            let what = if flag == "--cache-to" { "dest" } else { "src" };
            let d = dir.ok_or_else(|| format!("{flag} {spec}: {what} is required"))?;
            CacheLocation::Local(PathBuf::from(d))
        }
        Some(other) => {
            return Err(format!(
                "{flag} {spec}: unsupported cache type {other:?} (registry or local)"
            ));
        }
        None => return Err(format!("{flag} {spec}: type is required")),
    };
    Ok(CacheTarget {
        location,
        mode,
        ignore_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_as_buildx_reads_them() {
        let o = options(
            &["localhost:5000/c:t".into(), "type=local,src=/d".into()],
            &["type=registry,ref=localhost:5000/c:t,mode=max".into()],
        )
        .unwrap();
        assert_eq!(o.from[1], CacheLocation::Local("/d".into()));
        let CacheLocation::Registry(r) = &o.from[0] else {
            panic!("{:?}", o.from[0]);
        };
        assert_eq!(r.to_string(), "localhost:5000/c:t");
        assert_eq!(o.to[0].mode, CacheMode::Max);
        assert!(!o.to[0].ignore_error);
        let o = options(&[], &["type=local,dest=/d,ignore-error=true".into()]).unwrap();
        assert!(o.to[0].ignore_error);
        assert!(options(&[], &["type=gha".into()]).is_err());
        assert!(options(&[], &["type=local,src=/d".into()]).is_err());
        assert!(options(&[], &["type=registry,ref=x,mode=all".into()]).is_err());
        assert!(options(&["type=local".into()], &[]).is_err());
    }
}
