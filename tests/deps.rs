//! Keeps the crate graph pointing one way: rbuild → builder → {parser, store}.

use std::collections::{BTreeMap, BTreeSet};

#[test]
fn workspace_dependencies_point_one_way() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(crate::util::root())
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut graph = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let deps: BTreeSet<String> = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_string())
            .filter(|n| members.contains(n))
            .collect();
        graph.insert(p["name"].as_str().unwrap().to_string(), deps);
    }
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        graph["rbuild"],
        set(&["rbuild-builder"]),
        "the CLI uses the builder only"
    );
    assert_eq!(
        graph["rbuild-builder"],
        set(&["rbuild-parser", "rbuild-store"])
    );
    assert_eq!(
        graph["rbuild-parser"],
        set(&[]),
        "the parser knows no other crate"
    );
    assert_eq!(
        graph["rbuild-store"],
        set(&[]),
        "the store knows no Dockerfiles"
    );
}
