//! A CRDT site's driver converges its own instance by itself, where no
//! runner does it for the sites (`--site`, on Kubernetes). Once its own
//! site is done it pulls, about once a second, what each peer instance has
//! and its own lacks (`repair(from = peer, to = own)`). Pull only: each
//! site's driver answers for its own instance, and none writes to another.
//!
//! It is done when every peer's site is done (on the peer's instance,
//! `enqueue_done` and every file committed or failed) and every peer's
//! digests equal its own instance's. A file is committed at a site only
//! once the site's own instance holds it, so a done site's instance holds
//! all its files, and equal digests mean every instance holds every file.
//!
//! A peer that does not answer (refused, or its packets dropped) costs at
//! most a few seconds (`Redis::open_peer`) and is tried again next round.
//! The driver gives up on a peer only after `patience` without any change
//! from it: no answer, or the same state and files at every answer.

use super::repair;
use super::site::Site;
use super::Digest;

use crate::connection::{redact, Redis};
use crate::report::InstanceReport;
use crate::state::{self, Progress, State};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wordcount_count::counts::Counts;
use wordcount_protocol::keys::crdt_stats;

/// A round of pulls this often; more often once every peer's site is done
/// (only the peers' own pulls are left to wait for).
const ROUND: Duration = Duration::from_secs(1);
const ROUND_AT_THE_END: Duration = Duration::from_millis(100);
/// A progress line at least this often while nothing new happens.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How a convergence ended.
pub enum Convergence {
    /// Nothing to converge: the backend's one Redis holds the whole job.
    Alone,
    Converged(Converged),
    /// The own instance no longer shows its site done: it restarted from
    /// a snapshot older than some commits. The driver redoes them (its
    /// queue restores what was lost), then converges again.
    OwnSiteUndone,
}

/// The own instance, holding every file of the job.
pub struct Converged {
    /// The whole job's counts, materialised on the own instance.
    pub counts: Counts,
    /// Files it holds and, of those, brought by read repair;
    /// `converged_ms` from this site done to every instance equal.
    pub instance: InstanceReport,
}

/// Pulls into `own`, site `site`'s instance, from every peer until all
/// agree (see the module's description).
pub fn converge(
    site: &Site,
    own: &mut Redis,
    patience: Duration,
    stop: &AtomicBool,
) -> Result<Convergence> {
    let started = Instant::now();
    let prefix = own.keys.prefix.clone();
    let mut peers = (site.peers())
        .map(|(index, url)| Peer::open(index, url, &prefix))
        .collect::<Result<Vec<_>>>()?;
    let mut pulled = 0;
    let mut shown = Shown::default();
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        let round = Instant::now();
        if !State::new(own).progress()?.is_done() {
            tracing::warn!(
                "site {}: its own instance lost commits (restarted from an older snapshot); redoing them",
                site.index
            );
            return Ok(Convergence::OwnSiteUndone);
        }
        for peer in &mut peers {
            pulled += peer.visit(site.index, own);
        }
        let mine = repair::digests(own)?;
        let behind: Vec<&Peer> = peers.iter().filter(|p| !p.agrees(&mine)).collect();
        if behind.is_empty() {
            return finish(site, own, pulled, started).map(Convergence::Converged);
        }
        if let Some(stuck) = behind.iter().find(|p| p.changed.elapsed() > patience) {
            bail!(
                "site {}: instance {} ({}) {} for {} without any change; giving up",
                site.index,
                stuck.index,
                stuck.url,
                stuck.state(&mine),
                humantime::format_duration(patience)
            );
        }
        shown.show(site.index, &behind, &mine, pulled);
        let all_done =
            (peers.iter()).all(|p| p.seen.as_ref().is_some_and(|s| s.progress.is_done()));
        let every = if all_done { ROUND_AT_THE_END } else { ROUND };
        while round.elapsed() < every {
            if stop.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Writes the job's result on the own instance: `P:counts` from the
/// converged counts, and the instance's figures in `P:crdt:stats`.
pub fn write_result(own: &mut Redis, counts: &Counts, instance: &InstanceReport) -> Result<()> {
    state::replace_counts(own, counts)?;
    own.run(|c, k| {
        redis::cmd("HSET")
            .arg(&k.crdt_stats)
            .arg(crdt_stats::CONVERGED_MS)
            .arg(instance.converged_ms)
            .exec(c)
    })
}

/// The own instance's counts and figures, and the line that says so.
fn finish(site: &Site, own: &mut Redis, pulled: u64, started: Instant) -> Result<Converged> {
    let instance = repair::instance_report(own, started.elapsed().as_millis() as u64)?;
    eprintln!(
        "site {}: converged in {:.1} s: {pulled} files repaired into instance {}; all {} instances hold the job's {} files",
        site.index,
        started.elapsed().as_secs_f64(),
        site.index,
        site.sites(),
        instance.files_known,
    );
    Ok(Converged {
        counts: repair::counts(own)?,
        instance,
    })
}

/// Another site's instance, as this site's driver pulls from it.
struct Peer {
    /// In the job's order of instances.
    index: usize,
    /// Its URL without any password, for messages.
    url: String,
    redis: Redis,
    /// What it showed when it last answered.
    seen: Option<Seen>,
    /// Why it does not answer, while it does not.
    down: Option<String>,
    /// When it last changed or gave files (at first: when this began).
    changed: Instant,
}

/// A peer's site and files, as read.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    progress: Progress,
    digests: BTreeMap<String, String>,
}

impl Peer {
    fn open(index: usize, url: &str, prefix: &str) -> Result<Peer> {
        Ok(Peer {
            index,
            url: redact(url),
            redis: Redis::open_peer(url, prefix)
                .with_context(|| format!("instance {index} ({})", redact(url)))?,
            seen: None,
            down: None,
            changed: Instant::now(),
        })
    }

    /// Reads where the peer stands, then pulls into `own` what it has and
    /// `own` lacks; returns the files pulled. A peer that does not answer
    /// is skipped until next time, said once.
    fn visit(&mut self, site: usize, own: &mut Redis) -> u64 {
        match self.pull(own) {
            Ok(files) => {
                if self.down.take().is_some() {
                    tracing::info!("site {site}: instance {} answers again", self.index);
                }
                files
            }
            Err(e) => {
                if self.down.is_none() {
                    tracing::warn!(
                        "site {site}: instance {} ({}) unreachable, trying again every second: {e:#}",
                        self.index,
                        self.url
                    );
                }
                self.down = Some(format!("{e:#}"));
                0
            }
        }
    }

    fn pull(&mut self, own: &mut Redis) -> Result<u64> {
        let seen = Seen {
            progress: State::new(&mut self.redis).progress()?,
            digests: repair::digests(&mut self.redis)?,
        };
        if self.seen.as_ref() != Some(&seen) {
            self.changed = Instant::now();
        }
        self.seen = Some(seen);
        let moved = repair::repair(&mut self.redis, own)?;
        if moved.files > 0 {
            self.changed = Instant::now();
        }
        Ok(moved.files)
    }

    /// Its site is done and it holds the files the own instance holds
    /// (`mine`, read after this peer's digests and the pull from it).
    fn agrees(&self, mine: &BTreeMap<String, String>) -> bool {
        self.down.is_none()
            && (self.seen.as_ref()).is_some_and(|s| s.progress.is_done() && &s.digests == mine)
    }

    /// What it is waiting for, in a few words; with `numbers`, how far.
    fn describe(&self, mine: &BTreeMap<String, String>, numbers: bool) -> String {
        let Some(seen) = self.seen.as_ref().filter(|_| self.down.is_none()) else {
            return "unreachable".into();
        };
        let p = &seen.progress;
        if !p.created {
            "has no job yet (its driver has not started)".into()
        } else if !p.is_done() && numbers {
            let settled = p.files_done + p.files_failed;
            format!("not done ({settled}/{} files)", p.files)
        } else if !p.is_done() {
            "not done".into()
        } else if numbers {
            format!(
                "holds {} files, this instance {}",
                files(&seen.digests),
                files(mine)
            )
        } else {
            "holds other files".into()
        }
    }

    /// For the message that gives up on it.
    fn state(&self, mine: &BTreeMap<String, String>) -> String {
        match &self.down {
            Some(e) => format!("unreachable ({e})"),
            None => self.describe(mine, true),
        }
    }
}

/// Files counted by a set of digests.
fn files(digests: &BTreeMap<String, String>) -> u64 {
    (digests.values())
        .filter_map(|d| d.parse::<Digest>().ok())
        .map(|d| d.files)
        .sum()
}

/// Progress lines: one when a peer's state changes, else one every
/// [`PROGRESS_EVERY`].
#[derive(Default)]
struct Shown {
    states: String,
    at: Option<Instant>,
}

impl Shown {
    fn show(
        &mut self,
        site: usize,
        behind: &[&Peer],
        mine: &BTreeMap<String, String>,
        pulled: u64,
    ) {
        let words = |numbers: bool| {
            (behind.iter())
                .map(|p| format!("instance {} {}", p.index, p.describe(mine, numbers)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let states = words(false);
        if states == self.states && self.at.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        tracing::info!(
            "site {site}: converging: {}; {pulled} files repaired so far",
            words(true)
        );
        self.states = states;
        self.at = Some(Instant::now());
    }
}
