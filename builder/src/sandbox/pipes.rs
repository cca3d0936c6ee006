//! The output loop that `run` and `exec` share: the command's stdout and stderr pipes
//! and the children's report pipe (for `run` also the exec-sync pipe) are polled with
//! the terminal's descriptors, 50 ms at a time so that the caller sees a cancel soon.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;

use super::tty;
use crate::sys::process;

/// Where bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum From {
    /// The pseudo-terminal (stdout and stderr merged, as docker's `-t`).
    Terminal,
    /// The pipe at this index of those given to [`Pipes::new`].
    Pipe(usize),
}

/// Read ends of the sandbox's pipes, each read until end of file.
pub(super) struct Pipes<const N: usize> {
    fds: [OwnedFd; N],
    open: [bool; N],
    buf: Vec<u8>,
}

impl<const N: usize> Pipes<N> {
    pub(super) fn new(fds: [OwnedFd; N]) -> Pipes<N> {
        Pipes {
            fds,
            open: [true; N],
            buf: vec![0u8; 64 * 1024],
        }
    }

    pub(super) fn is_open(&self, i: usize) -> bool {
        self.open[i]
    }

    /// Whether anything may still come: a pipe not at end of file, or the terminal.
    pub(super) fn any_open(&self, terminal: Option<&tty::Relay>) -> bool {
        self.open.iter().any(|o| *o) || terminal.is_some_and(|t| t.open())
    }

    /// Waits up to 50 ms for input, serves the terminal (its output, and rbuild's input
    /// to it), then reads each ready pipe once, passing what it read to `on`. Returns
    /// the pipes that reached end of file in this round.
    pub(super) fn round(
        &mut self,
        mut terminal: Option<&mut tty::Relay>,
        on: &mut dyn FnMut(From, &[u8]),
    ) -> Result<Vec<usize>, Errno> {
        let live: Vec<usize> = (0..N).filter(|i| self.open[*i]).collect();
        let mut borrowed: Vec<_> = live.iter().map(|i| self.fds[*i].as_fd()).collect();
        if let Some(t) = &terminal {
            borrowed.extend(t.fds());
        }
        let ready = process::poll_readable(&borrowed, 50)?;
        drop(borrowed);
        if let Some(t) = &mut terminal {
            // After the poll: a resize that came before the input now ready is applied
            // before that input reaches the container (a typed `stty size` sees it).
            if tty::resized() {
                t.follow_size();
            }
            t.service(&ready[live.len()..], &mut self.buf, &mut |b| {
                on(From::Terminal, b)
            })?;
        }
        let mut closed = Vec::new();
        for (k, i) in live.into_iter().enumerate() {
            if !ready[k] {
                continue;
            }
            match nix::unistd::read(&self.fds[i], &mut self.buf) {
                Ok(0) => {
                    self.open[i] = false;
                    closed.push(i);
                }
                Ok(n) => on(From::Pipe(i), &self.buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }

    /// Reads what pipe `i` holds now, without waiting for more.
    pub(super) fn drain(&mut self, i: usize, on: &mut dyn FnMut(&[u8])) -> Result<(), Errno> {
        while self.open[i] && process::poll_readable(&[self.fds[i].as_fd()], 0)?[0] {
            match nix::unistd::read(&self.fds[i], &mut self.buf) {
                Ok(0) => self.open[i] = false,
                Ok(n) => on(&self.buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
