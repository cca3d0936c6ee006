//! Every raw syscall and every `unsafe` block of the builder lives below this module,
//! behind a narrow interface; the rest of the crate is plain Rust over data.
//!
//! - `child`: the programs that run between fork(2) and execve(2) in the sandbox.
//! - `enter`: the programs that join a running container's sandbox (`exec`).
//! - `process`: fork, execve without allocating, fd closing, signal resets.
//! - `caps`: capability sets (capset(2), PR_CAPBSET_DROP).
//! - `cgroup`: a sandbox child joining its container's cgroup.
//! - `ns`: namespaces, hostname, the loopback interface.
//! - `rootfs_mounts`: executes the sandbox's mount plan and pivot_root(2).
//! - `fs`: confined path operations the parent does inside a rootfs.
//! - `mount`: mount(2) and umount2(2) of a [`mount::Mount`] computed elsewhere.
//! - `session`: a detached monitor in a session of its own; signals to containers.
//! - `pty`: the container's pseudo-terminal, and rbuild's own terminal (raw mode, size).

pub(crate) mod caps;
pub(crate) mod cgroup;
pub(crate) mod child;
pub(crate) mod enter;
pub(crate) mod fs;
pub(crate) mod mount;
pub(crate) mod ns;
pub(crate) mod process;
pub(crate) mod pty;
pub(crate) mod rootfs_mounts;
pub(crate) mod session;
