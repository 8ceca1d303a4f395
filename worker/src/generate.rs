//! Synthetic corpora: files of words drawn from a Zipf vocabulary, with an
//! optional skewed file, reproducible from a seed.

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, Zipf};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct CorpusSpec {
    pub files: usize,
    pub bytes_per_file: u64,
    /// Distinct words to draw from.
    pub vocabulary: u64,
    /// Zipf exponent: 1.0 is about natural text; 0 is uniform.
    pub zipf: f64,
    /// The last file is this many times larger than the others (1 = none).
    pub skew: f64,
    pub seed: u64,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec {
            files: 10,
            bytes_per_file: 1 << 20,
            vocabulary: 50_000,
            zipf: 1.0,
            skew: 1.0,
            seed: 1,
        }
    }
}

/// Writes the corpus into `dir` (created if needed) as `file-00000.txt`...;
/// returns the paths written.
pub fn generate(dir: &Path, spec: &CorpusSpec) -> Result<Vec<PathBuf>> {
    if spec.files == 0 || spec.vocabulary == 0 {
        bail!("a corpus needs at least one file and one word");
    }
    if spec.skew < 1.0 {
        bail!("skew must be at least 1 (got {})", spec.skew);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let zipf = Zipf::new(spec.vocabulary as f64, spec.zipf).context("bad Zipf parameters")?;
    let mut paths = Vec::with_capacity(spec.files);
    for i in 0..spec.files {
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            spec.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
        );
        let size = if i + 1 == spec.files && spec.skew > 1.0 {
            (spec.bytes_per_file as f64 * spec.skew) as u64
        } else {
            spec.bytes_per_file
        };
        let path = dir.join(format!("file-{i:05}.txt"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut written = 0u64;
        let mut word = String::new();
        let mut on_line = 0;
        while written < size {
            word.clear();
            spell(zipf.sample(&mut rng) as u64 - 1, &mut word);
            let sep = if on_line == 11 { b'\n' } else { b' ' };
            on_line = (on_line + 1) % 12;
            let left = (size - written) as usize;
            let take = word.len().min(left);
            out.write_all(&word.as_bytes()[..take])?;
            written += take as u64;
            if written < size {
                out.write_all(&[sep])?;
                written += 1;
            }
        }
        out.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

/// A pronounceable, unique spelling of word number `n`: syllables in base 80.
fn spell(mut n: u64, out: &mut String) {
    const ONSETS: &[u8] = b"bcdfghklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    loop {
        let s = (n % 80) as usize;
        out.push(ONSETS[s / 5] as char);
        out.push(VOWELS[s % 5] as char);
        n /= 80;
        if n == 0 {
            break;
        }
        n -= 1;
    }
}

/// Parses sizes such as `4MB`, `1GiB` or `100` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("bad size {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..100_000 {
            let mut w = String::new();
            spell(n, &mut w);
            assert!(seen.insert(w), "duplicate spelling for {n}");
        }
    }

    #[test]
    fn generates_exact_sizes_and_skew() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CorpusSpec {
            files: 3,
            bytes_per_file: 1000,
            skew: 4.0,
            ..Default::default()
        };
        let paths = generate(dir.path(), &spec).unwrap();
        let sizes: Vec<u64> = paths
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect();
        assert_eq!(sizes, [1000, 1000, 4000]);
        let again = tempfile::tempdir().unwrap();
        generate(again.path(), &spec).unwrap();
        assert_eq!(
            std::fs::read(&paths[0]).unwrap(),
            std::fs::read(again.path().join("file-00000.txt")).unwrap()
        );
    }
}
