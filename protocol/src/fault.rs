//! Faults a job injects on purpose, in the one grammar both sides use:
//! `worker=I,crash=POINT[,file=N]` (worker I dies with SIGKILL at POINT of
//! its N-th file, once per job) and `worker=I,slow=F` (worker I takes F
//! times as long over each file). The CRD's bounds are these constants.

use std::fmt;
use std::str::FromStr;

/// Files are numbered from 1 in the order a worker takes them.
pub const FIRST_FILE: u32 = 1;
/// A straggler's factor lies in `MIN_SLOW..=MAX_SLOW`.
pub const MIN_SLOW: f64 = 1.0;
pub const MAX_SLOW: f64 = 1000.0;

/// Where in the commit path a crash fault strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(
    feature = "schema",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema),
    serde(rename_all = "kebab-case")
)]
pub enum CrashPoint {
    /// Right after taking the file from the queue.
    AfterRead,
    /// Counted, not committed.
    AfterCount,
    /// Part of a staged vocabulary written, not committed.
    MidStage,
    /// Committed (with the files committed together), before taking
    /// the next file.
    AfterCommit,
}
crate::settings::wire_names!(CrashPoint, "crash point", {
    AfterRead => "after-read",
    AfterCount => "after-count",
    MidStage => "mid-stage",
    AfterCommit => "after-commit",
});

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Worker `worker` dies (SIGKILL) at `point` of its `file`-th file.
    Crash {
        worker: u32,
        point: CrashPoint,
        file: u32,
    },
    /// Worker `worker` takes `factor` times as long over each file.
    Slow { worker: u32, factor: f64 },
}

/// Why a fault spec was refused; every message quotes the spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    #[error("fault {spec:?}: {part:?} is not key=value")]
    NotKeyValue { spec: String, part: String },
    #[error("fault {spec:?}: unknown key {key:?} (worker, crash, file, slow)")]
    UnknownKey { spec: String, key: String },
    #[error("fault {spec:?}: {key} is given twice")]
    Repeated { spec: String, key: &'static str },
    #[error("fault {spec:?}: bad value {value:?} for {key}")]
    BadValue {
        spec: String,
        key: &'static str,
        value: String,
    },
    #[error("fault {spec:?}: unknown crash point {value:?} (after-read, after-count, mid-stage, after-commit)")]
    UnknownPoint { spec: String, value: String },
    #[error("fault {spec:?}: which worker? add worker=I")]
    NoWorker { spec: String },
    #[error("fault {spec:?}: file counts from {FIRST_FILE}")]
    FileZero { spec: String },
    #[error("fault {spec:?}: slow takes a factor from {MIN_SLOW} to {MAX_SLOW} and no file")]
    BadSlow { spec: String },
    #[error("fault {spec:?}: give exactly one of crash=POINT or slow=F")]
    Kind { spec: String },
}

impl Fault {
    pub fn worker(&self) -> u32 {
        match self {
            Fault::Crash { worker, .. } | Fault::Slow { worker, .. } => *worker,
        }
    }
}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(spec: &str) -> Result<Self, FaultError> {
        let s = || spec.to_string();
        let (mut worker, mut point, mut file, mut slow) = (None, None, None, None);
        fn set<T>(
            slot: &mut Option<T>,
            v: T,
            spec: &str,
            key: &'static str,
        ) -> Result<(), FaultError> {
            match slot.replace(v) {
                None => Ok(()),
                Some(_) => Err(FaultError::Repeated {
                    spec: spec.to_string(),
                    key,
                }),
            }
        }
        for part in spec.split(',') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| FaultError::NotKeyValue {
                    spec: s(),
                    part: part.to_string(),
                })?;
            let bad = |key: &'static str| FaultError::BadValue {
                spec: s(),
                key,
                value: value.to_string(),
            };
            match key.trim() {
                "worker" => set(
                    &mut worker,
                    value.parse::<u32>().map_err(|_| bad("worker"))?,
                    spec,
                    "worker",
                )?,
                "crash" => {
                    let p = value
                        .parse::<CrashPoint>()
                        .map_err(|_| FaultError::UnknownPoint {
                            spec: s(),
                            value: value.to_string(),
                        })?;
                    set(&mut point, p, spec, "crash")?
                }
                "file" => set(
                    &mut file,
                    value.parse::<u32>().map_err(|_| bad("file"))?,
                    spec,
                    "file",
                )?,
                "slow" => set(
                    &mut slow,
                    value.parse::<f64>().map_err(|_| bad("slow"))?,
                    spec,
                    "slow",
                )?,
                other => {
                    return Err(FaultError::UnknownKey {
                        spec: s(),
                        key: other.to_string(),
                    })
                }
            }
        }
        let worker = worker.ok_or_else(|| FaultError::NoWorker { spec: s() })?;
        match (point, slow) {
            (Some(point), None) => match file.unwrap_or(FIRST_FILE) {
                0 => Err(FaultError::FileZero { spec: s() }),
                file => Ok(Fault::Crash {
                    worker,
                    point,
                    file,
                }),
            },
            (None, Some(factor)) if (MIN_SLOW..=MAX_SLOW).contains(&factor) && file.is_none() => {
                Ok(Fault::Slow { worker, factor })
            }
            (None, Some(_)) => Err(FaultError::BadSlow { spec: s() }),
            _ => Err(FaultError::Kind { spec: s() }),
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
            } => write!(f, "worker={worker},crash={point},file={file}"),
            // f64's Display is the shortest text that parses back to it.
            Fault::Slow { worker, factor } => write!(f, "worker={worker},slow={factor}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            ("worker=0,slow=0.5", "factor from 1 to 1000"),
            ("worker=0,slow=1000.5", "factor from 1 to 1000"),
            ("worker=0,slow=NaN", "factor from 1 to 1000"),
            ("worker=0,slow=inf", "factor from 1 to 1000"),
            ("worker=0", "exactly one"),
            ("worker=x,slow=2", "bad value"),
            ("worker=-1,slow=2", "bad value"),
            ("worker=0,crash=after-read,file=0", "from 1"),
            ("worker=0,crash=after-read,worker=1", "given twice"),
            ("worker=0,colour=red", "unknown key"),
            ("worker=0,slow", "not key=value"),
        ] {
            let err = spec.parse::<Fault>().unwrap_err().to_string();
            assert!(err.contains(msg), "{spec}: {err}");
            assert!(err.contains(spec), "{spec}: {err}");
        }
    }

    fn any_fault() -> impl Strategy<Value = Fault> {
        let point = prop::sample::select(CrashPoint::ALL.to_vec());
        prop_oneof![
            (any::<u32>(), point, FIRST_FILE..=u32::MAX).prop_map(|(worker, point, file)| {
                Fault::Crash {
                    worker,
                    point,
                    file,
                }
            }),
            (any::<u32>(), MIN_SLOW..=MAX_SLOW)
                .prop_map(|(worker, factor)| Fault::Slow { worker, factor }),
        ]
    }

    proptest! {
        #[test]
        fn every_fault_prints_to_a_spec_that_parses_back(f in any_fault()) {
            prop_assert_eq!(f.to_string().parse::<Fault>(), Ok(f));
        }
    }
}
