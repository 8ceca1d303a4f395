//! Faults a job injects on purpose: a worker that crashes at a chosen point
//! of a chosen file, or runs slower than the others.

use anyhow::{bail, Context, Result};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CrashPoint {
    /// Right after taking the file from the queue.
    AfterRead,
    /// Counted, not committed.
    AfterCount,
    /// Part of a staged vocabulary written, not committed.
    MidStage,
    /// Committed, before taking the next file.
    AfterCommit,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Worker `worker` dies (SIGKILL) at `point` of its `file`-th file.
    Crash {
        worker: usize,
        point: CrashPoint,
        file: u64,
    },
    /// Worker `worker` takes `factor` times as long over each file.
    Slow { worker: usize, factor: f64 },
}

impl Fault {
    pub fn worker(&self) -> usize {
        match self {
            Fault::Crash { worker, .. } | Fault::Slow { worker, .. } => *worker,
        }
    }
}

impl FromStr for Fault {
    type Err = anyhow::Error;

    /// `worker=I,crash=POINT[,file=N]` or `worker=I,slow=F`.
    fn from_str(spec: &str) -> Result<Self> {
        let (mut worker, mut point, mut file, mut slow) = (None, None, None, None);
        for part in spec.split(',') {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("fault {spec:?}: {part:?} is not key=value"))?;
            let bad = || format!("fault {spec:?}: bad value {value:?} for {key}");
            match key.trim() {
                "worker" => worker = Some(value.parse::<usize>().with_context(bad)?),
                "crash" => {
                    point = Some(
                        <CrashPoint as clap::ValueEnum>::from_str(value, true).map_err(|_| {
                            anyhow::anyhow!(
                                "fault {spec:?}: unknown crash point {value:?} \
                                 (after-read, after-count, mid-stage, after-commit)"
                            )
                        })?,
                    )
                }
                "file" => file = Some(value.parse::<u64>().with_context(bad)?),
                "slow" => slow = Some(value.parse::<f64>().with_context(bad)?),
                other => bail!("fault {spec:?}: unknown key {other:?} (worker, crash, file, slow)"),
            }
        }
        let worker =
            worker.with_context(|| format!("fault {spec:?}: which worker? add worker=I"))?;
        match (point, slow) {
            (Some(point), None) => {
                let file = file.unwrap_or(1);
                if file == 0 {
                    bail!("fault {spec:?}: file counts from 1");
                }
                Ok(Fault::Crash {
                    worker,
                    point,
                    file,
                })
            }
            (None, Some(factor)) if factor >= 1.0 && file.is_none() => {
                Ok(Fault::Slow { worker, factor })
            }
            (None, Some(_)) => bail!("fault {spec:?}: slow takes a factor >= 1 and no file"),
            _ => bail!("fault {spec:?}: give exactly one of crash=POINT or slow=F"),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash {
                worker,
                point,
                file,
            } => {
                let point = clap::ValueEnum::to_possible_value(point).expect("no skipped variants");
                write!(f, "worker={worker},crash={},file={file}", point.get_name())
            }
            Fault::Slow { worker, factor } => write!(f, "worker={worker},slow={factor}"),
        }
    }
}

/// Dies at once, as a `kill -9` would: no destructor, no flush, no goodbye.
pub fn crash_now() -> ! {
    // SAFETY: sending a signal to ourselves has no memory-safety effect.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL cannot be caught")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_crash_and_slow() {
        let f: Fault = "worker=1,crash=mid-stage,file=3".parse().unwrap();
        assert_eq!(
            f,
            Fault::Crash {
                worker: 1,
                point: CrashPoint::MidStage,
                file: 3
            }
        );
        assert_eq!(f.to_string(), "worker=1,crash=mid-stage,file=3");
        let f: Fault = "worker=0,crash=after-read".parse().unwrap();
        assert_eq!(f.to_string(), "worker=0,crash=after-read,file=1");
        let f: Fault = "worker=2,slow=4".parse().unwrap();
        assert_eq!(
            f,
            Fault::Slow {
                worker: 2,
                factor: 4.0
            }
        );
    }

    #[test]
    fn bad_specs_name_the_problem() {
        for (spec, msg) in [
            ("crash=after-read", "which worker"),
            ("worker=0,crash=explode", "unknown crash point"),
            ("worker=0,slow=0.5", "factor >= 1"),
            ("worker=0", "exactly one"),
            ("worker=x,slow=2", "bad value"),
            ("worker=0,crash=after-read,file=0", "from 1"),
            ("worker=0,colour=red", "unknown key"),
        ] {
            let err = spec.parse::<Fault>().unwrap_err().to_string();
            assert!(err.contains(msg), "{spec}: {err}");
        }
    }
}
