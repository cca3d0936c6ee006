//! Pseudo-terminals for `SandboxSpec::tty`, the way runc makes a container's console:
//! the pty is allocated inside the container, from its private devpts instance (so the
//! command's `tty` says `/dev/pts/0`), and the master side is passed to rbuild over a
//! Unix socket (SCM_RIGHTS, unix(7)). Also rbuild's side: its own terminal's size, raw
//! mode, and the SIGWINCH that says the size changed.
//!
//! The `open_in_container` and `attach` halves run in sandbox children between fork(2)
//! and execve(2): syscalls over stack data only, no allocation.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::unistd::Uid;

/// A terminal's size in character cells (the pixel fields of `struct winsize` are left 0,
/// as docker leaves them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

/// The socket pair the master travels over: rbuild keeps the first end, init gets the
/// second. Both are close-on-exec, so the command never holds either.
pub(crate) fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [-1; 2];
    // SAFETY: socketpair(2) writes two descriptors into `fds`, which we then own.
    Errno::result(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// In init, after pivot_root(2): opens a new pty from the container's `/dev/ptmx`, sizes
/// it, sends the master to rbuild over `socket` and closes init's copies of the master
/// and the socket. Returns the slave (close-on-exec) for the command to `attach`.
pub(crate) fn open_in_container(socket: RawFd, size: WinSize, owner: Uid) -> Result<RawFd, Errno> {
    // O_NOCTTY: init must not get the terminal as its own controlling terminal.
    // SAFETY: open(2) of a constant C string.
    let master = Errno::result(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    let result = (|| {
        // unlockpt(3): a new pty's slave cannot be opened until it is unlocked.
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
        Errno::result(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) })?;
        set_size(master, size)?;
        // TIOCGPTPEER (Linux 4.13, ioctl_tty(2)) opens the slave through the devpts
        // instance the master came from, with no path lookup an attacker could redirect.
        // SAFETY: TIOCGPTPEER takes open(2) flags by value and returns a new descriptor.
        let slave = Errno::result(unsafe {
            libc::ioctl(
                master,
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        })?;
        // The command's user owns its terminal (runc chowns the console the same way);
        // the group stays devpts' `tty` (gid 5).
        // SAFETY: fchown(2) on a descriptor we own.
        let chown = Errno::result(unsafe { libc::fchown(slave, owner.as_raw(), u32::MAX) });
        match chown.and_then(|_| send_fd(socket, master)) {
            Ok(()) => Ok(slave),
            Err(e) => {
                // SAFETY: our own descriptor, not used again.
                unsafe { libc::close(slave) };
                Err(e)
            }
        }
    })();
    // SAFETY: our own descriptors, not used again; rbuild now holds the master.
    unsafe {
        libc::close(master);
        libc::close(socket);
    }
    result
}

/// In the command, before dropping privileges: becomes a session leader whose
/// controlling terminal is `slave` (setsid(2), then TIOCSCTTY, as login_tty(3) does), so
/// Ctrl-C typed into the pty signals the command's foreground process group, and makes
/// the slave its standard input, output and error.
pub(crate) fn attach(slave: RawFd) -> Result<(), Errno> {
    // SAFETY: setsid(2) takes no arguments; the command is not a group leader (it is a
    // fresh child of init), so it succeeds.
    Errno::result(unsafe { libc::setsid() })?;
    // SAFETY: TIOCSCTTY with arg 0: take the terminal only if it has no session yet.
    Errno::result(unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) })?;
    for to in 0..3 {
        // SAFETY: dup2(2) on descriptors we own; the copies are not close-on-exec.
        Errno::result(unsafe { libc::dup2(slave, to) })?;
    }
    Ok(())
}

/// A message of the one-byte payload `iov` with the control buffer `cmsg`, both the
/// caller's (on its stack: no allocation, as init needs).
fn header(iov: &mut libc::iovec, cmsg: &mut CmsgBuf) -> libc::msghdr {
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BYTES as _;
    msg
}

/// sendmsg(2) of one descriptor, with a one-byte payload (a stream socket carries no
/// ancillary data without data). The buffer is on the stack: this runs in init.
fn send_fd(socket: RawFd, fd: RawFd) -> Result<(), Errno> {
    let (mut cmsg, mut byte) = (CmsgBuf([0; CMSG_BYTES]), [0u8; 1]);
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let msg = header(&mut iov, &mut cmsg);
    // SAFETY: the control buffer is CMSG_SPACE(sizeof(int)) bytes, aligned for cmsghdr,
    // so CMSG_FIRSTHDR is non-null and its data has room for one int (cmsg(3)).
    unsafe {
        let hdr = libc::CMSG_FIRSTHDR(&msg);
        (*hdr).cmsg_level = libc::SOL_SOCKET;
        (*hdr).cmsg_type = libc::SCM_RIGHTS;
        (*hdr).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(hdr).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: `msg` points at live buffers for the whole call.
        match Errno::result(unsafe { libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) }) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// rbuild's end: receives the master init sent, close-on-exec. `None` when init closed
/// the socket without sending one (it failed or was killed first).
pub(crate) fn recv_fd(socket: BorrowedFd<'_>) -> Result<Option<OwnedFd>, Errno> {
    let (mut cmsg, mut byte) = (CmsgBuf([0; CMSG_BYTES]), [0u8; 1]);
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut msg = header(&mut iov, &mut cmsg);
    let n = loop {
        // SAFETY: `msg` points at live buffers for the whole call.
        match Errno::result(unsafe {
            libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC)
        }) {
            Err(Errno::EINTR) => continue,
            r => break r?,
        }
    };
    if n == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel filled `msg`; the header and data pointers stay inside `cmsg`.
    unsafe {
        let hdr = libc::CMSG_FIRSTHDR(&msg);
        if hdr.is_null()
            || (*hdr).cmsg_level != libc::SOL_SOCKET
            || (*hdr).cmsg_type != libc::SCM_RIGHTS
        {
            return Ok(None);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(hdr).cast::<RawFd>());
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}

const CMSG_BYTES: usize = 32;
const _: () = assert!(
    // SAFETY: CMSG_SPACE is pure arithmetic.
    unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize <= CMSG_BYTES
);

/// A control message buffer aligned as `struct cmsghdr` requires.
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BYTES]);

/// The size of the terminal `fd` (TIOCGWINSZ); `None` when it is not a terminal.
pub(crate) fn size(fd: BorrowedFd<'_>) -> Option<WinSize> {
    // SAFETY: winsize is plain data; all-zero is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into a valid pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(WinSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Sets a pty's size through its master (TIOCSWINSZ); the kernel sends SIGWINCH to the
/// slave's foreground process group when it changes (ioctl_tty(2)). No allocation.
pub(crate) fn set_size(master: RawFd, size: WinSize) -> Result<(), Errno> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    Errno::result(unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// rbuild's terminal in raw mode (cfmakeraw(3): no echo, no line editing, no signals
/// from Ctrl-C or Ctrl-Z, no output processing), so every key goes to the container's
/// pty, whose own line discipline does all that. The saved settings come back on drop.
pub(crate) struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// `fd` must stay open as long as the guard lives (rbuild's standard input does).
    pub(crate) fn enable(fd: BorrowedFd<'static>) -> Result<RawMode, Errno> {
        let fd = fd.as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr(3) fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a termios.
        Errno::result(unsafe { libc::tcgetattr(fd, &mut saved) })?;
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: a valid pointer to a termios.
        Errno::result(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) })?;
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some((fd, saved));
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        SAVED.lock().unwrap_or_else(|e| e.into_inner()).take();
        // SAFETY: a valid pointer to the settings saved in `enable`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The settings a live [`RawMode`] replaced, for [`restore_terminal`].
static SAVED: std::sync::Mutex<Option<(RawFd, libc::termios)>> = std::sync::Mutex::new(None);

/// Puts back the terminal settings a [`RawMode`] replaced, when rbuild exits without
/// unwinding to its drop (a second Ctrl-C or SIGTERM ends the process at once).
pub(crate) fn restore_terminal() {
    if let Some((fd, saved)) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        // SAFETY: a valid pointer to the saved settings.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
}

static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigwinch(_: libc::c_int) {
    // Only an atomic store: async-signal-safe (signal-safety(7)).
    RESIZED.store(true, Ordering::SeqCst);
}

/// Notes every SIGWINCH (rbuild's terminal changed size) for [`take_resized`]. The
/// handler is process-wide; SA_RESTART keeps other threads' reads from failing with
/// EINTR, while poll(2) still returns early (it is never restarted, signal(7)).
pub(crate) fn watch_resizes() -> Result<(), Errno> {
    // SAFETY: sigaction is plain data; the handler only stores to an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigwinch as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        Errno::result(libc::sigaction(libc::SIGWINCH, &sa, std::ptr::null_mut())).map(drop)
    }
}

/// Whether a SIGWINCH came since the last call.
pub(crate) fn take_resized() -> bool {
    RESIZED.swap(false, Ordering::SeqCst)
}

/// rbuild's standard input, borrowed for the life of the process.
pub(crate) fn stdin() -> BorrowedFd<'static> {
    // SAFETY: rbuild never closes its fd 0 (std keeps it open for the whole process).
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// rbuild's standard output, borrowed for the life of the process.
pub(crate) fn stdout() -> BorrowedFd<'static> {
    // SAFETY: as for `stdin`, with fd 1.
    unsafe { BorrowedFd::borrow_raw(1) }
}
