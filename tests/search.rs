//! `rbuild search` (issue 5, item 4): names and tags from a real registry's catalog.
//!
//! Images are put in the registry with the tests' own HTTP client: one tiny config blob
//! and a layerless OCI manifest per tag. The catalog and tag lists are all that search
//! reads, so this is enough, and cheap enough to make many repositories.

use std::time::{Duration, Instant};

use crate::imagetar::sha256_hex;
use crate::registry_util::{HttpResponse, Registry, RegistryAuth, http_request};
use crate::util::{rbuild, serve};

/// Pushes a layerless image as `repo:tag`.
fn push_tiny(reg: &Registry, repo: &str, tag: &str) {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{"Labels":{{"repo":"{repo}"}}}}}}"#
    );
    let digest = format!("sha256:{}", sha256_hex(config.as_bytes()));
    let check = |what: &str, res: &HttpResponse, want: u16| {
        assert_eq!(
            res.status,
            want,
            "{what} {repo}:{tag}: {res:?}\nlog:\n{}",
            reg.log()
        )
    };
    let req = |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
        http_request(method, &reg.addr, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    };
    let start = req("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    check("starting the upload", &start, 202);
    let location = start
        .header("Location")
        .expect("upload Location")
        .to_string();
    let path = location
        .strip_prefix(&reg.url())
        .unwrap_or(&location)
        .to_string();
    let sep = if path.contains('?') { '&' } else { '?' };
    let put = req(
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        config.as_bytes(),
    );
    check("uploading the config", &put, 201);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let put = req(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.as_bytes(),
    );
    check("putting the manifest", &put, 201);
}

/// A registry holding `images`, each a repository and its tags.
fn registry_with(name: &str, images: &[(&str, &[&str])]) -> Registry {
    let reg = Registry::start(name, RegistryAuth::Anonymous);
    for (repo, tags) in images {
        for tag in *tags {
            push_tiny(&reg, repo, tag);
        }
    }
    reg
}

/// The three repositories most tests search.
fn team_registry(name: &str) -> Registry {
    registry_with(
        name,
        &[
            ("team/app", &["2", "latest", "10", "1"]),
            ("team/db", &["15"]),
            ("other/tool", &["v1"]),
        ],
    )
}

/// Catalog requests the registry's access log shows, once it shows at least `at_least`
/// (the log line is written just after the answer, so it may trail rbuild's exit).
fn catalog_requests(reg: &Registry, at_least: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = reg
            .log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/_catalog"))
            .map(str::to_string)
            .collect();
        if lines.len() >= at_least || Instant::now() > deadline {
            // Give a request that should not have happened the time to show.
            std::thread::sleep(Duration::from_millis(300));
            return reg
                .log()
                .lines()
                .filter(|l| l.contains("\"GET /v2/_catalog"))
                .map(str::to_string)
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn search_matches_names_in_a_name_table() {
    let reg = team_registry("search-table");
    let a = &reg.addr;
    let run = rbuild(&["search", &format!("{a}/team")]).success();
    assert_eq!(
        run.stdout,
        format!("NAME\n{a}/team/app\n{a}/team/db\n"),
        "{}",
        run.stderr
    );
    // Case does not matter; the match is anywhere in the name, registry excluded.
    let run = rbuild(&["search", &format!("{a}/TOOL")]).success();
    assert_eq!(run.stdout, format!("NAME\n{a}/other/tool\n"));
    let run = rbuild(&["search", &format!("{a}/m/a")]).success();
    assert_eq!(run.stdout, format!("NAME\n{a}/team/app\n"));
    // An empty term lists everything, in catalog order.
    let run = rbuild(&["search", &format!("{a}/")]).success();
    assert_eq!(
        run.stdout,
        format!("NAME\n{a}/other/tool\n{a}/team/app\n{a}/team/db\n")
    );
    let run = rbuild(&["search", &format!("{a}/127.0.0.1")]).success();
    assert_eq!(
        run.stdout, "NAME\n",
        "the registry is not part of the match"
    );
    let run = rbuild(&["search", &format!("{a}/nothing")]).success();
    assert_eq!(run.stdout, "NAME\n");
}

#[test]
fn search_limit_and_its_range() {
    let reg = team_registry("search-limit");
    let all = format!("{}/", reg.addr);
    let run = rbuild(&["search", "--limit", "2", &all]).success();
    assert_eq!(
        run.stdout,
        format!("NAME\n{a}/other/tool\n{a}/team/app\n", a = reg.addr)
    );
    let run = rbuild(&["search", "--limit", "1", &format!("{}/team", reg.addr)]).success();
    assert_eq!(run.stdout, format!("NAME\n{}/team/app\n", reg.addr));
    // 0 means the default, as in docker.
    let run = rbuild(&["search", "--limit", "0", &all]).success();
    assert_eq!(run.stdout.lines().count(), 4, "{}", run.stdout);
    for bad in ["101", "-1"] {
        rbuild(&["search", "--limit", bad, &all])
            .failure()
            .stderr_contains(&format!("limit {bad} is outside the range of [1, 100]"));
    }
}

#[test]
fn search_list_tags_sorted_and_truncated() {
    let long: Vec<String> = (0..8).map(|i| format!("release-{i}")).collect();
    let long_refs: Vec<&str> = long.iter().map(String::as_str).collect();
    let reg = registry_with(
        "search-tags",
        &[
            ("team/app", &["2", "latest", "10", "1"]),
            ("team/db", &["15"]),
            ("team/many", &long_refs),
        ],
    );
    let a = &reg.addr;
    let run = rbuild(&["search", "--list-tags", &format!("{a}/team/")]).success();
    let all = long.join(", ");
    let cut: String = all.chars().take(44).chain(['…']).collect();
    let name_width = format!("{a}/team/many").len() + 3;
    let row = |name: &str, tags: &str| format!("{name:<name_width$}{tags}\n");
    assert_eq!(
        run.stdout,
        format!(
            "{}{}{}{}",
            row("NAME", "TAGS"),
            row(&format!("{a}/team/app"), "1, 10, 2, latest"),
            row(&format!("{a}/team/db"), "15"),
            row(&format!("{a}/team/many"), &cut),
        ),
        "{}",
        run.stderr
    );
    let run = rbuild(&[
        "search",
        "--list-tags",
        "--no-trunc",
        "--format",
        "{{.Name}}: {{.Tags}}",
        &format!("{a}/many"),
    ])
    .success();
    assert_eq!(run.stdout, format!("{a}/team/many: {all}\n"));
}

#[test]
fn search_format_templates() {
    let reg = team_registry("search-format");
    let a = &reg.addr;
    let run = rbuild(&["search", "--format", "{{.Name}}", &format!("{a}/team")]).success();
    assert_eq!(run.stdout, format!("{a}/team/app\n{a}/team/db\n"));
    // docker's other fields render as for a repository without them.
    let run = rbuild(&[
        "search",
        "--format",
        "{{.Name}}|{{.Description}}|{{.StarCount}}|{{.IsOfficial}}|{{.IsAutomated}}|{{.Tags}}",
        &format!("{a}/tool"),
    ])
    .success();
    assert_eq!(run.stdout, format!("{a}/other/tool||0|||\n"));
    let run = rbuild(&[
        "search",
        "--format",
        r"table {{.Name}}\t{{.StarCount}}",
        &format!("{a}/db"),
    ])
    .success();
    let width = format!("{a}/team/db").len() + 3;
    assert_eq!(
        run.stdout,
        format!(
            "{:<width$}STARS\n{:<width$}0\n",
            "NAME",
            format!("{a}/team/db")
        )
    );
    let run = rbuild(&[
        "search",
        "--list-tags",
        "--format",
        "json",
        &format!("{a}/db"),
    ])
    .success();
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["Name"], format!("{a}/team/db"));
    assert_eq!(v["Tags"], "15");
    rbuild(&["search", "--format", "{{.Name", &format!("{a}/db")]).failure();
}

#[test]
fn search_follows_catalog_pages() {
    let names: Vec<String> = (0..7).map(|i| format!("page/r{i}")).collect();
    let images: Vec<(&str, &[&str])> = names.iter().map(|n| (n.as_str(), &["1"][..])).collect();
    let reg = registry_with("search-pages", &images);
    let a = &reg.addr;
    let before = catalog_requests(&reg, 0).len();
    let run = rbuild(&[
        "search",
        "--page-size",
        "2",
        "--format",
        "{{.Name}}",
        &format!("{a}/"),
    ])
    .success();
    let want: String = names.iter().map(|n| format!("{a}/{n}\n")).collect();
    assert_eq!(run.stdout, want, "{}", run.stderr);
    // 7 names at 2 a page: 4 requests, the later ones from the registry's next links.
    let seen = catalog_requests(&reg, before + 4);
    let seen = &seen[before..];
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(seen[0].contains("/v2/_catalog?n=2 "), "{}", seen[0]);
    for l in &seen[1..] {
        assert!(l.contains("last=page%2Fr"), "{l}");
    }
    // The page size also comes from the environment, and a search that has its matches
    // reads no further: 3 matches are on the first 2 pages.
    let before = before + 4;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args([
            "search",
            "--limit",
            "3",
            "--format",
            "{{.Name}}",
            &format!("{a}/r"),
        ])
        .env("RBUILD_CATALOG_PAGE_SIZE", "2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{a}/page/r0\n{a}/page/r1\n{a}/page/r2\n")
    );
    let seen = catalog_requests(&reg, before + 2);
    assert_eq!(seen.len() - before, 2, "{:#?}", &seen[before..]);
}

#[test]
fn search_refuses_hostile_catalogs() {
    // A next link back to the page just read.
    let url = serve(
        2,
        "200 OK",
        "Link: </v2/_catalog?n=100>; rel=\"next\"\r\n",
        br#"{"repositories":["a"]}"#.to_vec(),
    );
    let host = url.trim_start_matches("http://");
    rbuild(&["search", &format!("{host}/")])
        .failure()
        .stderr_contains(&format!("{host} sent a next page that was already read"));
    // A next link to another host, which would receive the registry's token.
    let url = serve(
        1,
        "200 OK",
        "Link: <http://127.0.0.2:9/v2/_catalog?last=a>; rel=\"next\"\r\n",
        br#"{"repositories":["a"]}"#.to_vec(),
    );
    let host = url.trim_start_matches("http://");
    rbuild(&["search", &format!("{host}/")])
        .failure()
        .stderr_contains("sent a next link to another host (127.0.0.2:9)");
    // An empty page that claims a next one.
    let url = serve(
        1,
        "200 OK",
        "Link: </v2/_catalog?last=a&n=100>; rel=\"next\"\r\n",
        br#"{"repositories":[]}"#.to_vec(),
    );
    let host = url.trim_start_matches("http://");
    rbuild(&["search", &format!("{host}/")])
        .failure()
        .stderr_contains(&format!("{host} sent an empty page with a next link"));
    // A page over the cap.
    let mut big = br#"{"repositories":[""#.to_vec();
    big.resize(5 << 20, b'a');
    big.extend_from_slice(br#""]}"#);
    let url = serve(1, "200 OK", "", big);
    let host = url.trim_start_matches("http://");
    rbuild(&["search", &format!("{host}/")])
        .failure()
        .stderr_contains(&format!(
            "repository catalog: the answer from {host} is larger than 4194304 bytes"
        ));
    // Not a catalog at all.
    let url = serve(1, "404 Not Found", "", b"{}".to_vec());
    let host = url.trim_start_matches("http://");
    rbuild(&["search", &format!("{host}/")])
        .failure()
        .stderr_contains(&format!("{host} does not list its repositories"));
}

#[test]
fn search_of_docker_hub_says_it_has_no_catalog() {
    for term in ["ubuntu", "library/ubuntu", "docker.io/library/ubuntu"] {
        rbuild(&["search", term])
            .failure()
            .stderr_contains("rbuild search reads a registry's catalog (/v2/_catalog)")
            .stderr_contains("Docker Hub");
    }
    rbuild(&["search", "localhost:5000"])
        .failure()
        .stderr_contains("write localhost:5000/");
}

#[test]
fn search_of_a_stopped_registry_names_the_host() {
    let reg = Registry::start("search-stopped", RegistryAuth::Anonymous);
    let addr = reg.addr.clone();
    drop(reg);
    rbuild(&["search", &format!("{addr}/app")])
        .failure()
        .stderr_contains(&format!("cannot reach {addr}"));
}
