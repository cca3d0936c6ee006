use super::*;

fn edit(base: ContainerConfig, changes: &[&str]) -> Result<ContainerConfig, ConfigEditError> {
    let mut c = base;
    let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
    apply_changes(&mut c, &changes)?;
    Ok(c)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cmd_and_entrypoint_forms() {
    let c = edit(
        ContainerConfig::default(),
        &["CMD echo hi", "ENTRYPOINT [\"/init\"]"],
    )
    .unwrap();
    assert_eq!(c.cmd, Some(strs(&["/bin/sh", "-c", "echo hi"])));
    assert_eq!(c.entrypoint, Some(strs(&["/init"])));
    // ENTRYPOINT alone clears an inherited CMD, as docker's dispatcher does.
    let base = ContainerConfig {
        cmd: Some(strs(&["sh"])),
        ..ContainerConfig::default()
    };
    let c = edit(base, &["ENTRYPOINT top -b"]).unwrap();
    assert_eq!(c.cmd, None);
    assert_eq!(c.entrypoint, Some(strs(&["/bin/sh", "-c", "top -b"])));
    // Shell form honours SHELL.
    let base = ContainerConfig {
        shell: Some(strs(&["/bin/bash", "-eu", "-c"])),
        ..ContainerConfig::default()
    };
    let c = edit(base, &["CMD ls"]).unwrap();
    assert_eq!(c.cmd, Some(strs(&["/bin/bash", "-eu", "-c", "ls"])));
}

#[test]
fn env_and_label_expand_against_the_env_before_the_instruction() {
    let base = ContainerConfig {
        env: Some(strs(&["PATH=/bin", "A=old"])),
        ..ContainerConfig::default()
    };
    let c = edit(
        base,
        &[
            "ENV A=1 B=$A",
            "ENV C=${A}x PATH=$PATH:/sbin",
            "LABEL l=$C \"sp ace\"=v",
        ],
    )
    .unwrap();
    // As docker 20.10 and BuildKit: B sees A as it was before this ENV.
    assert_eq!(
        c.env,
        Some(strs(&["PATH=/bin:/sbin", "A=1", "B=old", "C=1x"]))
    );
    let labels = c.labels.unwrap();
    assert_eq!(labels["l"], "1x");
    assert_eq!(labels["sp ace"], "v");
}

#[test]
fn expose_volume_user_stopsignal() {
    let c = edit(
        ContainerConfig::default(),
        &[
            "ENV P=8080",
            "EXPOSE 80 $P/udp 9000-9002/TCP",
            "VOLUME [\"/data\", \"/logs\"]",
            "VOLUME /cache",
            "USER nobody:nogroup",
            "STOPSIGNAL SIGQUIT",
        ],
    )
    .unwrap();
    let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
    assert_eq!(
        ports,
        strs(&["80/tcp", "8080/udp", "9000/tcp", "9001/tcp", "9002/tcp"])
    );
    let vols: Vec<_> = c.volumes.unwrap().into_keys().collect();
    assert_eq!(vols, strs(&["/cache", "/data", "/logs"]));
    assert_eq!(c.user.as_deref(), Some("nobody:nogroup"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
}

#[test]
fn workdir_is_relative_to_the_previous_one() {
    let c = edit(
        ContainerConfig::default(),
        &["WORKDIR a", "WORKDIR b/../c/./d"],
    )
    .unwrap();
    assert_eq!(c.working_dir.as_deref(), Some("/a/c/d"));
    let c = edit(
        ContainerConfig::default(),
        &["WORKDIR /x/", "WORKDIR /y//z/.."],
    )
    .unwrap();
    assert_eq!(c.working_dir.as_deref(), Some("/y"));
    let c = edit(
        ContainerConfig::default(),
        &["ENV D=/srv", "WORKDIR $D/app"],
    )
    .unwrap();
    assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
}

#[test]
fn healthcheck_in_nanoseconds() {
    let c = edit(
        ContainerConfig::default(),
        &["HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/"],
    )
    .unwrap();
    let h = c.healthcheck.unwrap();
    assert_eq!(
        h.test,
        Some(strs(&["CMD-SHELL", "curl -f http://localhost/"]))
    );
    assert_eq!(h.interval, Some(5_000_000_000));
    assert_eq!(h.timeout, None);
    assert_eq!(h.retries, Some(3));
    let c = edit(ContainerConfig::default(), &["HEALTHCHECK CMD [\"true\"]"]).unwrap();
    assert_eq!(c.healthcheck.unwrap().test, Some(strs(&["CMD", "true"])));
    let c = edit(ContainerConfig::default(), &["HEALTHCHECK NONE"]).unwrap();
    assert_eq!(c.healthcheck.unwrap().test, Some(strs(&["NONE"])));
}

#[test]
fn onbuild_keeps_the_trigger_text() {
    let c = edit(
        ContainerConfig::default(),
        &["ONBUILD RUN echo $HOME", "onbuild COPY . /src"],
    )
    .unwrap();
    assert_eq!(c.on_build, Some(strs(&["RUN echo $HOME", "COPY . /src"])));
}

#[test]
fn refusals_read_like_docker() {
    let err = |changes: &[&str]| {
        edit(ContainerConfig::default(), changes)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(err(&["FROM busybox"]), "from is not a valid change command");
    assert_eq!(
        err(&["CMD x", "RUN true"]),
        "run is not a valid change command"
    );
    assert_eq!(
        err(&["SHELL [\"/bin/bash\"]"]),
        "shell is not a valid change command"
    );
    assert!(err(&["EXPOSE 80/xyz"]).contains("invalid proto: xyz"));
    assert!(err(&["EXPOSE http"]).contains("invalid containerPort: http"));
    assert!(err(&["STOPSIGNAL SIGNOPE"]).contains("invalid signal: SIGNOPE"));
    assert!(err(&["NOPE x"]).contains("not a valid change command"));
    assert!(
        err(&["ENV"]).starts_with("change:1:1:"),
        "{}",
        err(&["ENV"])
    );
    // Nothing applied when a later change is refused before any runs.
    let mut c = ContainerConfig::default();
    assert!(apply_changes(&mut c, &strs(&["USER x", "COPY a b"])).is_err());
    assert_eq!(c.user, None);
}

#[test]
fn signals() {
    for ok in ["9", "KILL", "SIGTERM", "sigusr1", "RTMIN+3", "SIGRTMAX"] {
        assert!(check_signal(ok).is_ok(), "{ok}");
    }
    for bad in ["0", "65", "SIG", "FOO", "RTMIN+x"] {
        assert!(check_signal(bad).is_err(), "{bad}");
    }
}
