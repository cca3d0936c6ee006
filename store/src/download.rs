//! Reading a file from an `http(s)://` URL as a stream, for `import URL` (and later
//! `ADD URL`). Registry traffic has its own client; this is a plain GET.

use std::io::Read;
use std::time::Duration;

use crate::error::StoreError;

/// A URL with any `user:password@` part removed, fit for messages and history.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}

/// Whether `s` names something to download rather than a local file.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Opens `url` for reading; a status other than 2xx is an error naming the URL.
pub fn open(url: &str) -> Result<reqwest::blocking::Response, StoreError> {
    let shown = redact(url);
    let err = |reason: String| StoreError::Download {
        url: shown.clone(),
        reason,
    };
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        // No overall timeout: a large rootfs may take long to arrive, and the blocking
        // client's timeout would cut the body off (Ctrl-C stops a stalled download).
        .timeout(None)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let resp = client
        .get(url)
        .send()
        .map_err(|e| err(e.without_url().to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(err(format!("server answered {status}")));
    }
    Ok(resp)
}

/// Opens `url` like [`open`], also returning its `Last-Modified` header as sent.
pub fn open_with_last_modified(url: &str) -> Result<(Box<dyn Read>, Option<String>), StoreError> {
    let resp = open(url)?;
    let last = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((Box::new(resp), last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_and_queries() {
        assert_eq!(
            redact("https://user:secret@example.com/x.tar?token=abc"),
            "https://example.com/x.tar"
        );
        assert_eq!(redact("not a url"), "<invalid URL>");
        assert!(is_url("http://127.0.0.1/x"));
        assert!(!is_url("/tmp/x.tar"));
    }
}
