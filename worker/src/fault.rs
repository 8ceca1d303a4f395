//! Carrying out the faults a job injects on purpose. Their grammar is the
//! contract's (`wordcount_protocol::fault`).

pub use wordcount_protocol::{CrashPoint, Fault};

/// The crash fault of worker `index` at `point` of its `nth` file, if any.
pub fn crash_at(faults: &[Fault], index: u32, point: CrashPoint, nth: u64) -> Option<&Fault> {
    faults.iter().find(|f| {
        matches!(f, Fault::Crash { worker, point: p, file }
            if *worker == index && *p == point && u64::from(*file) == nth)
    })
}

/// How many times as long worker `index` takes over a file (1: not a straggler).
pub fn slow_factor(faults: &[Fault], index: u32) -> f64 {
    faults
        .iter()
        .find_map(|f| match f {
            Fault::Slow { worker, factor } if *worker == index => Some(*factor),
            _ => None,
        })
        .unwrap_or(1.0)
}

/// Dies at once, as a `kill -9` would: no destructor, no flush, no goodbye.
pub fn crash_now() -> ! {
    // SAFETY: sending a signal to ourselves has no memory-safety effect.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL cannot be caught")
}
