//! The CRDT of word counts (three sites, each with its own Redis): a
//! grow-only map from a file's global id to its packed counts, the counts
//! (the sum over the map), and per-origin-site digests of the ids. Merge is
//! set union, so any order, duplication and interleaving of deliveries and
//! repairs ends in the same state.
//!
//! [`Replica`] is the pure model; in Redis the same state lives under the
//! `P:crdt:*` keys, changed only by `wc_crdt_apply`
//! (protocol/src/wordcount.lua), but the counts, which `repair::counts`
//! folds from the map when they are read; [`repair`] copies between
//! instances.

pub mod anti_entropy;
pub mod repair;
pub mod site;

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::fmt;
use wordcount_count::counts::Counts;

/// A file's global id, `SITE/PATH#SEQ`: its origin site, its path relative
/// to the input, and the sequence number of its injection at that site.
/// The sequence number, not the stream entry id, because a site's Redis
/// restarted from a snapshot re-enqueues a file under a new entry id but
/// the same sequence number: the same injection must keep the same id on
/// every instance, or it would be counted twice.
///
/// Panics when `site` is empty or contains '/': sites are configured names.
pub fn global_id(site: &str, path: &str, seq: u64) -> String {
    assert!(
        !site.is_empty() && !site.contains('/'),
        "bad site name {site:?}"
    );
    format!("{site}/{path}#{seq}")
}

/// The origin site of a global id: what comes before its first '/'.
pub fn site_of(id: &str) -> Option<&str> {
    id.split_once('/')
        .map(|(site, _)| site)
        .filter(|s| !s.is_empty())
}

/// The digest of one site's ids: how many, and the XOR of the first 64
/// bits of each id's SHA-1. XOR makes it independent of order; the count
/// makes equal digests of unequal sets need a 64-bit coincidence. Written
/// `count:xor` (16 hex digits), as `wc_crdt_apply` stores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Digest {
    pub files: u64,
    pub xor: u64,
}

impl Digest {
    pub fn add(&mut self, id: &str) {
        let sha = sha1_smol::Sha1::from(id).digest().bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&sha[..8]);
        self.files += 1;
        self.xor ^= u64::from_be_bytes(first);
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:016x}", self.files, self.xor)
    }
}

impl std::str::FromStr for Digest {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || anyhow!("bad digest {s:?} (want count:16 hex digits)");
        let (files, xor) = s.split_once(':').ok_or_else(bad)?;
        if xor.len() != 16 {
            return Err(bad());
        }
        Ok(Digest {
            files: files.parse().map_err(|_| bad())?,
            xor: u64::from_str_radix(xor, 16).map_err(|_| bad())?,
        })
    }
}

/// One instance's state, in memory: the model `wc_crdt_apply` follows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replica {
    files: BTreeMap<String, Vec<u8>>,
    counts: Counts,
    digests: BTreeMap<String, Digest>,
}

impl Replica {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one file: only if its id is new, stores it, adds its counts
    /// and its id to its site's digest. Returns whether it was new.
    pub fn apply(&mut self, id: &str, packed: &[u8]) -> Result<bool> {
        let Some(site) = site_of(id) else {
            bail!("global id {id:?} has no SITE/ prefix");
        };
        if self.files.contains_key(id) {
            return Ok(false);
        }
        // Parse before any change: a malformed element changes nothing.
        let mut add = Counts::new();
        add.add_packed(packed)?;
        self.counts.merge(&add);
        self.digests.entry(site.to_string()).or_default().add(id);
        self.files.insert(id.to_string(), packed.to_vec());
        Ok(true)
    }

    /// Set union: applies every file of `other` this one lacks (what read
    /// repair does between instances). Returns how many were new.
    pub fn merge(&mut self, other: &Replica) -> Result<usize> {
        let mut new = 0;
        for (id, packed) in &other.files {
            new += usize::from(self.apply(id, packed)?);
        }
        Ok(new)
    }

    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    /// The counts materialised from the files.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Origin site -> digest of its ids.
    pub fn digests(&self) -> &BTreeMap<String, Digest> {
        &self.digests
    }
}

#[cfg(test)]
mod laws;
