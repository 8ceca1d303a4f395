//! Reading what an entry counts from the job's input: a whole file (a
//! gzip file decompressed), or a byte range of a large one, read from the
//! byte before it (see `wordcount_count::range`) and pinned to the version
//! listed.

use crate::queue::Unit;
use anyhow::{Context, Result};
use std::io::Read;
use wordcount_count::counts::Counts;
use wordcount_count::engine::{count_reader, scan_reader};
use wordcount_count::input::decoded;
use wordcount_count::range::{count_range, read_from, scan_range};
use wordcount_count::tokenize::Tokenizer;
use wordcount_store::{Location, Object, Store};

/// The job's input, as one process reads it.
pub struct Input {
    store: Store,
}

impl Input {
    pub fn open(location: &Location) -> Result<Self> {
        Ok(Input {
            store: Store::open(location)?,
        })
    }

    pub fn location(&self) -> &Location {
        self.store.location()
    }

    /// Every file (or object) of the input, sorted by path.
    pub fn list(&self) -> Result<Vec<Object>> {
        self.store.list()
    }

    /// Transient failures of the store retried so far.
    pub fn retries(&self) -> u64 {
        self.store.retries()
    }

    /// Counts `unit` into `counts`; returns the bytes read.
    pub fn count(&self, unit: &Unit, tok: Tokenizer, counts: &mut Counts) -> Result<u64> {
        let reader = self.open_unit(unit)?;
        match &unit.range {
            Some(r) => count_range(reader, r.clone(), tok, counts),
            None => count_reader(reader, tok, counts),
        }
        .with_context(|| format!("cannot read {}", self.name(unit)))
    }

    /// Passes every word of `unit` to `add`; returns the bytes read.
    pub fn scan(&self, unit: &Unit, tok: Tokenizer, add: impl FnMut(&[u8])) -> Result<u64> {
        let reader = self.open_unit(unit)?;
        match &unit.range {
            Some(r) => scan_range(reader, r.clone(), tok, add),
            None => scan_reader(reader, tok, add),
        }
        .with_context(|| format!("cannot read {}", self.name(unit)))
    }

    fn open_unit(&self, unit: &Unit) -> Result<Box<dyn Read + Send>> {
        let from = unit.range.as_ref().map_or(0, read_from);
        let reader = (self.store)
            .open_read(&unit.path, from, unit.version.as_deref())
            .with_context(|| format!("cannot open {}", self.name(unit)))?;
        Ok(match unit.range {
            Some(_) => reader,
            None => decoded(&unit.path, reader),
        })
    }

    /// The unit as errors name it: where it is, and its bytes.
    fn name(&self, unit: &Unit) -> String {
        let at = match self.store.location() {
            Location::Dir(dir) => dir.join(&unit.path).display().to_string(),
            s3 => format!("{}/{}", s3.to_string().trim_end_matches('/'), unit.path),
        };
        match &unit.range {
            None => at,
            Some(r) => format!("{at} [{}]", wordcount_protocol::keys::entry::range_text(r)),
        }
    }
}
