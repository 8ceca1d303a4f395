//! Words and counting, with no Redis: the tokenizers, the scanning loop,
//! the counting engine (one file in bounded memory; many files serially,
//! on threads or in child processes), counts and their packed form, input
//! listing, byte ranges of a large file, and the synthetic corpus generator.

pub mod counts;
pub mod engine;
pub mod generate;
pub mod input;
pub mod range;
pub mod scan;
pub mod tokenize;
