//! What the live view shows, read from where the job records it: Redis
//! (progress, each commit with its take and commit times, faults fired,
//! the top words) and whoever injects other faults (the runner, the
//! operator). Only ever appended to, so a page can ask for what is new
//! since its last look.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use wordcount_protocol::keys::stream;
use wordcount_protocol::CommitRecord;

/// Something that happened to the job, at a time in ms since the epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at_ms: u64,
    /// e.g. `worker-killed`, `fault-fired`, `throttle-on`: the page picks
    /// an event's colour and label by it.
    pub what: String,
    /// The worker index or the fault, when there is one.
    pub detail: String,
}

impl Event {
    pub fn new(what: &str, detail: String, at_ms: u64) -> Self {
        Event {
            at_ms,
            what: what.into(),
            detail,
        }
    }

    /// A crash fault that fired (`P:faults`: spec -> when).
    pub fn fault_fired(spec: String, at_ms: u64) -> Self {
        Event::new("fault-fired", spec, at_ms)
    }

    /// A stream's source starting or ending to hold files back.
    pub fn throttle(on: bool, at_ms: u64) -> Self {
        Event::new(
            if on { "throttle-on" } else { "throttle-off" },
            String::new(),
            at_ms,
        )
    }
}

/// One committed file: a bar from take to commit on its worker's lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileBar {
    pub path: String,
    pub worker: String,
    pub taken_ms: u64,
    pub committed_ms: u64,
    pub latency_ms: u64,
    pub stolen: bool,
}

impl From<CommitRecord> for FileBar {
    fn from(r: CommitRecord) -> Self {
        FileBar {
            path: r.path,
            worker: r.worker,
            taken_ms: r.taken_ms,
            committed_ms: r.committed_ms,
            latency_ms: r.latency_ms,
            stolen: r.stolen,
        }
    }
}

/// The queue at one look: what the lag chart draws.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    /// Files waiting for a worker.
    pub lag: u64,
    /// Files taken and not committed yet.
    pub pending: u64,
}

/// Where the job stands now (sent whole at every update).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Job {
    /// `starting`, `counting`, `writing the result`, `done` ([`phase`]);
    /// `failed` for a job the operator gave up on.
    pub phase: &'static str,
    pub started_ms: u64,
    pub files: u64,
    pub files_done: u64,
    pub files_failed: u64,
    pub words: u64,
    pub bytes: u64,
    pub bytes_done: u64,
    pub commits_ignored: u64,
    pub top: Vec<(String, u64)>,
    /// A stream's figures (`P:stream`), empty for a batch.
    pub stream: BTreeMap<String, String>,
    /// `--verify`'s verdict once the run has checked the counts.
    pub verified: Option<bool>,
    /// The run is over: nothing will change any more.
    pub ended: bool,
}

/// The phase a job's progress in Redis says: `created` (the driver wrote
/// the settings), `counted` (every file enqueued is committed or failed),
/// `finished` (the summary is written).
pub fn phase(created: bool, counted: bool, finished: bool) -> &'static str {
    if finished {
        "done"
    } else if counted {
        "writing the result"
    } else if created {
        "counting"
    } else {
        "starting"
    }
}

/// Everything seen so far.
#[derive(Debug, Default)]
pub struct Model {
    pub job: Job,
    pub files: Vec<FileBar>,
    pub events: Vec<Event>,
    pub samples: Vec<Sample>,
}

/// What one look found.
#[derive(Debug, Default)]
pub struct Look {
    /// Where the job stands, if Redis answered.
    pub job: Option<Job>,
    pub files: Vec<FileBar>,
    pub events: Vec<Event>,
    pub sample: Option<Sample>,
}

impl Model {
    /// A look's findings; the job's start is the model's own (its owner
    /// knows when the job started, Redis's progress does not say).
    pub fn add(&mut self, look: Look) {
        if let Some(job) = look.job {
            self.job = Job {
                started_ms: self.job.started_ms,
                ..job
            };
        }
        self.files.extend(look.files);
        self.events.extend(look.events);
        self.samples.extend(look.sample);
    }
}

/// What a reader has already put in its model, so that each look adds
/// only what is new.
#[derive(Debug, Default)]
pub struct Seen {
    /// Commits (queue entry id, commit time): read again after Redis came
    /// back from a snapshot, they are not new.
    commits: HashSet<(String, u64)>,
    faults: HashSet<String>,
    /// Whether the stream's source was holding files back at the last look.
    throttled: bool,
}

impl Seen {
    /// The commits among `records` not seen before, as bars. After a
    /// restart from a snapshot the record is read again: files shown
    /// before stay (their work was done), and the ones redone show again,
    /// as they are.
    pub fn files(&mut self, records: impl IntoIterator<Item = CommitRecord>) -> Vec<FileBar> {
        records
            .into_iter()
            .filter(|r| self.commits.insert((r.id.clone(), r.committed_ms)))
            .map(FileBar::from)
            .collect()
    }

    /// The crash faults among `fired` (`P:faults`) not seen before.
    pub fn faults(&mut self, fired: impl IntoIterator<Item = (String, u64)>) -> Vec<Event> {
        fired
            .into_iter()
            .filter(|(spec, _)| self.faults.insert(spec.clone()))
            .map(|(spec, at_ms)| Event::fault_fired(spec, at_ms))
            .collect()
    }

    /// Throttling as a stream's driver publishes it (`P:stream`), seen at
    /// this look (`at_ms`): an event when it changed.
    pub fn throttle<'a>(
        &mut self,
        mut figures: impl Iterator<Item = (&'a String, &'a String)>,
        at_ms: u64,
    ) -> Option<Event> {
        let throttled = figures.any(|(k, v)| k == stream::THROTTLED && v == "1");
        (throttled != std::mem::replace(&mut self.throttled, throttled))
            .then(|| Event::throttle(throttled, at_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, committed_ms: u64) -> CommitRecord {
        CommitRecord {
            id: id.into(),
            path: format!("{id}.txt"),
            worker: "w0".into(),
            stolen: false,
            due_ms: 1,
            injected_ms: 1,
            committed_ms,
            taken_ms: committed_ms - 1,
            latency_ms: committed_ms - 1,
        }
    }

    #[test]
    fn a_commit_read_again_is_not_new_but_one_redone_is() {
        let mut seen = Seen::default();
        let first = seen.files([record("1-0", 10), record("2-0", 20)]);
        assert_eq!(first.len(), 2);
        assert_eq!((first[1].path.as_str(), first[1].taken_ms), ("2-0.txt", 19));
        // Redis came back from a snapshot holding the first commit only;
        // the second file was redone, later.
        let again = seen.files([record("1-0", 10), record("2-0", 35)]);
        assert_eq!(again, vec![FileBar::from(record("2-0", 35))]);
    }

    #[test]
    fn faults_and_throttling_only_when_new() {
        let mut seen = Seen::default();
        let fired = || vec![("worker=0,crash=after-count".to_string(), 5)];
        assert_eq!(
            seen.faults(fired()),
            vec![Event::fault_fired("worker=0,crash=after-count".into(), 5)]
        );
        assert!(seen.faults(fired()).is_empty());

        let figures = |on: &str| {
            BTreeMap::from([
                (stream::RATE.to_string(), "40".to_string()),
                (stream::THROTTLED.to_string(), on.to_string()),
            ])
        };
        assert_eq!(seen.throttle(figures("0").iter(), 1), None);
        assert_eq!(
            seen.throttle(figures("1").iter(), 2),
            Some(Event::throttle(true, 2))
        );
        assert_eq!(seen.throttle(figures("1").iter(), 3), None);
        assert_eq!(
            seen.throttle(BTreeMap::new().iter(), 4),
            Some(Event::throttle(false, 4))
        );
    }

    #[test]
    fn a_look_keeps_the_jobs_start_and_appends_the_rest() {
        let mut m = Model::default();
        m.job.started_ms = 100;
        m.add(Look {
            job: Some(Job {
                phase: phase(true, false, false),
                files: 3,
                ..Job::default()
            }),
            files: vec![FileBar::from(record("1-0", 10))],
            events: vec![Event::new("worker-killed", "1".into(), 150)],
            sample: Some(Sample {
                at_ms: 120,
                lag: 2,
                pending: 1,
            }),
        });
        // Redis did not answer: the job stays as it was.
        m.add(Look::default());
        assert_eq!(
            (m.job.phase, m.job.started_ms, m.job.files),
            ("counting", 100, 3)
        );
        assert_eq!((m.files.len(), m.events.len(), m.samples.len()), (1, 1, 1));
        assert_eq!(phase(true, true, false), "writing the result");
        assert_eq!(phase(false, false, false), "starting");
        assert_eq!(phase(true, true, true), "done");
    }
}
