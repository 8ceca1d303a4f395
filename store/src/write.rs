//! [`write_atomically`]: a job's result, to a file or an S3 key, written so
//! that a reader never sees half of it.

use crate::location::Location;
use crate::s3;
use crate::store::Store;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `target` (a path, or s3://BUCKET/KEY) atomically: a
/// reader never sees half of it. A file: a temp file in the same directory
/// (parents created), then renamed over the target. S3: one PUT, or a
/// multipart upload completed only at the end when large (over 10 MiB).
/// S3 settings as for [`Store::open`]. Errors name the target.
pub fn write_atomically(target: &str, bytes: &[u8]) -> Result<()> {
    write_atomically_with_env(target, bytes, &s3::process_env())
}

/// As [`write_atomically`], with the AWS variables from `env` (see
/// [`Store::open_with_env`]).
pub fn write_atomically_with_env(
    target: &str,
    bytes: &[u8],
    env: &[(String, String)],
) -> Result<()> {
    match target.parse::<Location>()? {
        Location::Dir(path) => write_file(&path, bytes),
        Location::S3 {
            bucket,
            prefix: key,
        } => {
            if key.is_empty() {
                bail!("{target:?} names no key (expected s3://BUCKET/KEY)");
            }
            let bucket = Location::S3 {
                bucket,
                prefix: String::new(),
            };
            Store::open_with_env(&bucket, env)?.put(&key, bytes)
        }
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = || format!("cannot write {}", path.display());
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(fail)?;
    // In the target's directory, so that the rename stays on one file
    // system and is atomic.
    let mut tmp = tempfile::Builder::new()
        .prefix(".wordcount-")
        .tempfile_in(dir)
        .with_context(fail)?;
    tmp.write_all(bytes).with_context(fail)?;
    // On disk before it takes the name: a crash leaves the old file or the
    // new one, never an empty one.
    tmp.as_file().sync_all().with_context(fail)?;
    tmp.persist(path).map_err(|e| e.error).with_context(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_file_creating_its_directories_and_replacing_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/result.txt");
        let target_text = target.to_str().unwrap();
        write_atomically(target_text, b"first").unwrap();
        write_atomically(target_text, b"second").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        // No temp file left behind.
        assert_eq!(
            std::fs::read_dir(target.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn an_s3_target_needs_a_key() {
        let err = write_atomically_with_env("s3://bucket", b"x", &[]).unwrap_err();
        assert!(err.to_string().contains("s3://bucket"), "{err}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let target = file.join("under-a-file");
        let err = write_atomically(target.to_str().unwrap(), b"x").unwrap_err();
        assert!(err.to_string().contains("under-a-file"), "{err}");
    }
}
