//! Events for people watching a job: its phase changes, crash faults seen
//! for the first time, files skipped, and the faults the operator injects.

use crate::{
    controller::Context,
    crd::{FaultKind, Phase, WordCountJob, WordCountJobStatus},
    metrics::PhaseLabels,
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
