//! The labs: each lab's questions, answered from the outcomes of the
//! experiments it runs (`questions`), and `wordcount report`, which runs
//! them and writes report.md and report.html (`report`).

mod questions;
mod report;

pub use report::{report, ReportArgs};
