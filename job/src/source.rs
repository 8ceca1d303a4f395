//! What feeds the queue. A batch injects every file at once. A stream
//! injects `rate` files a second, one micro-batch a tick, cycling over the
//! input, and when the workers fall behind it may hold back what is due
//! (backpressure): a held-back file is injected late, never dropped, and
//! its latency still counts from when it was due.
//!
//! Pure: the driver tells it the time and the queue's depth, it says what
//! to inject.

use crate::queue::{Depth, Injection, Unit};
use std::time::Duration;
use wordcount_protocol::Backpressure;

/// How a stream injects.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamPlan {
    /// Files a second.
    pub rate: f64,
    /// How long files fall due; `None`: until every file was injected once.
    pub duration: Option<Duration>,
    /// One micro-batch a tick.
    pub tick: Duration,
    pub backpressure: Backpressure,
    /// Lag + pending above which the source holds back.
    pub max_lag: u64,
}

impl StreamPlan {
    /// Files due in one tick (fractional: a rate of 2.5/s with 1 s ticks
    /// alternates batches of 2 and 3).
    fn per_tick(&self) -> f64 {
        self.rate * self.tick.as_secs_f64()
    }
}

/// Something the source did, for the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceEvent {
    /// It began holding back files that were due.
    ThrottleOn,
    ThrottleOff,
}

pub struct Source {
    /// What a batch injects once, and a stream cycles over.
    units: Vec<Unit>,
    plan: Option<StreamPlan>,
    /// Injections in all.
    total: u64,
    injected: Vec<Injection>,
    /// When each injection was made (since the start).
    injected_at: Vec<Duration>,
    next_tick: u64,
    /// `pause`: in the throttled state of its hysteresis.
    paused: bool,
    /// `adaptive`: the current rate, and files it may inject now.
    rate_now: f64,
    credit: f64,
    throttled_since: Option<Duration>,
    throttled_before: Duration,
    events: Vec<(Duration, SourceEvent)>,
}

impl Source {
    /// `units` to inject; `plan` makes it a stream.
    pub fn new(units: Vec<Unit>, plan: Option<StreamPlan>) -> Self {
        let total = match &plan {
            _ if units.is_empty() => 0,
            Some(StreamPlan {
                rate,
                duration: Some(d),
                ..
            }) => (rate * d.as_secs_f64()).round() as u64,
            _ => units.len() as u64,
        };
        Source {
            rate_now: plan.as_ref().map_or(0.0, |p| p.rate),
            units,
            plan,
            total,
            injected: Vec::new(),
            injected_at: Vec::new(),
            next_tick: 0,
            paused: false,
            credit: 0.0,
            throttled_since: None,
            throttled_before: Duration::ZERO,
            events: Vec::new(),
        }
    }

    pub fn plan(&self) -> Option<&StreamPlan> {
        self.plan.as_ref()
    }

    /// Injections in all, once the source is done.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Every injection so far, in order.
    pub fn injected(&self) -> &[Injection] {
        &self.injected
    }

    /// When each injection was made, since the start.
    pub fn injected_at(&self) -> &[Duration] {
        &self.injected_at
    }

    pub fn is_done(&self) -> bool {
        self.injected.len() as u64 >= self.total
    }

    /// When the next tick is due (since the start); `None` once done.
    pub fn next_tick_at(&self) -> Option<Duration> {
        if self.is_done() {
            return None;
        }
        Some(
            self.plan
                .as_ref()
                .map_or(Duration::ZERO, |p| p.tick.mul_f64(self.next_tick as f64)),
        )
    }

    /// When injection `seq` falls due, since the start.
    pub fn due_at(&self, seq: u64) -> Duration {
        match &self.plan {
            None => Duration::ZERO,
            Some(p) => p.tick.mul_f64((seq as f64 / p.per_tick()).floor()),
        }
    }

    /// Injections due by the end of tick `k`.
    fn due_by_tick(&self, k: u64) -> u64 {
        match &self.plan {
            None => self.total,
            Some(p) => ((k + 1) as f64 * p.per_tick() - 1e-9)
                .ceil()
                .min(self.total as f64) as u64,
        }
    }

    /// Runs the tick due at `now` (if any) given the queue's `depth`, and
    /// returns what to inject now.
    pub fn step(&mut self, now: Duration, depth: Depth) -> Vec<Injection> {
        match self.next_tick_at() {
            Some(at) if at <= now => {}
            _ => return Vec::new(),
        }
        // A driver that fell behind runs the latest tick once.
        let k = match &self.plan {
            Some(p) => (now.as_secs_f64() / p.tick.as_secs_f64()).floor() as u64,
            None => 0,
        };
        self.next_tick = k + 1;
        let done = self.injected.len() as u64;
        let owed = self.due_by_tick(k) - done;
        let n = owed.min(self.allowance(owed, depth));
        let from = self.injected.len();
        for seq in done..done + n {
            let unit = self.units[(seq % self.units.len() as u64) as usize].clone();
            self.injected.push(Injection {
                seq,
                unit,
                late: now.saturating_sub(self.due_at(seq)),
            });
            self.injected_at.push(now);
        }
        self.note_throttle(now, n < owed);
        self.injected[from..].to_vec()
    }

    /// How many of `owed` due files the backpressure lets through now.
    fn allowance(&mut self, owed: u64, depth: Depth) -> u64 {
        let Some(p) = &self.plan else { return owed };
        let batch = p.per_tick().ceil() as u64;
        let depth = depth.total();
        match p.backpressure {
            Backpressure::None => owed,
            Backpressure::Pause => {
                if depth > p.max_lag {
                    self.paused = true;
                } else if depth * 2 < p.max_lag {
                    self.paused = false;
                }
                if self.paused {
                    0
                } else {
                    // Up to max-lag, at least a batch: the depth stays
                    // under max-lag + one batch, and a backlog drains.
                    batch.max(p.max_lag.saturating_sub(depth))
                }
            }
            Backpressure::Adaptive => {
                // AIMD, as TCP does: halve on congestion, grow by a tenth of
                // the asked rate while the queue is short; up to twice the
                // rate, so that a backlog drains.
                if depth > p.max_lag {
                    self.rate_now = (self.rate_now / 2.0).max(p.rate / 64.0);
                } else if depth * 2 < p.max_lag {
                    self.rate_now = (self.rate_now + p.rate / 10.0).min(2.0 * p.rate);
                }
                let per_tick = self.rate_now * p.tick.as_secs_f64();
                self.credit = (self.credit + per_tick).min(per_tick.max(1.0));
                let n = (self.credit.floor() as u64).min(owed);
                self.credit -= n as f64;
                n
            }
        }
    }

    fn note_throttle(&mut self, now: Duration, throttled: bool) {
        match (self.throttled_since, throttled) {
            (None, true) => {
                self.throttled_since = Some(now);
                self.events.push((now, SourceEvent::ThrottleOn));
            }
            (Some(since), false) => {
                self.throttled_before += now - since;
                self.throttled_since = None;
                self.events.push((now, SourceEvent::ThrottleOff));
            }
            _ => {}
        }
    }

    /// True while files that are due are held back.
    pub fn throttled(&self) -> bool {
        self.throttled_since.is_some()
    }

    /// Time spent throttled up to `now`.
    pub fn throttled_for(&self, now: Duration) -> Duration {
        self.throttled_before + self.throttled_since.map_or(Duration::ZERO, |s| now - s)
    }

    /// The adaptive source's current rate; the asked rate otherwise.
    pub fn rate_now(&self) -> f64 {
        self.rate_now
    }

    pub fn events(&self) -> &[(Duration, SourceEvent)] {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: usize) -> Vec<Unit> {
        (0..n).map(|i| Unit::file(format!("f{i}"), 10)).collect()
    }

    fn plan(rate: f64, secs: Option<u64>, backpressure: Backpressure) -> StreamPlan {
        StreamPlan {
            rate,
            duration: secs.map(Duration::from_secs),
            tick: Duration::from_secs(1),
            backpressure,
            max_lag: 10,
        }
    }

    const IDLE: Depth = Depth { lag: 0, pending: 0 };

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_batch_injects_every_file_at_once() {
        let mut s = Source::new(files(5), None);
        let got = s.step(Duration::ZERO, IDLE);
        assert_eq!(got.len(), 5);
        assert_eq!(got[2].unit.path, "f2");
        assert!(s.is_done());
        assert_eq!(s.next_tick_at(), None);
    }

    #[test]
    fn a_stream_injects_rate_per_tick_and_cycles() {
        let mut s = Source::new(files(3), Some(plan(2.5, Some(4), Backpressure::None)));
        assert_eq!(s.total(), 10);
        let sizes: Vec<usize> = (0..4).map(|k| s.step(secs(k as f64), IDLE).len()).collect();
        assert_eq!(sizes, [3, 2, 3, 2]);
        assert!(s.is_done());
        let paths: Vec<&str> = s.injected().iter().map(|i| i.unit.path.as_str()).collect();
        assert_eq!(paths[..4], ["f0", "f1", "f2", "f0"]);
        // Sequence numbers are unique: a file injected twice is two entries.
        assert_eq!(s.injected()[9].seq, 9);
        assert_eq!(s.due_at(3), secs(1.0));
    }

    #[test]
    fn a_tick_waits_for_its_time_and_a_late_driver_catches_up() {
        let mut s = Source::new(files(2), Some(plan(1.0, Some(5), Backpressure::None)));
        assert_eq!(s.step(Duration::ZERO, IDLE).len(), 1);
        assert!(s.step(secs(0.5), IDLE).is_empty());
        let late = s.step(secs(3.2), IDLE);
        assert_eq!(late.len(), 3);
        assert_eq!(late[0].late, secs(2.2));
        assert_eq!(late[2].late, secs(0.2));
        assert_eq!(s.next_tick_at(), Some(secs(4.0)));
    }

    #[test]
    fn without_a_duration_every_file_is_injected_once() {
        let mut s = Source::new(files(4), Some(plan(3.0, None, Backpressure::None)));
        s.step(secs(0.0), IDLE);
        s.step(secs(1.0), IDLE);
        assert!(s.is_done());
        assert_eq!(s.injected().len(), 4);
    }

    #[test]
    fn pause_holds_back_above_max_lag_and_resumes_below_half() {
        let mut s = Source::new(files(4), Some(plan(5.0, Some(100), Backpressure::Pause)));
        let deep = Depth { lag: 9, pending: 2 };
        assert_eq!(s.step(secs(0.0), IDLE).len(), 5);
        assert!(s.step(secs(1.0), deep).is_empty());
        assert!(s.throttled());
        // Between half and max: still paused.
        assert!(s.step(secs(2.0), Depth { lag: 6, pending: 0 }).is_empty());
        // Below half: the backlog goes out, up to max-lag at once.
        let back = s.step(secs(3.0), Depth { lag: 2, pending: 0 });
        assert_eq!(back.len(), 8);
        assert_eq!(back[0].late, secs(2.0));
        assert_eq!(s.step(secs(4.0), IDLE).len(), 10);
        assert!(s.throttled());
        assert_eq!(s.step(secs(5.0), IDLE).len(), 7);
        assert!(!s.throttled());
        assert_eq!(s.throttled_for(secs(6.0)), secs(4.0));
        assert_eq!(
            s.events(),
            [
                (secs(1.0), SourceEvent::ThrottleOn),
                (secs(5.0), SourceEvent::ThrottleOff)
            ]
        );
    }

    #[test]
    fn adaptive_halves_its_rate_on_congestion_and_grows_it_back() {
        let mut s = Source::new(
            files(4),
            Some(plan(20.0, Some(100), Backpressure::Adaptive)),
        );
        let deep = Depth {
            lag: 50,
            pending: 2,
        };
        s.step(secs(0.0), deep);
        assert_eq!(s.rate_now(), 10.0);
        s.step(secs(1.0), deep);
        assert_eq!(s.rate_now(), 5.0);
        assert!(s.throttled());
        s.step(secs(2.0), IDLE);
        assert_eq!(s.rate_now(), 7.0);
        // Never more than what is due.
        assert!(s.injected().len() as u64 <= s.due_by_tick(2));
    }
}
