//! The job settings both sides name: the driver's and worker's flags take
//! these wire names (`as_str`), the operator renders them into pod
//! arguments, and the CRD spells them through serde.

/// A setting's value that is not one of its names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {setting} {value:?} (expected one of: {choices})")]
pub struct UnknownName {
    pub setting: &'static str,
    pub value: String,
    pub choices: String,
}

/// `ALL`, `as_str` (the wire name), `FromStr` and `Display` from one table.
macro_rules! wire_names {
    ($ty:ident, $setting:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::settings::UnknownName;
            fn from_str(s: &str) -> Result<Self, $crate::settings::UnknownName> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| $crate::settings::UnknownName {
                        setting: $setting,
                        value: s.to_string(),
                        choices: Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                    })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_names;

/// What a word is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(
    feature = "schema",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema),
    serde(rename_all = "lowercase")
)]
pub enum Tokenizer {
    /// Maximal runs of Unicode alphanumerics, lowercased.
    #[default]
    Alnum,
    /// Split on ASCII whitespace, ASCII-lowercased.
    Whitespace,
}
wire_names!(Tokenizer, "tokenizer", { Alnum => "alnum", Whitespace => "whitespace" });

/// How workers commit a file's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(
    feature = "schema",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema),
    serde(rename_all = "kebab-case")
)]
pub enum Commit {
    /// One atomic, idempotent function call per file.
    #[default]
    PerFile,
    /// The naive way, for comparison: ZINCRBY by 1 per occurrence,
    /// pipelined, then the acknowledgement. Not exactly-once under faults.
    PerWord,
}
wire_names!(Commit, "commit mode", { PerFile => "per-file", PerWord => "per-word" });

/// What a file that cannot be read does to the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(
    feature = "schema",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub enum OnUnreadable {
    /// Count every readable file, report the totals, and end the job
    /// failed, naming the unreadable files.
    #[default]
    Fail,
    /// Count every readable file and only warn about the others.
    Skip,
}
wire_names!(OnUnreadable, "on-unreadable policy", { Fail => "fail", Skip => "skip" });

/// How Redis is run, which decides the coordination backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(
    feature = "schema",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub enum RedisMode {
    /// One Redis with RDB snapshots; a stream and a consumer group.
    #[default]
    Snapshot,
    /// 2f+1 Redis replicas with the RedisRaft module; a queue of leases.
    #[cfg_attr(feature = "clap", value(name = "raft"))]
    RedisRaft,
    /// Three sites, each with its own Redis and queue; the counts a CRDT
    /// that every instance keeps, and read repair between them.
    Crdt,
}
wire_names!(RedisMode, "Redis mode", { Snapshot => "snapshot", RedisRaft => "raft", Crdt => "crdt" });

/// What a stream's source does when the workers fall behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(
    feature = "schema",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub enum Backpressure {
    /// Inject on schedule whatever happens.
    #[default]
    None,
    /// Stop injecting while lag + pending is above `maxLag`, resume below
    /// half of it; late files are delayed at the source, never dropped.
    Pause,
    /// Steer the injection rate toward what the workers manage (AIMD:
    /// halve it when lag + pending is above `maxLag`, grow it back by a
    /// tenth of the rate each tick while below half of it).
    Adaptive,
}
wire_names!(Backpressure, "backpressure", { None => "none", Pause => "pause", Adaptive => "adaptive" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_errors_list_the_choices() {
        for t in Tokenizer::ALL {
            assert_eq!(t.as_str().parse::<Tokenizer>(), Ok(*t));
        }
        for c in Commit::ALL {
            assert_eq!(c.to_string().parse::<Commit>(), Ok(*c));
        }
        for b in Backpressure::ALL {
            assert_eq!(b.as_str().parse::<Backpressure>(), Ok(*b));
        }
        for o in OnUnreadable::ALL {
            assert_eq!(o.as_str().parse::<OnUnreadable>(), Ok(*o));
        }
        let err = "words".parse::<Tokenizer>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown tokenizer \"words\" (expected one of: alnum, whitespace)"
        );
    }

    /// The CLI's names (clap) are the wire names.
    #[cfg(feature = "clap")]
    #[test]
    fn clap_names_are_the_wire_names() {
        fn check<T: clap::ValueEnum + Copy + std::fmt::Display>(all: &[T]) {
            for v in all {
                let pv = v.to_possible_value().expect("no skipped variants");
                assert_eq!(pv.get_name(), v.to_string());
            }
        }
        check(Tokenizer::ALL);
        check(Commit::ALL);
        check(OnUnreadable::ALL);
        check(RedisMode::ALL);
        check(Backpressure::ALL);
        check(crate::CrashPoint::ALL);
    }
}
