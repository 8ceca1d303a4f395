//! [`Location`]: where a job's input is, as the user writes it: `s3://BUCKET/PREFIX`
//! or a directory.

use anyhow::{bail, Error};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where input is read from: a local directory, or s3://BUCKET/PREFIX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    /// `prefix` has no leading or trailing `/`; empty for the whole bucket.
    S3 {
        bucket: String,
        prefix: String,
    },
}

const SCHEME: &str = "s3://";

impl FromStr for Location {
    type Err = Error;

    /// `s3://b/p` (or `s3://b`, `s3://b/`, `s3://b/p/`); anything else is a path.
    fn from_str(text: &str) -> Result<Self, Error> {
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Ok(Location::Dir(PathBuf::from(text)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("{text:?} names no bucket (expected s3://BUCKET/PREFIX)");
        }
        Ok(Location::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Dir(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "{SCHEME}{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "{SCHEME}{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, prefix: &str) -> Location {
        Location::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn parses_s3_urls() {
        assert_eq!("s3://b/p".parse::<Location>().unwrap(), s3("b", "p"));
        assert_eq!("s3://b/p/q/".parse::<Location>().unwrap(), s3("b", "p/q"));
        assert_eq!("s3://b".parse::<Location>().unwrap(), s3("b", ""));
        assert_eq!("s3://b/".parse::<Location>().unwrap(), s3("b", ""));
    }

    #[test]
    fn anything_else_is_a_path() {
        for text in ["corpus", "/data/in", "./s3://x", "S3://b/p", "s3:/b"] {
            assert_eq!(
                text.parse::<Location>().unwrap(),
                Location::Dir(PathBuf::from(text))
            );
        }
    }

    #[test]
    fn an_empty_bucket_is_an_error_naming_the_text() {
        for text in ["s3://", "s3:///p"] {
            let err = text.parse::<Location>().unwrap_err().to_string();
            assert!(err.contains(text), "{err}");
        }
    }

    #[test]
    fn displays_as_written() {
        for text in ["s3://b/p", "s3://b", "s3://b/p/q", "corpus", "/data/in"] {
            assert_eq!(text.parse::<Location>().unwrap().to_string(), text);
        }
        assert_eq!(s3("b", "").to_string(), "s3://b");
    }
}
