//! The backend of the CRDT mode: three sites, each with its own Redis. A
//! site's queue is a stream in its own Redis, as in Snapshot mode ([`Stream`]
//! does everything but the commit); a commit applies the file's counts to
//! every instance it can reach (`wc_crdt_apply`, idempotent: the CRDT of
//! `crate::crdt`) and counts as done once one took it; then it is committed
//! at the site, which ends its lease there. The instances a worker cannot
//! reach learn the file later, by read repair.
//!
//! `url` lists the instances, the site's own first. A site is named by its
//! own instance's address, which prefixes its files' global ids.

use super::sealed::Connected;
use super::{Backend, Stream};
use crate::connection::Redis;
use crate::crdt::anti_entropy::{self, Convergence};
use crate::crdt::site::Site;
use crate::crdt::{global_id, repair};
use crate::queue::{
    only, Carry, Committed, Depth, Entry, Held, Injection, ResultCursor, Results, Saves, Taken,
};
use crate::report::InstanceReport;
use crate::state::JobSettings;
use anyhow::{bail, Context, Result};
use redis::{Connection, RedisResult};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use wordcount_count::counts::Counts;

/// How long a worker waits for an instance before it counts it as cut off,
/// and how long it then leaves it alone: a cut instance (packets dropped)
/// never answers, and each commit must not wait for it.
const REACH: Duration = Duration::from_millis(500);
const LEAVE_ALONE: Duration = Duration::from_secs(1);

pub struct Crdt {
    site: Stream,
    /// With `--site`: which of the job's sites this is, for its driver to
    /// converge with the others ([`Backend::converge`]).
    job_site: Option<Site>,
    name: String,
    instances: Vec<Instance>,
    /// A large vocabulary being staged: its chunks, kept to apply.
    staged: Vec<u8>,
}

/// One instance as a worker writes to it: one try at a time, never
/// waiting long.
struct Instance {
    client: redis::Client,
    conn: Option<Connection>,
    cut_until: Option<Instant>,
}

impl Instance {
    fn apply(&mut self, call: &redis::Cmd) -> Option<()> {
        if self.cut_until.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        match self.try_apply(call) {
            Ok(_) => {
                self.cut_until = None;
                Some(())
            }
            Err(e) => {
                tracing::debug!("instance unreachable: {e}");
                self.conn = None;
                self.cut_until = Some(Instant::now() + LEAVE_ALONE);
                None
            }
        }
    }

    fn try_apply(&mut self, call: &redis::Cmd) -> RedisResult<(u64, u64)> {
        if self.conn.is_none() {
            let c = self.client.get_connection_with_timeout(REACH)?;
            c.set_read_timeout(Some(REACH * 4))?;
            c.set_write_timeout(Some(REACH * 4))?;
            self.conn = Some(c);
        }
        let conn = self.conn.as_mut().expect("just connected");
        match call.query(conn) {
            // A restarted instance without the library: load it, once.
            Err(e)
                if e.to_string()
                    .contains(wordcount_protocol::library::NOT_LOADED) =>
            {
                redis::cmd("FUNCTION")
                    .arg("LOAD")
                    .arg("REPLACE")
                    .arg(wordcount_protocol::library::SOURCE)
                    .exec(conn)?;
                call.query(conn)
            }
            r => r,
        }
    }
}

impl Crdt {
    /// Site `site`'s backend: its own instance first.
    pub fn open_site(site: Site, prefix: &str, patience: Duration) -> Result<Self> {
        let mut crdt = Crdt::open(&site.own_first(), prefix, patience)?;
        crdt.job_site = Some(site);
        Ok(crdt)
    }

    pub fn open(url: &str, prefix: &str, patience: Duration) -> Result<Self> {
        let urls: Vec<&str> = url.split(',').map(str::trim).collect();
        let own = urls[0];
        let info = crate::connection::connection_info(own)?;
        let name = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => bail!("a CRDT site's Redis must be host:port, not {other:?}"),
        };
        let instances = urls
            .iter()
            .map(|u| {
                Ok(Instance {
                    client: redis::Client::open(crate::connection::connection_info(u)?)
                        .with_context(|| {
                            format!("bad Redis URL {:?}", crate::connection::redact(u))
                        })?,
                    conn: None,
                    cut_until: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Crdt {
            site: Stream::open(own, prefix, patience)?,
            job_site: None,
            name,
            instances,
            staged: Vec::new(),
        })
    }

    /// Applies a file to every instance it can reach, and at least to its
    /// own site's: the commit that follows goes there too, so a restart
    /// from a snapshot loses both or neither, and the queue redoes what it
    /// lost. Done on remote instances only, a file could vanish with their
    /// restarts after its commit.
    fn apply_everywhere(&mut self, entry: &Entry, packed: &[u8]) -> Result<usize> {
        let id = global_id(&self.name, &entry.unit.label(), entry.seq);
        let call = repair::apply_cmd(&self.site.redis().keys, &[(&id, packed)], false);
        let started = Instant::now();
        let mut took = vec![false; self.instances.len()];
        loop {
            for (i, t) in self.instances.iter_mut().zip(&mut took) {
                *t = *t || i.apply(&call).is_some();
            }
            // The site's own instance is the first.
            if took[0] {
                let n = took.iter().filter(|&&t| t).count();
                tracing::debug!("{id} applied to {n} instances in {:?}", started.elapsed());
                return Ok(n);
            }
            if started.elapsed() > Duration::from_secs(5) {
                tracing::warn!("its own site's instance unreachable for {id}; waiting");
            }
            std::thread::sleep(LEAVE_ALONE);
        }
    }
}

impl super::sealed::Connected for Crdt {
    fn redis(&mut self) -> &mut Redis {
        self.site.redis()
    }
}

impl Backend for Crdt {
    fn converge(&mut self, patience: Duration, stop: &AtomicBool) -> Result<Convergence> {
        match &self.job_site {
            Some(site) => anti_entropy::converge(site, self.site.redis(), patience, stop),
            None => Ok(Convergence::Alone),
        }
    }
    fn write_converged(&mut self, counts: &Counts, instance: &InstanceReport) -> Result<()> {
        anti_entropy::write_result(self.site.redis(), counts, instance)
    }
    fn create_job(&mut self, settings: &JobSettings) -> Result<()> {
        self.site.create_job(settings)
    }
    fn enqueue(&mut self, injections: &[Injection]) -> Result<u64> {
        self.site.enqueue(injections)
    }
    fn depth(&mut self) -> Result<Depth> {
        self.site.depth()
    }
    fn results_since(
        &mut self,
        cursor: &mut ResultCursor,
        max: usize,
        wait: Duration,
    ) -> Result<Results> {
        self.site.results_since(cursor, max, wait)
    }
    fn commits_since(&mut self, cursor: &mut ResultCursor, max: usize) -> Result<Results> {
        self.site.commits_since(cursor, max)
    }
    fn saves(&mut self) -> Result<Option<Saves>> {
        self.site.saves()
    }
    /// `P:counts` gets the CRDT's counts once the instances have converged
    /// (the runner writes them, or with `--site` the site's driver, through
    /// `backend::write_counts`): a site's merge keeps its share to itself.
    fn replace_counts(&mut self, _: &Counts) -> Result<()> {
        Ok(())
    }
    fn wake_workers(&mut self) -> Result<()> {
        self.site.wake_workers()
    }
    fn session(&self) -> u64 {
        self.site.session()
    }
    fn take(
        &mut self,
        consumer: &str,
        wait: Duration,
        claim_timeout: Duration,
    ) -> Result<Option<Taken>> {
        self.site.take(consumer, wait, claim_timeout)
    }
    fn stage(&mut self, entry: &Entry, consumer: &str, chunk: &[u8], first: bool) -> Result<()> {
        if first {
            self.staged.clear();
        }
        self.staged.extend_from_slice(chunk);
        self.site.stage(entry, consumer, chunk, first)
    }
    fn add_words(&mut self, _: &[&[u8]]) -> Result<()> {
        bail!("per-word commits are not a CRDT: a word added twice counts twice")
    }
    fn commit(&mut self, files: &[Held], consumer: &str, carry: Carry) -> Result<Committed> {
        let entry = &only(files)?.taken.entry;
        let staged = std::mem::take(&mut self.staged);
        let packed: Option<&[u8]> = match &carry {
            Carry::Inline(p) => Some(p),
            Carry::Staged => Some(&staged),
            Carry::Added | Carry::Failed(_) => None,
        };
        if let Some(packed) = packed {
            self.apply_everywhere(entry, packed)?;
        }
        self.site.commit(files, consumer, carry)
    }
    fn fire(&mut self, fault: &str) -> Result<bool> {
        self.site.fire(fault)
    }
}
