//! Capability sets, capabilities(7). nix wraps none of these calls.

use nix::errno::Errno;

/// `_LINUX_CAPABILITY_VERSION_3` from <linux/capability.h>: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability not in `keep` from the bounding set (prctl(2),
/// PR_CAPBSET_DROP; needs CAP_SETPCAP). Stops at the first number the kernel does not
/// know (EINVAL), which is past CAP_LAST_CAP.
pub(crate) fn drop_bounding_except(keep: u64) -> Result<(), Errno> {
    for cap in 0..64u64 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes an integer argument and touches no memory of ours.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match Errno::result(r) {
            Ok(_) => {}
            Err(Errno::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sets effective and permitted to `set` and inheritable to empty (capset(2)), and
/// clears the ambient set (PR_CAP_AMBIENT_CLEAR_ALL). An empty inheritable set is
/// what Docker and containerd use since CVE-2022-24769.
pub(crate) fn set_process_caps(set: u64) -> Result<(), Errno> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: set as u32,
            permitted: set as u32,
            inheritable: 0,
        },
        Data {
            effective: (set >> 32) as u32,
            permitted: (set >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: header and the two-element data array have the kernel's layout for
    // version 3 (capget(2)); both outlive the call and the kernel only reads `data`.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    Errno::result(r)?;
    // SAFETY: integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    Errno::result(r).map(drop)
}
