//! Durations in the spec, written like "500ms", "30s", "2m", "1h" or "1m30s".
//!
//! A typed field rather than a plain string, so that the reconciler never
//! parses at use time: the schema carries the same pattern, so the API server
//! refuses a malformed value before the operator ever sees it.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::{borrow::Cow, fmt, str::FromStr, time};

/// One or more `<digits><unit>` groups, unit one of ms, s, m, h.
pub const PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(time::Duration);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {0:?}: expected e.g. 500ms, 30s, 2m, 1h or 1m30s")]
pub struct ParseDurationError(String);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(time::Duration::from_millis(ms))
    }

    pub const fn from_secs(secs: u64) -> Self {
        Self(time::Duration::from_secs(secs))
    }

    pub fn as_std(self) -> time::Duration {
        self.0
    }

    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDurationError(s.to_string());
        let mut rest = s;
        let mut total_ms: u64 = 0;
        if rest.is_empty() {
            return Err(err());
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err());
            }
            let value: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            // "ms" must be tried before "m".
            let (unit_ms, len) = if rest.starts_with("ms") {
                (1, 2)
            } else if rest.starts_with('s') {
                (1_000, 1)
            } else if rest.starts_with('m') {
                (60_000, 1)
            } else if rest.starts_with('h') {
                (3_600_000, 1)
            } else {
                return Err(err());
            };
            rest = &rest[len..];
            total_ms = value
                .checked_mul(unit_ms)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(err)?;
        }
        Ok(Self::from_millis(total_ms))
    }
}

impl fmt::Display for Duration {
    /// The shortest exact form in the same syntax, e.g. 90s -> "1m30s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, len) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if ms >= len {
                write!(f, "{}{unit}", ms / len)?;
                ms %= len;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "maxLength": 32,
        })
    }
}

/// A human duration for status and printer columns, rounded to seconds: "1h2m3s".
pub fn human(d: time::Duration) -> String {
    Duration::from_secs(d.as_secs()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("0s", 0),
        ] {
            assert_eq!(text.parse::<Duration>().unwrap().as_millis(), ms, "{text}");
        }
    }

    #[test]
    fn refuses_malformed_values() {
        for text in ["", "30", "s", "1.5s", "-1s", "30 s", "2d", "1m30", "ms"] {
            assert!(
                text.parse::<Duration>().is_err(),
                "{text:?} should not parse"
            );
        }
    }

    #[test]
    fn pattern_and_parser_agree() {
        // The schema pattern is what the API server enforces; the parser must
        // accept exactly what it accepts.
        let re = regex::Regex::new(PATTERN).unwrap();
        for s in [
            "1s",
            "10ms",
            "1h2m3s4ms",
            "01s",
            "x",
            "1",
            "1sm",
            "m1",
            "1.5s",
            "",
            "1d",
        ] {
            assert_eq!(re.is_match(s), s.parse::<Duration>().is_ok(), "{s:?}");
        }
    }

    #[test]
    fn displays_the_shortest_exact_form() {
        assert_eq!(Duration::from_millis(90_000).to_string(), "1m30s");
        assert_eq!(Duration::from_millis(500).to_string(), "500ms");
        assert_eq!(Duration::from_millis(0).to_string(), "0s");
        assert_eq!(Duration::from_millis(3_723_004).to_string(), "1h2m3s4ms");
        assert_eq!(human(time::Duration::from_millis(61_900)), "1m1s");
    }

    #[test]
    fn serde_round_trip() {
        let d: Duration = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(d, Duration::from_secs(120));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2m\"");
        assert!(serde_json::from_str::<Duration>("\"2 minutes\"").is_err());
    }
}
