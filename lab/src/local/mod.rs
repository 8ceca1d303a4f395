//! Running a whole job on this machine: a real `redis-server` (or
//! RedisRaft's replicas), the driver and worker processes, and the faults
//! that hit them.

mod job_redis;
mod netns;
mod options;
mod pool;
pub mod raft;
mod redis_chaos;
mod redis_server;
mod runner;
pub mod sites;
mod verify;

pub use job_redis::RaftSetup;
pub use options::{CrdtSetup, CutSpan, Partition, RunOptions, RunOutcome, Samples, SitesTimeline};
pub use redis_chaos::{RedisFaults, RedisMoment};
pub use redis_server::RedisServer;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Runs a whole job here: the CRDT mode's sites, or one Redis (or
/// RedisRaft's replicas) for all the workers.
pub fn run(
    opts: &RunOptions,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<RunOutcome> {
    match &opts.crdt {
        Some(setup) => sites::run(opts, setup, stop),
        None => runner::run(opts, stop),
    }
}

/// The random choices of one purpose (`what`) of a run: every choice of a
/// run (which worker, replica or site) comes from its `--seed`, so that
/// passing the seed again replays them.
pub fn seeded(seed: u64, what: &str) -> StdRng {
    let salt = what.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    StdRng::seed_from_u64(seed ^ salt)
}

/// Makes the child get SIGKILL when the thread that started it ends, so no
/// process outlives the runner, whatever stops it.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
