//! `P:summary`: the driver's report of a finished job, as JSON, written
//! once every file is in. Its `words`, `distinct`, `top`, `seconds` and
//! `output` are
//! the contract, read here by whoever watches the job (the operator's
//! status); the rest is the job's own report (`wordcount_job::report`),
//! which readers may ignore. A test in the job checks that what it writes
//! reads back here.

/// The contract's part of `P:summary`.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
pub struct Summary {
    pub words: u64,
    pub distinct: u64,
    /// The most frequent words, most frequent first.
    #[serde(default)]
    pub top: Vec<TopWord>,
    /// From the driver's start to the result written.
    #[serde(default)]
    pub seconds: f64,
    /// Where every word's count was written, when the job was asked to.
    #[serde(default)]
    pub output: Option<Output>,
}

/// The job's whole result, written out (`--output`, `spec.output`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    /// A path, or s3://BUCKET/KEY.
    pub location: String,
    /// Distinct words: the lines written.
    pub words: u64,
}

/// A word and its count (a word that is not UTF-8 is written lossily).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct TopWord {
    pub word: String,
    pub count: u64,
}

/// A `P:summary` that is not the JSON the contract names.
#[derive(Debug, thiserror::Error)]
#[error("P:summary is not a job's summary: {0}")]
pub struct BadSummary(#[from] serde_json::Error);

impl Summary {
    pub fn parse(json: &str) -> Result<Summary, BadSummary> {
        Ok(serde_json::from_str(json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_reads_back_and_the_rest_is_ignored() {
        let s = Summary::parse(
            r#"{"words":5,"distinct":2,"top":[{"word":"a","count":3}],"seconds":1.5,"job":{"files":1}}"#,
        )
        .unwrap();
        assert_eq!((s.words, s.distinct, s.seconds), (5, 2, 1.5));
        assert_eq!(
            s.top,
            vec![TopWord {
                word: "a".into(),
                count: 3
            }]
        );
        assert_eq!(s.output, None);
        let s = Summary::parse(
            r#"{"words":5,"distinct":2,"output":{"location":"s3://b/k","words":2}}"#,
        )
        .unwrap();
        assert_eq!(s.output.unwrap().location, "s3://b/k");
        assert!(Summary::parse(r#"{"words":-1,"distinct":0}"#).is_err());
        assert!(Summary::parse("not json").is_err());
    }
}
