//! Registry client (issue 5), against a real `docker-registry` on 127.0.0.1.

use crate::registry_util::{Registry, RegistryAuth};

/// The harness itself: the registry starts on its own port and speaks distribution v2.
#[test]
fn registry_harness_answers_v2() {
    let reg = Registry::start("smoke", RegistryAuth::Anonymous);
    let res = reg.get("/v2/");
    assert_eq!(res.status, 200, "{res:?}\nlog:\n{}", reg.log());
    assert_eq!(
        res.header("Docker-Distribution-API-Version"),
        Some("registry/2.0"),
        "{res:?}"
    );
    assert_eq!(res.body, b"{}", "{res:?}");
    // Its storage is the test's own, not the system registry's.
    assert!(reg.dir.0.join("storage").is_dir());
    let addr = reg.addr.clone();
    drop(reg);
    assert!(
        crate::registry_util::http_get(&addr, "/v2/").is_err(),
        "the registry on {addr} still answers after drop"
    );
}
