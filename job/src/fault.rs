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

/// The straggler fault of worker `index`, and how many times as long it
/// takes over a file.
pub fn slow_fault(faults: &[Fault], index: u32) -> Option<(&Fault, f64)> {
    faults.iter().find_map(|f| match f {
        Fault::Slow { worker, factor } if *worker == index && *factor > 1.0 => Some((f, *factor)),
        _ => None,
    })
}

/// Dies at once, as a `kill -9` would: no destructor, no flush, no goodbye.
pub fn crash_now() -> ! {
    // SAFETY: sending a signal to ourselves has no memory-safety effect.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL cannot be caught")
}
