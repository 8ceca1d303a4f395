//! Exit codes of `wordcount` (driver, worker, run). The operator reads them
//! from terminated pods; a Job's pod failure policy matches them.

/// The job is done.
pub const SUCCESS: i32 = 0;
/// An error; the message is on stderr.
pub const ERROR: i32 = 1;
/// Bad command-line arguments (clap's code).
pub const USAGE: i32 = 2;
/// Every readable file was counted and the totals reported, but some files
/// could not be read (and `--on-unreadable` is `fail`). Final: retrying
/// would read the same files.
pub const UNREADABLE: i32 = 3;
/// The job is done and its counts are whole in Redis, but its output
/// (`--output`) could not be written; the message names the location and
/// the error. Not final: a driver run again (its Redis kept) writes it.
pub const OUTPUT: i32 = 4;
/// Interrupted (Ctrl-C), as a shell reports SIGINT.
pub const INTERRUPTED: i32 = 130;
/// A crash fault: SIGKILL, as a container runtime reports it.
pub const CRASHED: i32 = 128 + 9;
