//! `--verify`'s reference: an independent serial count of what the job
//! could read, each file whole (never by ranges), as many times as a
//! stream injected it.

use anyhow::Result;
use wordcount_count::counts::Counts;
use wordcount_count::tokenize::Tokenizer;
use wordcount_job::input::Input;
use wordcount_job::queue::{Injection, Unit};
use wordcount_store::Location;

/// The counts a serial count gives over `input`, leaving out every file
/// the job could not read (`failures`, named by unit); a stream's
/// `injected` units counted once per injection.
pub fn serial(
    input: &Location,
    tok: Tokenizer,
    failures: &[(String, String)],
    injected: Option<&[Injection]>,
) -> Result<Counts> {
    let input = Input::open(input)?;
    // A file of which any part failed is left out whole.
    let readable = |path: &str| {
        !(failures.iter()).any(|(label, _)| {
            label == path || (label.starts_with(path) && label[path.len()..].starts_with(" ["))
        })
    };
    let units: Vec<Unit> = match injected {
        None => (input.list()?.into_iter())
            .map(|o| Unit {
                version: o.version,
                ..Unit::file(o.key, o.size)
            })
            .collect(),
        Some(injected) => injected.iter().map(|i| i.unit.clone()).collect(),
    };
    let mut counts = Counts::new();
    for unit in units.iter().filter(|u| readable(&u.path)) {
        input.count(unit, tok, &mut counts)?;
    }
    Ok(counts)
}
