//! A straggler: worker 0 runs many times slower. Completion time against
//! the claim timeout: a short timeout lets the others steal its file soon
//! (at the price of counting it twice), a long one waits for it.

use super::claim_timeout::{timeout_experiment, Variant};
use super::{Ctx, Outcome, Scale};
use anyhow::Result;
use wordcount_job::fault::Fault;

struct Params {
    files: usize,
    file_bytes: u64,
    /// How many times slower the straggler is.
    slow: f64,
    timeouts_ms: Vec<u64>,
}

fn params(scale: Scale) -> Params {
    match scale {
        Scale::Tiny => Params {
            files: 4,
            file_bytes: 256 << 10,
            slow: 10.0,
            timeouts_ms: vec![50, 400],
        },
        // Files large enough that the straggler holds each for a good part
        // of a second, so that the timeouts swept matter.
        Scale::Small => Params {
            files: 8,
            file_bytes: 8 << 20,
            slow: 20.0,
            timeouts_ms: vec![10, 50, 100, 200, 400, 800, 1600, 3200],
        },
        Scale::Full => Params {
            files: 20,
            file_bytes: 64 << 20,
            slow: 10.0,
            timeouts_ms: vec![50, 100, 250, 500, 1000, 2500, 5000, 10_000],
        },
    }
}

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let p = params(ctx.scale);
    let variants = vec![
        Variant {
            legend: "no straggler".into(),
            fault: None,
        },
        Variant {
            legend: format!("worker 0 is {}x slower", p.slow),
            fault: Some(Fault::Slow {
                worker: 0,
                factor: p.slow,
            }),
        },
    ];
    timeout_experiment(
        ctx,
        "Straggler: completion time against the claim timeout",
        (p.files, p.file_bytes),
        &p.timeouts_ms,
        &variants,
    )
}
