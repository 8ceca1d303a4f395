//! [`Store`]: lists a [`Location`]'s objects and streams one of them, for
//! synchronous callers, from a directory or an S3 bucket.
//!
//! An S3 store keeps a private tokio runtime on the caller's thread (a
//! current-thread runtime: whoever blocks on it drives the sockets), so
//! that a read wakes no other thread: with two worker threads, a job read
//! from a local server spent five times the system time of reading files.
//! object_store's client runs there.

use crate::location::Location;
use crate::s3;
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::runtime::Runtime;

/// Above this size an S3 write is a multipart upload, of parts this size
/// (S3 takes 5 MiB to 5 GiB; 10,000 parts at most, so 100 GiB here).
const PART_SIZE: usize = 10 << 20;

/// One object (or file) under a location: key relative to the prefix/dir,
/// size, and the version to pin reads to (the ETag for S3; None for files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    pub version: Option<String>,
}

/// A location opened for reading. Send + Sync: the job's threads share one.
/// Its methods block, so they are for plain threads, not async tasks (an
/// S3 store blocks on a runtime of its own).
pub struct Store {
    location: Location,
    backend: Backend,
}

enum Backend {
    Dir(PathBuf),
    S3(S3),
}

struct S3 {
    bucket: String,
    /// Empty, or the prefix without slashes at either end.
    prefix: String,
    client: Arc<AmazonS3>,
    /// Shared with every open reader, which blocks on it: a reader may
    /// outlive its store.
    runtime: Arc<Runtime>,
    retries: Arc<AtomicU64>,
}

/// Never the client's own Debug: it would print its configuration, which
/// holds the credentials.
impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens `location`. For S3 the settings come from the standard AWS
    /// environment variables only (as `AmazonS3Builder::from_env`): at least
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (else object_store
    /// asks the instance metadata service), `AWS_REGION` (default
    /// us-east-1), `AWS_ENDPOINT_URL` for a server other than AWS,
    /// `AWS_ALLOW_HTTP=true` for plain http, `AWS_CA_BUNDLE` for a private
    /// CA. Requests are path style. Nothing is sent until `list`.
    pub fn open(location: &Location) -> Result<Store> {
        Self::open_with_env(location, &s3::process_env())
    }

    /// As [`Store::open`], with the AWS variables taken from `env` instead
    /// of the process environment (which a test process, running several
    /// servers at once, cannot change safely); `LocalS3::env` gives them.
    pub fn open_with_env(location: &Location, env: &[(String, String)]) -> Result<Store> {
        let backend = match location {
            Location::Dir(dir) => Backend::Dir(dir.clone()),
            Location::S3 { bucket, prefix } => {
                let retries = Arc::new(AtomicU64::new(0));
                let client = s3::client(bucket, env, Arc::clone(&retries))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start the S3 client's runtime")?;
                Backend::S3(S3 {
                    bucket: bucket.clone(),
                    prefix: prefix.trim_matches('/').to_owned(),
                    client: Arc::new(client),
                    runtime: Arc::new(runtime),
                    retries,
                })
            }
        };
        Ok(Store {
            location: location.clone(),
            backend,
        })
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Every object under the location, sorted by key. For S3 all pages of
    /// the listing (1,000 keys each); for a directory, its files
    /// recursively, following links.
    pub fn list(&self) -> Result<Vec<Object>> {
        let mut objects = match &self.backend {
            Backend::Dir(dir) => wordcount_count::input::list_relative(dir)?
                .into_iter()
                .map(|file| Object {
                    // A name that is not UTF-8 is kept (lossily): opening
                    // it then fails and names it, as for any unreadable
                    // file of the input.
                    key: file.path.to_string_lossy().into_owned(),
                    size: file.size,
                    version: None,
                })
                .collect(),
            Backend::S3(s3) => s3.list(&self.location)?,
        };
        objects.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Reads `key` from byte `offset` to its end, streaming (the caller may
    /// stop early and drop the reader); pinned to `version` (If-Match) when
    /// given, so an object rewritten since listing fails with an error
    /// saying it changed since it was listed. A vanished object: error
    /// naming bucket and key. Dir: a File seeked to offset (`version` is
    /// ignored). An offset at or past the end reads nothing.
    pub fn open_read(
        &self,
        key: &str,
        offset: u64,
        version: Option<&str>,
    ) -> Result<Box<dyn Read + Send>> {
        match &self.backend {
            Backend::Dir(dir) => {
                let path = dir.join(key);
                let mut file =
                    File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
                file.seek(SeekFrom::Start(offset))
                    .with_context(|| format!("cannot seek {} to {offset}", path.display()))?;
                Ok(Box::new(file))
            }
            Backend::S3(s3) => s3.open_read(key, offset, version),
        }
    }

    /// Transient failures retried so far by this store (HTTP 5xx, 429 and
    /// 408, connection errors, timeouts, a cut read resumed), for the job's
    /// summary. Always 0 for a directory.
    pub fn retries(&self) -> u64 {
        match &self.backend {
            Backend::Dir(_) => 0,
            Backend::S3(s3) => s3.retries.load(Ordering::Relaxed),
        }
    }

    /// Writes `bytes` to `key` of an S3 store's bucket (the prefix is not
    /// applied), atomically: one PUT up to [`PART_SIZE`], else a multipart
    /// upload completed only at the end. For `write_atomically` and
    /// `LocalS3::put`.
    pub(crate) fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let Backend::S3(s3) = &self.backend else {
            bail!("{} is not an S3 store", self.location);
        };
        let url = format!("s3://{}/{key}", s3.bucket);
        let path = Path::parse(key).with_context(|| format!("{url} is not a valid key"))?;
        let bytes = Bytes::copy_from_slice(bytes);
        s3.runtime
            .block_on(async {
                if bytes.len() <= PART_SIZE {
                    s3.client.put(&path, bytes.into()).await?;
                    return Ok(());
                }
                // The object appears only when the upload is completed;
                // a failed upload is aborted, which deletes its parts.
                let upload = s3.client.put_multipart(&path).await?;
                let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                for start in (0..bytes.len()).step_by(PART_SIZE) {
                    // Two parts in flight at most.
                    if let Err(e) = parts.wait_for_capacity(2).await {
                        let _ = parts.abort().await;
                        return Err(e);
                    }
                    parts.put(bytes.slice(start..bytes.len().min(start + PART_SIZE)));
                }
                // Aborts the upload itself when it fails.
                parts.finish().await.map(drop)
            })
            .map_err(|e: object_store::Error| {
                let says = s3::server_says(&e);
                anyhow::Error::new(e).context(format!("cannot write {url}: {says}"))
            })
    }
}

impl S3 {
    /// The object_store path of `key`, under the prefix.
    fn path(&self, key: &str) -> Result<Path> {
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        Path::parse(&full)
            .with_context(|| format!("s3://{}/{full} is not a valid key", self.bucket))
    }

    fn list(&self, location: &Location) -> Result<Vec<Object>> {
        let prefix = match self.prefix.as_str() {
            "" => None,
            p => Some(Path::parse(p).with_context(|| format!("{location}: invalid prefix"))?),
        };
        // object_store follows the continuation tokens page after page.
        let metas = self
            .runtime
            .block_on(self.client.list(prefix.as_ref()).try_collect::<Vec<_>>())
            .map_err(|e| {
                let says = s3::server_says(&e);
                anyhow::Error::new(e).context(format!("cannot list {location}: {says}"))
            })?;
        let strip = match self.prefix.as_str() {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let mut objects = metas
            .into_iter()
            .map(|meta| {
                let full: &str = meta.location.as_ref();
                let key = full.strip_prefix(strip.as_str()).ok_or_else(|| {
                    anyhow!("listing {location} returned {full}, outside the prefix")
                })?;
                Ok(Object {
                    key: key.to_owned(),
                    size: meta.size,
                    version: meta.e_tag,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        drop_folder_markers(&mut objects);
        Ok(objects)
    }

    fn open_read(
        &self,
        key: &str,
        offset: u64,
        version: Option<&str>,
    ) -> Result<Box<dyn Read + Send>> {
        let path = self.path(key)?;
        let url = format!("s3://{}/{path}", self.bucket);
        let options = GetOptions {
            if_match: version.map(str::to_owned),
            // No Range header at offset 0: an empty object has no byte 0.
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..GetOptions::default()
        };
        let stream = match self.runtime.block_on(self.client.get_opts(&path, options)) {
            Ok(result) => result.into_stream(),
            Err(err) => {
                // S3 answers 416 to a range starting at or past the end;
                // like a file seeked past its end, that reads nothing.
                if offset > 0 && is_range_not_satisfiable(&err) {
                    let head = GetOptions {
                        if_match: version.map(str::to_owned),
                        head: true,
                        ..GetOptions::default()
                    };
                    let size = self
                        .runtime
                        .block_on(self.client.get_opts(&path, head))
                        .map(|r| r.meta.size);
                    if size.is_ok_and(|size| offset >= size) {
                        return Ok(Box::new(std::io::empty()));
                    }
                }
                return Err(read_error(&url, version, err));
            }
        };
        // The caller's thread blocks on the runtime for each chunk, and
        // drives the socket meanwhile: one copy, into the caller's buffer,
        // and no thread or channel per reader.
        let errors_url = url.clone();
        let version = version.map(str::to_owned);
        let stream: BoxStream<'static, std::io::Result<Bytes>> = stream
            .map_err(move |err| {
                std::io::Error::other(read_error(&errors_url, version.as_deref(), err))
            })
            .boxed();
        Ok(Box::new(S3Reader {
            stream,
            chunk: Bytes::new(),
            runtime: Arc::clone(&self.runtime),
        }))
    }
}

/// Leaves out the folder markers of S3 consoles: "Create folder" makes a
/// zero-byte object `dir/`, which object_store lists as `dir` (its paths
/// have no trailing slash) and cannot read back. A zero-byte `dir` with
/// objects under `dir/` is such a marker. (A marker of an empty folder
/// cannot be told from an empty object, and stays.)
fn drop_folder_markers(objects: &mut Vec<Object>) {
    let folders: HashSet<String> = objects
        .iter()
        .flat_map(|o| {
            o.key
                .match_indices('/')
                .map(|(end, _)| o.key[..end].to_owned())
        })
        .collect();
    objects.retain(|o| o.size > 0 || !folders.contains(&o.key));
}

/// An object's bytes as a blocking reader. Its fields drop in order: the
/// stream first, while the runtime it belongs to is still alive.
struct S3Reader {
    stream: BoxStream<'static, std::io::Result<Bytes>>,
    /// What is left of the last chunk.
    chunk: Bytes,
    runtime: Arc<Runtime>,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(chunk) => self.chunk = chunk?,
            }
        }
        let n = self.chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The error of reading `url`, its first line saying what happened.
fn read_error(url: &str, version: Option<&str>, err: object_store::Error) -> anyhow::Error {
    let what = if is_precondition(&err) {
        match version {
            Some(v) => format!("{url} changed since it was listed (its ETag is no longer {v})"),
            None => format!("{url} changed while it was read"),
        }
    } else if is_not_found(&err) {
        format!("{url}: no such object (deleted since it was listed?)")
    } else {
        format!("cannot read {url}: {}", s3::server_says(&err))
    };
    anyhow::Error::new(err).context(what)
}

/// An `object_store::Error` of this variant anywhere in `err`'s chain (a
/// failed resume comes wrapped in a Generic error).
fn find_variant(err: &object_store::Error, variant: fn(&object_store::Error) -> bool) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<object_store::Error>().is_some_and(variant) {
            return true;
        }
        current = e.source();
    }
    false
}

/// HTTP 416: object_store keeps that status only in its error's text.
fn is_range_not_satisfiable(err: &object_store::Error) -> bool {
    let text = err.to_string();
    text.contains("416 Range Not Satisfiable") || text.contains("<Code>InvalidRange</Code>")
}

fn is_precondition(err: &object_store::Error) -> bool {
    find_variant(err, |e| {
        matches!(e, object_store::Error::Precondition { .. })
    })
}

fn is_not_found(err: &object_store::Error) -> bool {
    find_variant(err, |e| matches!(e, object_store::Error::NotFound { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_markers_are_left_out_and_empty_objects_kept() {
        let object = |key: &str, size: u64| Object {
            key: key.into(),
            size,
            version: None,
        };
        let mut objects = vec![
            object("a", 0),
            object("a/b", 0),
            object("a/b/c", 3),
            object("a.txt", 0),
            object("d", 5),
            object("d/e", 1),
        ];
        drop_folder_markers(&mut objects);
        assert_eq!(
            objects,
            [
                object("a/b/c", 3),
                object("a.txt", 0),
                object("d", 5),
                object("d/e", 1)
            ]
        );
    }
}
