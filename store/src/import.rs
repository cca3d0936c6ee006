//! `import`: a one-layer image from a root file system tar, as `docker import` makes.

use std::io::Read;

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::digest::Digest;
use crate::error::StoreError;
use crate::images::NewImage;
use crate::platform;
use crate::store::Store;
use crate::unpack::LayerSource;

/// What to put in the imported image's config besides its one layer.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// The container config (`-c` changes already applied).
    pub config: ContainerConfig,
    /// `-m`; Docker's default is "Imported from <source>".
    pub comment: Option<String>,
    /// RFC 3339 creation time; now when `None`.
    pub created: Option<String>,
}

impl Store {
    /// Stores the tar read from `r` (plain, gzip or zstd) as a layer and records an
    /// image with it; `what` names the source in errors and the default comment.
    pub fn import(
        &self,
        r: impl Read,
        what: &str,
        opts: ImportOptions,
    ) -> Result<Digest, StoreError> {
        let _lock = self.write_lock()?;
        let layer = self.add_layer(
            r,
            &LayerSource {
                what,
                ..LayerSource::default()
            },
        )?;
        let created = opts.created.unwrap_or_else(rfc3339_now);
        let comment = opts
            .comment
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("Imported from {what}"));
        let config = ImageConfig {
            architecture: platform::native_arch().to_string(),
            os: platform::native_os().to_string(),
            created: Some(created.clone()),
            // Docker writes the message both here (`inspect`'s Comment) and in history.
            comment: Some(comment.clone()),
            config: Some(opts.config),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id],
            },
            history: vec![History {
                created: Some(created),
                comment: Some(comment),
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        let bytes = config.to_vec();
        self.create_image(&bytes, &NewImage::default())
    }
}

/// Now, as Docker writes times: RFC 3339, UTC, nanoseconds without trailing zeros.
pub fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
