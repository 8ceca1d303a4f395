//! Where an experiment's input goes: a temporary directory that disappears
//! with the experiment, or `OUT/input/NAME/` with `--keep-input`.

use anyhow::{Context, Result};
use bytesize::ByteSize;
use std::path::{Path, PathBuf};
use wordcount_count::generate::{generate, generate_tweets, CorpusSpec, TweetSpec};
use wordcount_count::input::{self, InputFile};

pub struct Inputs {
    experiment: &'static str,
    root: PathBuf,
    /// Removes the root when dropped; `None` when the input is kept.
    _temp: Option<tempfile::TempDir>,
}

impl Inputs {
    pub fn new(out: &Path, experiment: &'static str, keep: bool) -> Result<Self> {
        if keep {
            let root = out.join("input").join(experiment);
            std::fs::create_dir_all(&root)
                .with_context(|| format!("cannot create {}", root.display()))?;
            return Ok(Inputs {
                experiment,
                root,
                _temp: None,
            });
        }
        let temp = tempfile::Builder::new()
            .prefix("wordcount-experiment-")
            .tempdir()
            .context("cannot create a temporary directory for the input")?;
        Ok(Inputs {
            experiment,
            root: temp.path().to_path_buf(),
            _temp: Some(temp),
        })
    }

    /// Writes the corpus `spec` into a fresh directory `name`.
    pub fn generate(&self, name: &str, spec: &CorpusSpec) -> Result<PathBuf> {
        let dir = self.fresh(name)?;
        let total = spec.bytes_per_file * (spec.files as u64 - 1)
            + (spec.bytes_per_file as f64 * spec.skew) as u64;
        eprintln!(
            "[{}] generating {} files of {}{} ({} in all)",
            self.experiment,
            spec.files,
            human(spec.bytes_per_file),
            if spec.skew > 1.0 {
                format!(", the last {}x", spec.skew)
            } else {
                String::new()
            },
            human(total),
        );
        generate(&dir, spec)?;
        Ok(dir)
    }

    /// Writes the tweet files of `spec` (streaming input) into a fresh
    /// directory `name`.
    pub fn tweets(&self, name: &str, spec: &TweetSpec) -> Result<PathBuf> {
        let dir = self.fresh(name)?;
        eprintln!(
            "[{}] generating {} files of {} tweets",
            self.experiment, spec.files, spec.tweets_per_file
        );
        generate_tweets(&dir, spec)?;
        Ok(dir)
    }

    /// A directory `name` holding the first `n` files of `dir`, hard-linked
    /// rather than copied (same file system, no extra bytes).
    pub fn subset(&self, dir: &Path, n: usize, name: &str) -> Result<PathBuf> {
        let sub = self.fresh(name)?;
        for f in files(dir)?.iter().take(n) {
            let to = sub.join(f.path.file_name().context("an input file without a name")?);
            std::fs::hard_link(&f.path, &to)
                .with_context(|| format!("cannot link {}", to.display()))?;
        }
        Ok(sub)
    }

    /// Removes a directory made here, to bound the disk an experiment uses,
    /// unless the input is to be kept.
    pub fn discard(&self, dir: &Path) {
        if self._temp.is_some() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn fresh(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }
}

/// The files under `dir`, sorted.
pub fn files(dir: &Path) -> Result<Vec<InputFile>> {
    input::list(&[dir.to_path_buf()])
}

/// Total bytes of the files under `dir`.
pub fn total_bytes(dir: &Path) -> Result<u64> {
    Ok(files(dir)?.iter().map(|f| f.size).sum())
}

/// A size as people write it: binary units for sizes made of KiB, decimal
/// ones otherwise (the file size sweep goes by powers of ten).
pub fn human(bytes: u64) -> String {
    let size = ByteSize::b(bytes);
    if bytes.is_multiple_of(1024) {
        size.display().iec().to_string()
    } else {
        size.display().si().to_string()
    }
}
