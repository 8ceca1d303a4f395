//! Where a job's input is read from and its result written to: a local
//! directory or an S3-compatible object store (AWS S3, MinIO, versitygw,
//! ...), behind one narrow, blocking API for the job's synchronous threads.
//!
//! - [`Location`]: `s3://BUCKET/PREFIX` or a directory.
//! - [`Store`]: lists a location's objects ([`Object`]: key, size and the
//!   version to pin reads to) and streams one from an offset, retrying
//!   transient failures and counting them ([`Store::retries`]).
//! - [`write_atomically`]: writes a result to a file or an S3 key so that a
//!   reader never sees half of it.
//! - [`server::LocalS3`]: a real S3 server (versitygw, built by
//!   `store/versitygw.sh`) on a temp dir, for tests and demos.
//!
//! S3 settings come only from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `AWS_CA_BUNDLE`, ...); see
//! [`Store::open`].

mod location;
mod s3;
pub mod server;
mod store;
mod write;

pub use location::Location;
pub use store::{Object, Store};
pub use write::{write_atomically, write_atomically_with_env};
