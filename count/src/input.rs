//! Finding the input files: a directory is walked recursively in sorted
//! order, so every run sees the files in the same order. A gzip file
//! (`.gz`) is read decompressed, and counted whole.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A gzip file: decompressed to be counted, and never split into ranges
/// (its bytes cannot be cut).
pub fn is_compressed(path: &str) -> bool {
    path.ends_with(".gz")
}

/// The text of the file `path` from `raw`, its bytes as stored.
pub fn decoded(path: &str, raw: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    match is_compressed(path) {
        true => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        false => raw,
    }
}

/// One input file and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
}

/// The files named by `paths`, directories expanded recursively.
pub fn list(paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    let mut files = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root)
            .with_context(|| format!("cannot read input {}", root.display()))?;
        if meta.is_file() {
            files.push(InputFile {
                path: root.clone(),
                size: meta.len(),
            });
            continue;
        }
        for entry in walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(entry) => entry,
                // An entry that cannot be followed or read (a dangling
                // link, a directory we may not open) is still a file of the
                // input: counting it fails and names it, and the rest is
                // counted.
                Err(e) if e.depth() > 0 && e.path().is_some() => {
                    files.push(InputFile {
                        path: e.path().map(Path::to_path_buf).unwrap_or_default(),
                        size: 0,
                    });
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot walk {}", root.display())),
            };
            if entry.file_type().is_file() {
                let size = entry
                    .metadata()
                    .with_context(|| format!("cannot read {}", entry.path().display()))?
                    .len();
                files.push(InputFile {
                    path: entry.into_path(),
                    size,
                });
            }
        }
    }
    Ok(files)
}

/// The files under `dir`, with paths relative to it (as the driver enqueues them).
pub fn list_relative(dir: &Path) -> Result<Vec<InputFile>> {
    if !dir.is_dir() {
        bail!("input {} is not a directory", dir.display());
    }
    list(&[dir.to_path_buf()])?
        .into_iter()
        .map(|f| {
            let rel = f.path.strip_prefix(dir)?.to_path_buf();
            Ok(InputFile {
                path: rel,
                size: f.size,
            })
        })
        .collect()
}
