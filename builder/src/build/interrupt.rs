//! Ctrl-C and SIGTERM during a build: the first one asks the build to stop (the running
//! RUN is killed, its snapshot unmounted, nothing of the step committed); a second one
//! ends the process at once, which still leaves the store sound (every write in it is
//! atomic, and GC sweeps scratch).
//!
//! The signals are blocked in every thread and taken by one thread with sigwait(2),
//! so no code runs in a signal handler.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Set when the user asked the build to stop.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// Starts the thread that turns SIGINT/SIGTERM into [`CANCEL`]. Call it before any
/// other thread is started, so they all inherit the blocked mask.
pub fn install() -> std::io::Result<()> {
    install_for("the build")
}

/// As [`install`], for a job other than a build (`what`: "the container"), so that
/// the message says what is being stopped.
pub fn install_for(what: &'static str) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("rbuild-signals".into())
        .spawn(move || {
            while let Ok(sig) = set.wait() {
                if CANCEL.swap(true, Ordering::SeqCst) {
                    // The second request: stop now, with the shell's code for it, and
                    // rbuild's terminal as it was (`run -it` made it raw).
                    crate::sys::pty::restore_terminal();
                    std::process::exit(128 + sig as i32);
                }
                eprintln!("\nstopping {what} ({sig}); press Ctrl-C again to quit at once");
            }
        })?;
    Ok(())
}

/// Whether the build should stop.
pub fn requested() -> bool {
    CANCEL.load(Ordering::SeqCst)
}
