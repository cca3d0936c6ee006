//! The generated `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, and the mount
//! points the sandbox needs in the rootfs (`/proc`, `/dev`, `/etc`, the three files):
//! created only when missing and removed after the run, with the parent directories'
//! times put back, so the rootfs is left exactly as the command left it.

use std::fs;
use std::io;
use std::path::Path;

use super::stubs::Stubs;

/// The top-level directories the sandbox mounts on.
pub const DIRS: [&str; 3] = ["proc", "dev", "etc"];
/// The generated files, under `etc/`.
pub const ETC_FILES: [&str; 3] = ["hosts", "resolv.conf", "hostname"];

/// BuildKit's generated hosts file: the hostname resolves to loopback.
pub fn hosts(hostname: &str) -> String {
    format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n")
}

/// `<hostname>\n`, as hostname(5).
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// What this run added to the rootfs, and which generated files can be mounted.
#[derive(Debug, Default)]
pub struct Created {
    pub stubs: Stubs,
    /// The names of `ETC_FILES` that are regular files now and can be mounted on.
    pub usable: Vec<String>,
}

/// Makes sure `DIRS` are real directories and `ETC_FILES` exist under `etc`. A
/// symlinked directory is an error (mounting through it could leave the rootfs); a
/// symlinked file is left alone and not mounted on.
pub fn prepare(rootfs: &Path) -> io::Result<Created> {
    let mut created = Created::default();
    for d in DIRS {
        let path = rootfs.join(d);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "/{d} in the rootfs is not a directory"
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                created.stubs.create_dir(&path)?;
            }
            Err(e) => return Err(e),
        }
    }
    let etc = rootfs.join("etc");
    for name in ETC_FILES {
        let path = etc.join(name);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => created.usable.push(name.to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                created.stubs.create_file(&path)?;
                created.usable.push(name.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};
    use std::time::SystemTime;

    #[test]
    fn generated_contents() {
        assert_eq!(
            hosts("box"),
            "127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        );
        assert_eq!(hostname_file("box"), "box\n");
    }

    fn set_epoch(p: &Path) {
        File::open(p)
            .unwrap()
            .set_times(FileTimes::new().set_modified(SystemTime::UNIX_EPOCH))
            .unwrap();
    }

    #[test]
    fn missing_files_are_created_then_removed_and_times_restored() {
        let root = tempfile::tempdir().unwrap();
        for d in DIRS {
            fs::create_dir(root.path().join(d)).unwrap();
        }
        fs::write(root.path().join("etc/hosts"), "mine").unwrap();
        set_epoch(&root.path().join("etc"));
        let mut c = prepare(root.path()).unwrap();
        assert_eq!(c.usable, ETC_FILES);
        assert!(root.path().join("etc/hostname").is_file());
        c.stubs.remove().unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("etc/hosts")).unwrap(),
            "mine"
        );
        assert!(!root.path().join("etc/hostname").exists());
        assert!(!root.path().join("etc/resolv.conf").exists());
        assert_eq!(
            fs::metadata(root.path().join("etc"))
                .unwrap()
                .modified()
                .unwrap(),
            SystemTime::UNIX_EPOCH
        );
    }

    #[test]
    fn an_empty_rootfs_is_left_empty() {
        let root = tempfile::tempdir().unwrap();
        set_epoch(root.path());
        let c = prepare(root.path()).unwrap();
        assert!(root.path().join("etc/hosts").is_file() && root.path().join("proc").is_dir());
        drop(c);
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
        assert_eq!(
            fs::metadata(root.path()).unwrap().modified().unwrap(),
            SystemTime::UNIX_EPOCH
        );
    }

    #[test]
    fn symlinked_files_are_left_alone_and_symlinked_dirs_refused() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hosts", root.path().join("etc/hosts")).unwrap();
        let c = prepare(root.path()).unwrap();
        assert_eq!(c.usable, ["resolv.conf", "hostname"]);
        drop(c);
        assert!(
            fs::symlink_metadata(root.path().join("etc/hosts"))
                .unwrap()
                .is_symlink()
        );

        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", root.path().join("dev")).unwrap();
        assert!(prepare(root.path()).is_err());
    }
}
