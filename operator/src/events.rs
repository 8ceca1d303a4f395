//! Events for people watching a job: its phase changes, crash faults seen
//! for the first time, files skipped, an output that could not be written,
//! a stream's source throttled and not, and the faults the operator injects.

use crate::{
    context::Context,
    crd::{FaultKind, Phase, WordCountJob, WordCountJobStatus},
    metrics::PhaseLabels,
    status,
};
use kube::{
    runtime::events::{Event, EventType},
    Resource,
};
use tracing::warn;

/// Events for what changed between two statuses of a job.
pub async fn changes(
    ctx: &Context,
    job: &WordCountJob,
    previous: &WordCountJobStatus,
    now: &WordCountJobStatus,
) {
    if let Some(phase) = now.phase.filter(|p| previous.phase != Some(*p)) {
        ctx.metrics
            .phase_transitions
            .get_or_create(&PhaseLabels {
                phase: phase.as_str().into(),
            })
            .inc();
        // Succeeded with files skipped (`onUnreadable: Skip`) deserves a look too.
        let skipped = phase == Phase::Succeeded && now.files_failed.unwrap_or(0) > 0;
        let type_ = if phase == Phase::Failed || skipped {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let note = now.message.clone().unwrap_or_default();
        publish(ctx, job, type_, phase.as_str(), "Reconcile", note).await;
    }
    for fault in now.faults.iter().filter(|f| f.kind == FaultKind::Crash) {
        if !previous.faults.contains(fault) {
            let note = format!("crash fault {} fired", fault.target);
            publish(
                ctx,
                job,
                EventType::Warning,
                "FaultInjected",
                "InjectFault",
                note,
            )
            .await;
        }
    }
    if let Some((reason, note)) = output_trouble(previous, now) {
        publish(ctx, job, EventType::Warning, reason, "WriteOutput", note).await;
    }
    if let Some((type_, reason, note)) = throttle_change(job, previous, now) {
        publish(ctx, job, type_, reason, "Backpressure", note).await;
    }
}

/// `OutputRetrying` or `OutputFailed` when the job has just come to either
/// (its phase stays Running, so no phase Event says it).
fn output_trouble(
    previous: &WordCountJobStatus,
    now: &WordCountJobStatus,
) -> Option<(&'static str, String)> {
    let reason =
        |s: &WordCountJobStatus| status::find(s, status::PROGRESSING).map(|c| c.reason.clone());
    let now_reason = reason(now)?;
    let trouble = [status::OUTPUT_RETRYING, status::OUTPUT_FAILED]
        .into_iter()
        .find(|r| *r == now_reason)?;
    (reason(previous).as_deref() != Some(trouble))
        .then(|| (trouble, now.message.clone().unwrap_or_default()))
}

/// `ThrottleStarted` or `ThrottleStopped` when a stream's source began or
/// ceased holding back files between the two statuses.
fn throttle_change(
    job: &WordCountJob,
    previous: &WordCountJobStatus,
    now: &WordCountJobStatus,
) -> Option<(EventType, &'static str, String)> {
    let was = previous.stream.as_ref().is_some_and(|s| s.throttled);
    let s = now.stream.as_ref().filter(|s| s.throttled != was)?;
    Some(if s.throttled {
        let why = match &job.spec.stream {
            Some(spec) => format!(
                " (backpressure {:?}, maxLag {})",
                spec.backpressure, spec.max_lag
            ),
            None => String::new(),
        };
        (
            EventType::Warning,
            "ThrottleStarted",
            format!(
                "the source holds back files that are due: {} waiting, {} in flight{why}",
                s.lag, s.pending
            ),
        )
    } else {
        (
            EventType::Normal,
            "ThrottleStopped",
            format!(
                "the source injects on schedule again ({} waiting, {} in flight); throttled {} in all",
                s.lag,
                s.pending,
                crate::duration::Duration::from_millis(u64::try_from(s.throttled_ms).unwrap_or(0))
            ),
        )
    })
}

/// Events are for people watching; failing to write one must not fail the reconcile.
pub async fn publish(
    ctx: &Context,
    job: &WordCountJob,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(note, 1024)),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &job.object_ref(&())).await {
        warn!(reason, error = %e, "could not publish event");
    }
}

/// At most `max` bytes, cut at a character boundary: the API server refuses
/// Event notes over 1 kB.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{crd::StreamStatus, resources::fixtures};

    fn throttled(on: bool) -> WordCountJobStatus {
        WordCountJobStatus {
            stream: Some(StreamStatus {
                lag: 150,
                pending: 3,
                throttled: on,
                throttled_ms: 4200,
                ..StreamStatus::default()
            }),
            ..WordCountJobStatus::default()
        }
    }

    #[test]
    fn throttle_events_only_when_it_changes() {
        let mut job = fixtures::synthetic("demo");
        job.spec.stream = serde_json::from_value(
            serde_json::json!({"rate": 20, "backpressure": "Pause", "maxLag": 100}),
        )
        .unwrap();
        let batch = WordCountJobStatus::default();
        let (on, off) = (throttled(true), throttled(false));

        let (type_, reason, note) = throttle_change(&job, &batch, &on).unwrap();
        assert_eq!((type_, reason), (EventType::Warning, "ThrottleStarted"));
        assert_eq!(
            note,
            "the source holds back files that are due: 150 waiting, 3 in flight (backpressure Pause, maxLag 100)"
        );
        let (type_, reason, note) = throttle_change(&job, &on, &off).unwrap();
        assert_eq!((type_, reason), (EventType::Normal, "ThrottleStopped"));
        assert!(note.ends_with("throttled 4s200ms in all"), "{note}");

        assert!(throttle_change(&job, &on, &on).is_none());
        assert!(throttle_change(&job, &off, &off).is_none());
        assert!(throttle_change(&job, &batch, &off).is_none());
        assert!(throttle_change(&job, &batch, &batch).is_none());
    }

    #[test]
    fn event_notes_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("short".into(), 1024), "short");
        let long = "é".repeat(600); // 1200 bytes
        let cut = truncate(long, 1024);
        assert_eq!(cut.len(), 1024);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate("aé".into(), 2), "a");
    }
}
