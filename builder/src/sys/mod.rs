//! Every raw syscall of the builder lives below this module, behind a narrow interface;
//! the rest of the crate is plain Rust over data.
//!
//! - `mount`: mount(2) and umount2(2) of a [`mount::Mount`] computed elsewhere.

pub(crate) mod mount;
