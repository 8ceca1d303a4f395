//! The Redis Function library `wordcount` (`wordcount.lua`): the job's
//! atomic, idempotent steps, with the names they are called by and the
//! error codes they fail with.

/// The library's source, loaded (`FUNCTION LOAD REPLACE`) on every connect.
pub const SOURCE: &str = include_str!("wordcount.lua");
/// The library's name, as `FUNCTION LIST` shows it.
pub const NAME: &str = "wordcount";

/// Enqueues one injection of a file once. KEYS: queue, enqueued, meta.
/// ARGV: seq, path, size, late_ms, range, version.
pub const ENQUEUE: &str = "wc_enqueue";
/// Commits a file exactly once. See wordcount.lua for its keys and arguments.
pub const COMMIT: &str = "wc_commit";
/// Marks a crash fault as fired, once per job.
pub const FIRE: &str = "wc_fire";

/// The lease queue's functions (RedisRaft: no streams, and the caller's
/// clock, passed in, since a function may not read the time). See
/// wordcount.lua for their keys and arguments.
pub mod lease {
    pub const ENQUEUE: &str = "wc_lease_enqueue";
    pub const TAKE: &str = "wc_lease_take";
    pub const COMMIT: &str = "wc_lease_commit";
    pub const FIRE: &str = "wc_lease_fire";
}

/// The CRDT's function (three sites, each with its own Redis). See
/// wordcount.lua and docs/src/protocol.md for its keys and arguments.
pub mod crdt {
    /// Applies files (global id, packed counts) to one instance: only the
    /// ids new to it are stored and counted. KEYS: crdt_files,
    /// crdt_digest, crdt_stats. ARGV: repair (`1`/`0`), n, then n id,
    /// packed pairs. Returns `[files, bytes]` new to the instance.
    pub const APPLY: &str = "wc_crdt_apply";
}

/// Error codes the functions fail with: the first word of the error reply,
/// which clients match (never the message).
pub mod error {
    /// `wc_commit` of staged counts whose stage is gone (Redis came back
    /// from a snapshot without it): stage again, then commit.
    pub const STAGE_GONE: &str = "WCSTAGEGONE";
    /// `wc_crdt_apply` of an id without its origin site (`SITE/...`);
    /// nothing was written.
    pub const BAD_ID: &str = "WCBADID";
}

/// How Redis itself says that a function is not loaded (Redis's message,
/// after its generic `ERR` code; it has no code of its own).
pub const NOT_LOADED: &str = "Function not found";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_registers_every_name_and_code() {
        assert!(SOURCE.starts_with(&format!("#!lua name={NAME}\n")));
        for f in [
            ENQUEUE,
            COMMIT,
            FIRE,
            lease::ENQUEUE,
            lease::TAKE,
            lease::COMMIT,
            lease::FIRE,
            crdt::APPLY,
        ] {
            assert!(
                SOURCE.contains(&format!("register_function('{f}'")),
                "{f} not registered"
            );
        }
        for code in [error::STAGE_GONE, error::BAD_ID] {
            assert!(SOURCE.contains(&format!("'{code} ")), "{code} not raised");
        }
    }
}
