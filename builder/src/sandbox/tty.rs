//! rbuild's side of a sandbox run with a terminal (`SandboxSpec::tty`, `run -t`): takes
//! the pty's master from init, copies what the container writes to it to the output
//! callback (stdout and stderr arrive merged, as with docker) and, with `stdin`,
//! rbuild's standard input to it.
//!
//! When that input is a terminal it is put in raw mode for the whole run, so Ctrl-C is
//! the byte 0x03 that the container's own line discipline turns into SIGINT for its
//! foreground process group: Ctrl-C goes to the container, not to rbuild. The settings
//! come back when the relay is dropped, on every return path. The pty's size starts as
//! rbuild's terminal's and follows it on SIGWINCH.

use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use crate::sys::pty::{self, RawMode, WinSize};

/// The parent's half of the terminal, polled by the sandbox's output loop.
pub(crate) struct Relay {
    /// Until init sends the master (or closes the socket having failed).
    socket: Option<OwnedFd>,
    master: Option<OwnedFd>,
    /// rbuild's standard input is copied to the master (`run -i`), until it ends.
    input: bool,
    /// The terminal whose size the pty follows: rbuild's stdin, else its stdout.
    size_from: Option<BorrowedFd<'static>>,
    /// Declared last: restored after the master is closed.
    _raw: Option<RawMode>,
}

/// What the children need: the socket's other end and the pty's first size.
pub(crate) struct ChildEnd {
    pub socket: OwnedFd,
    pub size: WinSize,
}

impl Relay {
    pub(crate) fn prepare(input: bool) -> Result<(Relay, ChildEnd), Errno> {
        let (socket, child) = pty::socketpair()?;
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let size_from = if stdin.is_terminal() {
            Some(pty::stdin())
        } else if stdout.is_terminal() {
            Some(pty::stdout())
        } else {
            None
        };
        // With no terminal at all the pty is 0x0, as docker leaves it.
        let size = size_from.and_then(pty::size).unwrap_or_default();
        if size_from.is_some() {
            pty::watch_resizes()?;
        }
        let raw = if input && stdin.is_terminal() {
            Some(RawMode::enable(pty::stdin())?)
        } else {
            None
        };
        let relay = Relay {
            socket: Some(socket),
            master: None,
            input,
            size_from,
            _raw: raw,
        };
        Ok((
            relay,
            ChildEnd {
                socket: child,
                size,
            },
        ))
    }

    /// Whether the container may still write: the loop runs until this is false.
    pub(crate) fn open(&self) -> bool {
        self.socket.is_some() || self.master.is_some()
    }

    /// The descriptors to poll, in the order [`Relay::service`] expects their readiness.
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v: Vec<BorrowedFd<'_>> = Vec::with_capacity(3);
        v.extend(self.socket.as_ref().map(|s| s.as_fd()));
        v.extend(self.master.as_ref().map(|m| m.as_fd()));
        if self.input && self.master.is_some() {
            v.push(pty::stdin());
        }
        v
    }

    /// Handles the descriptors `ready` marks (one flag per [`Relay::fds`] entry).
    pub(crate) fn service(
        &mut self,
        ready: &[bool],
        buf: &mut [u8],
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Errno> {
        let mut ready = ready.iter().copied();
        let forwarding = self.input && self.master.is_some();
        if let Some(socket) = &self.socket
            && ready.next().unwrap_or(false)
        {
            // A master, or the end of the socket: either way it has served.
            self.master = pty::recv_fd(socket.as_fd())?;
            self.socket = None;
            // A resize between our first size and now would otherwise be missed.
            self.follow_size();
            return Ok(());
        }
        if let Some(master) = &self.master
            && ready.next().unwrap_or(false)
        {
            match nix::unistd::read(master, buf) {
                // EIO: every slave descriptor is closed, the container is gone (pty(7)).
                Ok(0) | Err(Errno::EIO) => self.master = None,
                Ok(n) => output(&buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
        if forwarding && ready.next().unwrap_or(false) {
            match nix::unistd::read(pty::stdin(), buf) {
                Ok(0) => self.input = false,
                Ok(n) => {
                    if let Some(master) = &self.master {
                        // Blocking writes are fine for typed input; the pty takes 4 KiB
                        // before the container must read. A container that is gone
                        // (EIO) just loses it.
                        let _ = write_all(master.as_fd(), &buf[..n]);
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(_) => self.input = false,
            }
        }
        Ok(())
    }

    /// After a SIGWINCH: our terminal's new size onto the pty, which sends SIGWINCH to
    /// the container's foreground process group.
    pub(crate) fn follow_size(&self) {
        if let (Some(from), Some(master)) = (self.size_from, &self.master)
            && let Some(size) = pty::size(from)
        {
            let _ = pty::set_size(master.as_raw_fd(), size);
        }
    }
}

/// Whether rbuild's terminal changed size since the last call (any SIGWINCH).
pub(crate) fn resized() -> bool {
    pty::take_resized()
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
