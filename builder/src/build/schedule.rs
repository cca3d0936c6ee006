//! Runs a build's stages concurrently: each stage starts as soon as the stages it
//! depends on are done (not when a whole wave is), on its own thread.
//!
//! The first failure wins: it is the error the build returns, and it raises `abort` so
//! the other stages stop (a running RUN is killed as on Ctrl-C); their own errors,
//! which only say they were stopped, are dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

/// What the stages share while they run.
struct Board<T, E> {
    /// Results by stage index; `None` until the stage is done.
    results: Vec<Option<T>>,
    /// The first error.
    failed: Option<E>,
    /// The first panic, resumed when every stage thread is done.
    panicked: Option<Box<dyn std::any::Any + Send>>,
}

/// Runs `work(index, results so far)` for every stage in `order`, each once all of
/// `deps[index]` are done, and returns the results by stage index. `work` sees the
/// results of every stage finished when it starts (its dependencies among them).
///
/// `order` lists the stages to build, dependencies first; `deps[i]` must only name
/// stages in `order`. With one stage it runs on the calling thread.
pub(super) fn run<T, E>(
    order: &[usize],
    deps: &[Vec<usize>],
    abort: &AtomicBool,
    stages: usize,
    work: impl Fn(usize, &[Option<T>]) -> Result<T, E> + Sync,
) -> Result<Vec<Option<T>>, E>
where
    T: Clone + Send + Sync,
    E: Send,
{
    let board = Mutex::new(Board {
        results: vec![None; stages],
        failed: None,
        panicked: None,
    });
    let changed = Condvar::new();
    let lock = || board.lock().unwrap_or_else(|p| p.into_inner());

    let one = |index: usize| {
        let mut b = lock();
        while b.failed.is_none()
            && b.panicked.is_none()
            && deps[index].iter().any(|d| b.results[*d].is_none())
        {
            b = changed.wait(b).unwrap_or_else(|p| p.into_inner());
        }
        if b.failed.is_some() || b.panicked.is_some() {
            return;
        }
        let seen = b.results.clone();
        drop(b);
        // A panicking stage must still wake the stages waiting for it (they then stop),
        // or the build would hang; the panic goes on once every thread is done.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(index, &seen)));
        let mut b = lock();
        match outcome {
            Ok(Ok(r)) => b.results[index] = Some(r),
            Ok(Err(e)) => {
                if b.failed.is_none() {
                    b.failed = Some(e);
                    abort.store(true, Ordering::SeqCst);
                }
            }
            Err(panic) => {
                abort.store(true, Ordering::SeqCst);
                b.panicked.get_or_insert(panic);
            }
        }
        drop(b);
        changed.notify_all();
    };

    if let [only] = order {
        one(*only);
    } else {
        std::thread::scope(|scope| {
            for &index in order {
                let one = &one;
                std::thread::Builder::new()
                    .name(format!("rbuild-stage-{index}"))
                    .spawn_scoped(scope, move || one(index))
                    .expect("spawning a stage thread");
            }
        });
    }
    let b = board.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(panic) = b.panicked {
        std::panic::resume_unwind(panic);
    }
    match b.failed {
        Some(e) => Err(e),
        None => Ok(b.results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn independent_stages_overlap_and_dependents_wait() {
        // 0 and 1 are independent; 2 needs both. 0 and 1 each wait until the other
        // has started, which only finishes if they run at the same time.
        let started = AtomicUsize::new(0);
        let deps = vec![vec![], vec![], vec![0, 1]];
        let abort = AtomicBool::new(false);
        let results = run(&[0, 1, 2], &deps, &abort, 3, |i, seen: &[Option<usize>]| {
            if i < 2 {
                started.fetch_add(1, Ordering::SeqCst);
                let t = std::time::Instant::now();
                while started.load(Ordering::SeqCst) < 2 {
                    assert!(t.elapsed() < Duration::from_secs(10), "stages ran serially");
                    std::thread::yield_now();
                }
                Ok::<_, String>(i * 10)
            } else {
                assert_eq!((seen[0], seen[1]), (Some(0), Some(10)));
                Ok(seen[0].unwrap() + seen[1].unwrap() + 1)
            }
        })
        .unwrap();
        assert_eq!(results, vec![Some(0), Some(10), Some(11)]);
        assert!(!abort.load(Ordering::SeqCst));
    }

    #[test]
    fn first_failure_wins_aborts_the_rest_and_skips_dependents() {
        let deps = vec![vec![], vec![], vec![1]];
        let abort = AtomicBool::new(false);
        let ran_dependent = AtomicBool::new(false);
        let r = run(
            &[0, 1, 2],
            &deps,
            &abort,
            3,
            |i, _: &[Option<()>]| match i {
                // Stage 0 runs until told to stop, as a RUN would.
                0 => {
                    let t = std::time::Instant::now();
                    while !abort.load(Ordering::SeqCst) {
                        assert!(t.elapsed() < Duration::from_secs(10), "never aborted");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err("stage 0 interrupted".to_string())
                }
                1 => Err("stage 1 failed".to_string()),
                _ => {
                    ran_dependent.store(true, Ordering::SeqCst);
                    Ok(())
                }
            },
        );
        assert_eq!(r.unwrap_err(), "stage 1 failed");
        assert!(abort.load(Ordering::SeqCst));
        assert!(!ran_dependent.load(Ordering::SeqCst));
    }

    #[test]
    fn a_single_stage_runs_on_the_calling_thread() {
        let me = std::thread::current().id();
        let abort = AtomicBool::new(false);
        let r = run(&[0], &[vec![]], &abort, 1, |_, _: &[Option<bool>]| {
            Ok::<_, ()>(std::thread::current().id() == me)
        });
        assert_eq!(r.unwrap(), vec![Some(true)]);
    }

    #[test]
    fn a_panicking_stage_stops_the_build_instead_of_hanging_it() {
        let deps = vec![vec![], vec![0]];
        let abort = AtomicBool::new(false);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| {
                run(&[0, 1], &deps, &abort, 2, |i, _: &[Option<()>]| {
                    if i == 0 {
                        panic!("stage 0 broke");
                    }
                    Ok::<_, String>(())
                })
            });
            let _ = tx.send(r.is_err());
        });
        let panicked = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the build hung after a stage panicked");
        assert!(panicked, "the panic was swallowed");
    }
}
