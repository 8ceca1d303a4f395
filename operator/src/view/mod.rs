//! The live view of every job (the page of `wordcount run --ui`, from the
//! `wordcount-view` crate), served by the operator: `/` lists the jobs,
//! `/ns/NAMESPACE/NAME/` shows one (names are unique only within a
//! namespace). Each running job has a reader ([`reader`]) that looks at
//! its Redis every `TICK`; the operator's own faults (pod kills,
//! partitions) come from the status the reconcile derives. A finished
//! job's view stays, final, until the job is deleted.

pub mod http;
mod reader;

use crate::crd::{
    FaultKind, InjectedFault, Phase, PodKillTarget, WordCountJob, WordCountJobStatus,
};
use crate::redis::Endpoint;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::{sync::watch, task::JoinHandle};
use wordcount_view::{epoch_ms, lock, Event, Model, Shared, TICK};

/// A job: (namespace, name).
type Key = (String, String);

/// The views of the jobs the operator runs.
#[derive(Default)]
pub struct Views {
    jobs: Mutex<BTreeMap<Key, JobView>>,
    /// The controllers' caches of jobs: what the index lists, and what
    /// tells a deleted job.
    stores: Mutex<Vec<Store<WordCountJob>>>,
}

struct JobView {
    model: Shared,
    reader: Option<Reading>,
    /// How many of the operator's faults are on the timeline already.
    faults: usize,
}

/// A job's reader, looking until told to stop.
struct Reading {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Views {
    /// Also list and keep the jobs of this controller's cache.
    pub fn watch(&self, store: Store<WordCountJob>) {
        self.stores().push(store);
    }

    /// What a reconcile saw: starts the job's reader once it has a Redis,
    /// adds the operator's new faults, and once the job has finished reads
    /// it a last time and keeps its final state (the status's top words).
    pub async fn observe(
        &self,
        job: &WordCountJob,
        redis: Option<&Endpoint>,
        status: &WordCountJobStatus,
    ) {
        let Some(ns) = job.namespace() else { return };
        let key = (ns, job.name_any());
        let ended = status.phase.is_some_and(Phase::is_terminal);
        let (model, stopping) = {
            let mut jobs = self.jobs();
            let view = jobs.entry(key).or_insert_with(|| JobView {
                model: Shared::default(),
                reader: None,
                faults: 0,
            });
            let mut m = lock(&view.model);
            if m.job.ended {
                return;
            }
            if let Some(start) = &status.start_time {
                m.job.started_ms = u64::try_from(start.0.as_millisecond()).unwrap_or(0);
            } else if m.job.started_ms == 0 {
                m.job.started_ms = epoch_ms();
            }
            m.events
                .extend(operator_faults(job, status, &mut view.faults));
            drop(m);
            match (&view.reader, redis) {
                (None, Some(ep)) if !ended => {
                    view.reader = Some(start(view.model.clone(), ep.clone()));
                }
                _ => {}
            }
            let stopping = if ended { view.reader.take() } else { None };
            (view.model.clone(), stopping)
        };
        if !ended {
            return;
        }
        if let Some(r) = stopping {
            // One last look (Redis is about to be scaled to zero), bounded:
            // a Redis that does not answer must not hold up the reconcile.
            let _ = r.stop.send(true);
            let abort = r.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), r.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        finish(&mut lock(&model), status);
    }

    /// The model of a job's view, if it has one.
    pub fn model(&self, ns: &str, name: &str) -> Option<Shared> {
        let key = (ns.to_string(), name.to_string());
        self.jobs().get(&key).map(|v| v.model.clone())
    }

    /// The jobs in the controllers' caches: namespace, name, phase, and
    /// whether they have a view.
    pub fn index(&self) -> Vec<(String, String, Option<Phase>, bool)> {
        let jobs = self.jobs();
        let mut all: Vec<_> = self
            .stores()
            .iter()
            .flat_map(|s| s.state())
            .filter_map(|j| {
                let key = (j.namespace()?, j.name_any());
                let phase = j.status.as_ref().and_then(|s| s.phase);
                let viewed = jobs.contains_key(&key);
                Some((key.0, key.1, phase, viewed))
            })
            .collect();
        // Several caches (one per namespace watched) never share a job.
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// Lets go of the views of deleted jobs (gone from every cache), and
    /// stops their readers.
    pub fn sweep(&self) {
        let stores = self.stores().clone();
        let gone = |(ns, name): &Key| {
            let at = ObjectRef::<WordCountJob>::new(name).within(ns);
            stores.iter().all(|s| s.get(&at).is_none())
        };
        self.jobs().retain(|key, view| {
            let keep = !gone(key);
            if !keep {
                if let Some(r) = view.reader.take() {
                    r.task.abort();
                }
            }
            keep
        });
    }

    /// Sweeps now and then, forever.
    pub async fn sweep_every(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.sweep();
        }
    }

    fn jobs(&self) -> MutexGuard<'_, BTreeMap<Key, JobView>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stores(&self) -> MutexGuard<'_, Vec<Store<WordCountJob>>> {
        self.stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A reader looking at the job's Redis every `TICK` until told to stop,
/// then once more.
fn start(model: Shared, redis: Endpoint) -> Reading {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut reader = reader::Reader::new(redis);
        loop {
            let last = *stopped.borrow_and_update();
            let look = reader.look().await;
            lock(&model).add(look);
            if last {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = stopped.changed() => {}
            }
        }
    });
    Reading { stop, task }
}

/// The operator's faults in `status` after the first `seen`, as the
/// events the page knows: a worker's or Redis's pod killed, a partition.
/// (Crash faults are the workers' own: the reader sees them in Redis.) A
/// fault's time is precise in the status that recorded it and whole
/// seconds once read back from the API server, so faults are told apart by
/// their place: each is recorded after those before it.
fn operator_faults(
    job: &WordCountJob,
    status: &WordCountJobStatus,
    seen: &mut usize,
) -> Vec<Event> {
    let killed = match job.spec.pod_kills().map(|k| k.target) {
        Some(PodKillTarget::Redis) => "redis-killed",
        _ => "worker-killed",
    };
    let ours: Vec<(&str, &InjectedFault)> = status
        .faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Crash => None,
            FaultKind::PodKill => Some((killed, f)),
            FaultKind::Partition => Some(("partition", f)),
        })
        .collect();
    let new = ours.get(*seen..).unwrap_or_default();
    *seen = (*seen).max(ours.len());
    new.iter()
        .map(|(what, f)| {
            let at_ms = u64::try_from(f.time.0.as_millisecond()).unwrap_or(0);
            Event::new(what, f.target.clone(), at_ms)
        })
        .collect()
}

/// A finished job's final state: its phase, and the counts and top words
/// of the driver's summary, as the status has them.
fn finish(m: &mut Model, status: &WordCountJobStatus) {
    m.job.phase = match status.phase {
        Some(Phase::Succeeded) => "done",
        _ => "failed",
    };
    if !status.top_words.is_empty() {
        m.job.top = status
            .top_words
            .iter()
            .map(|w| (w.word.clone(), u64::try_from(w.count).unwrap_or(0)))
            .collect();
    }
    if let Some(words) = status.words {
        m.job.words = u64::try_from(words).unwrap_or(0);
    }
    m.job.ended = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn fault(kind: FaultKind, target: &str, ms: i64) -> InjectedFault {
        InjectedFault {
            kind,
            target: target.into(),
            time: Time(Timestamp::from_millisecond(ms).unwrap()),
        }
    }

    #[test]
    fn each_operator_fault_once_though_its_time_is_read_back_in_seconds() {
        let job = fixtures::synthetic("demo");
        let mut seen = 0;
        let mut status = WordCountJobStatus {
            faults: vec![
                fault(FaultKind::Crash, "worker=1,crash=after-count", 1_000),
                fault(FaultKind::PodKill, "demo-workers-0-abcde", 3_700),
            ],
            ..WordCountJobStatus::default()
        };
        assert_eq!(
            operator_faults(&job, &status, &mut seen),
            vec![Event::new(
                "worker-killed",
                "demo-workers-0-abcde".into(),
                3_700
            )]
        );
        // Read back from the API server (whole seconds), with a partition
        // recorded since.
        status.faults[1] = fault(FaultKind::PodKill, "demo-workers-0-abcde", 3_000);
        status
            .faults
            .push(fault(FaultKind::Partition, "demo-redis-ingress", 6_200));
        assert_eq!(
            operator_faults(&job, &status, &mut seen),
            vec![Event::new("partition", "demo-redis-ingress".into(), 6_200)]
        );
        assert!(operator_faults(&job, &status, &mut seen).is_empty());
    }

    #[test]
    fn a_finished_jobs_view_has_its_phase_and_the_summarys_top_words() {
        let mut m = Model::default();
        m.job.phase = "done";
        m.job.top = vec![("so".into(), 1)];
        let status = WordCountJobStatus {
            phase: Some(Phase::Succeeded),
            words: Some(7),
            top_words: vec![crate::crd::WordCount {
                word: "the".into(),
                count: 5,
            }],
            ..WordCountJobStatus::default()
        };
        finish(&mut m, &status);
        assert_eq!((m.job.phase, m.job.words, m.job.ended), ("done", 7, true));
        assert_eq!(m.job.top, vec![("the".to_string(), 5)]);
        finish(
            &mut m,
            &WordCountJobStatus {
                phase: Some(Phase::Failed),
                ..WordCountJobStatus::default()
            },
        );
        assert_eq!((m.job.phase, m.job.top.len()), ("failed", 1));
    }
}
