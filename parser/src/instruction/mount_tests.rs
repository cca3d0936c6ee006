use super::*;

fn ok(spec: &str) -> Mount {
    Mount::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn err(spec: &str) -> String {
    match Mount::parse(spec) {
        Ok(m) => panic!("{spec} should fail, got {m:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bind_defaults_and_options() {
    let m = ok("target=/src");
    assert_eq!(m.kind, MountType::Bind);
    assert_eq!(m.target.as_deref(), Some("/src"));
    assert!(m.readonly, "bind mounts are read-only by default");
    let m = ok("type=bind,from=builder,source=/out,dst=/in,rw");
    assert_eq!(m.from.as_deref(), Some("builder"));
    assert_eq!(m.source.as_deref(), Some("/out"));
    assert_eq!(m.target.as_deref(), Some("/in"));
    assert!(!m.readonly);
    assert_eq!(
        ok("type=bind,src=a,destination=/b").source.as_deref(),
        Some("a")
    );
    assert_eq!(
        ok("type=bind,src=a,destination=/b").target.as_deref(),
        Some("/b")
    );
    assert!(!ok("target=/x,readwrite").readonly);
    assert!(!ok("target=/x,readwrite=true").readonly);
    assert!(ok("target=/x,readwrite=false").readonly);
    assert!(ok("target=/x,rw,ro").readonly, "last one wins");
    assert!(!ok("target=/x,ro=0").readonly);
    assert!(ok("target=/x,readonly=T").readonly);
    assert_eq!(ok("target=/x").sharing_or_default(), None);
}

#[test]
fn keys_and_types_are_case_insensitive() {
    let m = ok("TYPE=CACHE,Target=/c,SHARING=Locked");
    assert_eq!(m.kind, MountType::Cache);
    assert_eq!(m.sharing, Some(Sharing::Locked));
    assert_eq!(m.target.as_deref(), Some("/c"));
}

#[test]
fn cache_defaults() {
    let m = ok("type=cache,target=/root/.cache/");
    assert!(!m.readonly, "cache mounts are writable by default");
    assert_eq!(m.sharing, None);
    assert_eq!(m.sharing_or_default(), Some(Sharing::Shared));
    assert_eq!(m.cache_id().as_deref(), Some("/root/.cache"));
    assert_eq!(m.file_mode(), None);
    let m = ok("type=cache,target=/c,id=go,sharing=private,uid=1000,gid=1001");
    assert_eq!(m.cache_id().as_deref(), Some("go"));
    assert_eq!(m.sharing_or_default(), Some(Sharing::Private));
    assert_eq!((m.uid, m.gid), (Some(1000), Some(1001)));
    assert_eq!(m.file_mode(), Some(0o755), "BuildKit's mode for cache dirs");
    assert_eq!(
        ok("type=cache,target=/c,mode=0700").file_mode(),
        Some(0o700)
    );
    assert_eq!(ok("type=cache,target=/c,mode=777").mode, Some(0o777));
    assert!(ok("type=cache,target=/c,ro").readonly);
    assert_eq!(
        ok("type=cache,target=a/../b/./c").cache_id().as_deref(),
        Some("b/c")
    );
}

#[test]
fn tmpfs_size_units() {
    let m = ok("type=tmpfs,target=/t");
    assert!(!m.readonly);
    assert_eq!(m.size, None);
    assert_eq!(ok("type=tmpfs,target=/t,size=64m").size, Some(64 << 20));
    assert_eq!(ok("type=tmpfs,target=/t,size=1GiB").size, Some(1 << 30));
    assert_eq!(ok("type=tmpfs,target=/t,size=1000").size, Some(1000));
    assert_eq!(
        err("type=tmpfs,target=/t,size=lots"),
        "invalid value for size: lots"
    );
    assert_eq!(
        err("type=cache,target=/t,size=1m"),
        "unexpected key 'size' for mount type 'cache'"
    );
    assert_eq!(
        err("size=1m,type=tmpfs"),
        "unexpected key 'size' for mount type 'bind'",
        "options are read in order, before the type is known"
    );
}

#[test]
fn secret_rules_and_defaults() {
    let m = ok("type=secret,id=token");
    assert!(m.readonly);
    assert!(!m.required);
    assert_eq!(m.secret_id().as_deref(), Some("token"));
    assert_eq!(m.secret_path().as_deref(), Some("/run/secrets/token"));
    let m = ok("type=secret,target=/etc/creds.json,required");
    assert!(m.required);
    assert_eq!(m.secret_id().as_deref(), Some("creds.json"));
    assert_eq!(m.secret_path().as_deref(), Some("/etc/creds.json"));
    let m = ok("type=secret,source=aws,env=AWS_KEY,required=false");
    assert_eq!(m.secret_id().as_deref(), Some("aws"));
    assert_eq!(m.env.as_deref(), Some("AWS_KEY"));
    assert_eq!(m.secret_path(), None, "env-only secrets have no file");
    assert!(!m.required);
    let m = ok("type=secret,id=k,uid=1,mode=0440");
    assert_eq!(m.file_mode(), Some(0o440));
    assert_eq!(ok("type=secret,id=k,uid=1").file_mode(), Some(0o400));

    assert_eq!(
        err("type=secret,id=a,from=x"),
        "secret mount should not have a from"
    );
    assert_eq!(
        err("type=secret,id=a,sharing=locked"),
        "secret mount should not define sharing"
    );
    assert_eq!(
        err("type=secret"),
        "invalid secret mount. one of source, target required"
    );
    assert_eq!(
        err("type=secret,env=X"),
        "invalid secret mount. one of source, target required"
    );
    assert_eq!(
        err("type=secret,source=a,id=b"),
        "both source and id can't be set"
    );
    assert_eq!(
        err("type=secret,id=a,required=maybe"),
        "invalid value for required: maybe"
    );
}

#[test]
fn ssh_rules_and_defaults() {
    let m = ok("type=ssh");
    assert!(m.readonly);
    assert_eq!(m.ssh_id().as_deref(), Some("default"));
    assert_eq!(m.file_mode(), None);
    let m = ok("type=ssh,id=github,target=/run/agent.sock,required,mode=0666,uid=5");
    assert_eq!(m.ssh_id().as_deref(), Some("github"));
    assert!(m.required);
    assert_eq!(m.file_mode(), Some(0o666));
    assert_eq!(ok("type=ssh,gid=3").file_mode(), Some(0o600));
    assert_eq!(err("type=ssh,source=x"), "ssh does not support source");
    assert_eq!(m.secret_id(), None);
    assert_eq!(m.cache_id(), None);
}

#[test]
fn required_only_for_secret_and_ssh() {
    assert_eq!(
        err("type=cache,target=/c,required"),
        "unexpected key 'required' for mount type 'cache'"
    );
    assert_eq!(
        err("type=bind,target=/c,required=true"),
        "unexpected key 'required' for mount type 'bind'"
    );
    assert_eq!(
        err("required,type=secret,id=x"),
        "unexpected key 'required' for mount type 'bind'"
    );
}

#[test]
fn file_info_only_for_cache_secret_ssh() {
    assert_eq!(
        err("type=bind,target=/x,mode=0755"),
        "mode not allowed for \"bind\" type mounts"
    );
    assert_eq!(
        err("type=tmpfs,target=/x,uid=1"),
        "uid not allowed for \"tmpfs\" type mounts"
    );
    assert_eq!(
        err("target=/x,gid=1"),
        "gid not allowed for \"bind\" type mounts"
    );
}

#[test]
fn numbers_are_validated() {
    assert_eq!(
        err("type=cache,target=/c,mode=0789"),
        "invalid value 0789 for mode"
    );
    assert_eq!(
        err("type=cache,target=/c,uid=-1"),
        "invalid value -1 for uid"
    );
    assert_eq!(
        err("type=cache,target=/c,uid=+1"),
        "invalid value +1 for uid"
    );
    assert_eq!(
        err("type=cache,target=/c,gid=4294967296"),
        "invalid value 4294967296 for gid"
    );
    assert_eq!(err("type=cache,target=/c,gid="), "invalid value  for gid");
    assert_eq!(err("target=/x,ro=yes"), "invalid value for ro: yes");
    assert_eq!(
        err("target=/x,readwrite=nope"),
        "invalid value for readwrite: nope"
    );
}

#[test]
fn sharing_rules() {
    assert_eq!(
        err("type=bind,target=/x,sharing=shared"),
        "invalid cache sharing set for bind mount"
    );
    let e = Mount::parse("type=cache,target=/x,sharing=lockd").unwrap_err();
    assert_eq!(e.to_string(), "unsupported sharing value \"lockd\"");
    assert_eq!(e.help().as_deref(), Some("did you mean locked?"));
}

#[test]
fn unknown_types_and_keys() {
    let e = Mount::parse("type=bnid,target=/x").unwrap_err();
    assert_eq!(e.to_string(), "unsupported mount type \"bnid\"");
    assert_eq!(e.help().as_deref(), Some("did you mean bind?"));
    let e = Mount::parse("type=volume").unwrap_err();
    assert_eq!(
        e.help().as_deref(),
        Some("mount types: bind, cache, tmpfs, secret, ssh")
    );
    let e = Mount::parse("type=cache,traget=/x").unwrap_err();
    assert_eq!(e.to_string(), "unexpected key 'traget' in 'traget=/x'");
    assert_eq!(e.help().as_deref(), Some("did you mean target?"));
    let e = Mount::parse("type=cache,Bogus=1").unwrap_err();
    assert_eq!(e.to_string(), "unexpected key 'bogus' in 'Bogus=1'");
    assert_eq!(
        err("type=cache,target=/x,nope"),
        "invalid field 'nope' must be a key=value pair"
    );
    assert_eq!(
        err("type=cache,,target=/x"),
        "invalid field '' must be a key=value pair"
    );
}

#[test]
fn empty_values_count_as_unset() {
    let m = ok("type=cache,target=/x,id=,from=");
    assert_eq!(m.id, None);
    assert_eq!(m.from, None);
    assert_eq!(m.cache_id().as_deref(), Some("/x"));
    assert_eq!(ok("type=secret,id=a,env=").env.as_deref(), Some(""));
}

#[test]
fn csv_quoting() {
    let m = ok("type=bind,\"target=/a,b\",source=x");
    assert_eq!(m.target.as_deref(), Some("/a,b"));
    let m = ok("type=bind,\"target=/say \"\"hi\"\"\"");
    assert_eq!(m.target.as_deref(), Some("/say \"hi\""));
    assert_eq!(err(""), "failed to parse csv mounts: EOF");
    assert_eq!(
        err("type=bind,target=/a\"b"),
        "failed to parse csv mounts: parse error on line 1, column 20: bare \" in non-quoted-field"
    );
    assert_eq!(
        err("\"target=/x"),
        "failed to parse csv mounts: parse error on line 1, column 2: extraneous or missing \" in quoted-field"
    );
    assert_eq!(
        err("\"target=/x\"y"),
        "failed to parse csv mounts: parse error on line 1, column 11: extraneous or missing \" in quoted-field"
    );
}

#[test]
fn from_checks_before_expansion() {
    let fields = split_fields("type=bind,from=$STAGE,target=/x").unwrap();
    assert_eq!(
        check_unexpanded(&fields).unwrap_err().to_string(),
        "'from' doesn't support variable expansion, define alias stage instead"
    );
    let fields = split_fields("type=bind,from=stage$,target=/x").unwrap();
    assert!(check_unexpanded(&fields).is_ok(), "a trailing $ is literal");
    assert_eq!(from_of(&fields).as_deref(), Some("stage$"));
    let fields = split_fields("from=a,target=$T,from=b").unwrap();
    assert!(check_unexpanded(&fields).is_ok());
    assert_eq!(from_of(&fields).as_deref(), Some("b"));
    assert_eq!(from_of(&split_fields("target=/x").unwrap()), None);
}

#[test]
fn path_helpers_follow_go() {
    for (input, want) in [
        ("", "."),
        ("/", "/"),
        ("a/b/", "a/b"),
        ("/../a", "/a"),
        ("../a/..", ".."),
        ("a//b/./c/..", "a/b"),
    ] {
        assert_eq!(clean_path(input), want, "{input}");
    }
    for (input, want) in [("", "."), ("///", "/"), ("/a/b/", "b"), ("x", "x")] {
        assert_eq!(base_name(input), want, "{input}");
    }
}

#[test]
fn serializes_with_lowercase_type() {
    let json = serde_json::to_value(ok("type=cache,target=/c,sharing=locked")).unwrap();
    assert_eq!(json["type"], "cache");
    assert_eq!(json["sharing"], "locked");
    assert_eq!(json["readonly"], false);
}
