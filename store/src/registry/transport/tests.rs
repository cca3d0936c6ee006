use super::*;

#[test]
fn retry_after_is_capped_and_tolerant() {
    let mut h = HeaderMap::new();
    assert_eq!(retry_after(&h), None);
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("99999"));
    assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&h), Some(Duration::from_secs(1)));
}

#[test]
fn hub_api_host_and_origins() {
    assert_eq!(api_host("docker.io"), "registry-1.docker.io");
    assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    let a = Url::parse("http://127.0.0.1:5000/v2/").unwrap();
    let b = Url::parse("http://127.0.0.2:5000/v2/").unwrap();
    let c = Url::parse("http://127.0.0.1:5000/other?x=1").unwrap();
    assert!(!same_origin(&a, &b));
    assert!(same_origin(&a, &c));
    assert_eq!(host_label(&a), "127.0.0.1:5000");
    assert_eq!(
        redact_url("http://u:p@h:1/token?scope=x&account=u"),
        "http://h:1/token"
    );
}

#[test]
fn error_details_of_registries_and_token_servers() {
    assert_eq!(
        detail_of(br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#),
        ": UNAUTHORIZED: authentication required"
    );
    assert_eq!(
        detail_of(br#"{"details":"incorrect username or password"}"#),
        ": incorrect username or password"
    );
    assert_eq!(detail_of(br#"{"errors":[],"details":" "}"#), "");
    assert_eq!(detail_of(b"<html>502</html>"), "");
    assert_eq!(detail_of(b""), "");
}

/// A server on 127.0.0.1 that answers the n-th connection with `answers[n]` (raw
/// bytes, then closes); returns its address and a count of connections.
fn scripted_server(answers: Vec<Vec<u8>>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for (answer, stream) in answers.into_iter().zip(listener.incoming()) {
            let mut stream = stream.unwrap();
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = stream.write_all(&answer);
        }
    });
    (addr, count)
}

#[test]
fn fetch_retries_a_body_cut_short() {
    let body = br#"{"repositories":["a/b"]}"#;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let cut = [head.as_bytes(), &body[..5]].concat();
    let full = [head.as_bytes(), &body[..]].concat();
    let (addr, count) = scripted_server(vec![cut.clone(), full]);
    let mut opts = ClientOptions::new(Arc::new(|_| true), Arc::new(Anonymous));
    opts.backoff = Duration::from_millis(10);
    let client = Client::new(opts.clone()).unwrap();
    let rt = crate::registry::runtime().unwrap();
    let url = client.url(&addr, "/v2/_catalog").unwrap();
    let req = Request::new(Method::GET, &addr, url, "repository catalog");
    let (_, got) = rt.block_on(client.fetch(&req, &[200], 1 << 10)).unwrap();
    assert_eq!(&got[..], body);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);

    // Cut short every time: the error after the last try names the host.
    opts.attempts = 2;
    let client = Client::new(opts).unwrap();
    let (addr, count) = scripted_server(vec![cut.clone(), cut]);
    let url = client.url(&addr, "/v2/_catalog").unwrap();
    let req = Request::new(Method::GET, &addr, url, "repository catalog");
    let err = rt
        .block_on(client.fetch(&req, &[200], 1 << 10))
        .unwrap_err();
    assert!(matches!(err, RegistryError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let c = Client::new(ClientOptions::new(Arc::new(|_| true), Arc::new(Anonymous))).unwrap();
    let b1 = c.backoff(1);
    let b3 = c.backoff(3);
    assert!(
        b1 >= Duration::from_millis(250) && b1 < Duration::from_millis(400),
        "{b1:?}"
    );
    assert!(
        b3 >= Duration::from_millis(1000) && b3 < Duration::from_millis(1100),
        "{b3:?}"
    );
    assert!(c.backoff(30) <= Duration::from_millis(10_100));
}
