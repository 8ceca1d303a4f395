//! The counting engine: one file in bounded memory, and many files serially,
//! on threads or in child processes, all giving the same counts.

use crate::counts::Counts;
use crate::input::InputFile;
use crate::scan::count_text;
use crate::tokenize::{Tokenize, Tokenizer};
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Read size. Small enough that the lowercase pass and the word pass over a
/// chunk both hit the cache; memory stays bounded by this plus the longest word.
const CHUNK: usize = 256 * 1024;

/// How to spread files over cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    Serial,
    Threads(usize),
    Processes(usize),
}

/// Feeds `reader` to `consume` in chunks that end on word boundaries;
/// returns the bytes read.
fn read_chunks(
    mut reader: impl Read,
    tok: Tokenizer,
    mut consume: impl FnMut(&mut [u8]),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut bytes = 0u64;
    loop {
        if filled == buf.len() {
            // A single word longer than the buffer: grow to hold it.
            buf.resize(buf.len() * 2, 0);
        }
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            consume(&mut buf[..filled]);
            return Ok(bytes);
        }
        bytes += n as u64;
        filled += n;
        let cut = tok.safe_cut(&buf[..filled]);
        if cut > 0 {
            consume(&mut buf[..cut]);
            buf.copy_within(cut..filled, 0);
            filled -= cut;
        }
    }
}

/// Passes every word read from `reader` to `add`; returns the bytes read.
pub fn scan_reader(
    reader: impl Read,
    tok: Tokenizer,
    mut add: impl FnMut(&[u8]),
) -> std::io::Result<u64> {
    read_chunks(reader, tok, |chunk| tok.for_each_word(chunk, &mut add))
}

/// Counts the words read from `reader` into `counts`; returns the bytes read.
pub fn count_reader(
    reader: impl Read,
    tok: Tokenizer,
    counts: &mut Counts,
) -> std::io::Result<u64> {
    read_chunks(reader, tok, |chunk| count_text(tok, chunk, counts))
}

/// Opens the file at `path` for counting (decompressed if gzip).
fn open(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(crate::input::decoded(
        &path.to_string_lossy(),
        Box::new(file),
    ))
}

/// Passes every word of the file at `path` to `add`; returns the bytes read.
pub fn scan_file(path: &Path, tok: Tokenizer, add: impl FnMut(&[u8])) -> Result<u64> {
    scan_reader(open(path)?, tok, add).with_context(|| format!("cannot read {}", path.display()))
}

/// Counts one file into `counts`; returns the bytes read.
pub fn count_file(path: &Path, tok: Tokenizer, counts: &mut Counts) -> Result<u64> {
    count_reader(open(path)?, tok, counts)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Counts all `files`.
pub fn count_files(files: &[InputFile], tok: Tokenizer, par: Parallelism) -> Result<Counts> {
    match par {
        Parallelism::Serial | Parallelism::Threads(0 | 1) | Parallelism::Processes(0 | 1) => {
            let mut counts = Counts::new();
            for f in files {
                count_file(&f.path, tok, &mut counts)?;
            }
            Ok(counts)
        }
        Parallelism::Threads(n) => count_threads(files, tok, n),
        Parallelism::Processes(n) => count_processes(files, tok, n),
    }
}

/// Largest first, so that the last files to finish are the small ones.
fn largest_first(files: &[InputFile]) -> Vec<&InputFile> {
    let mut v: Vec<&InputFile> = files.iter().collect();
    v.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    v
}

fn count_threads(files: &[InputFile], tok: Tokenizer, n: usize) -> Result<Counts> {
    let order = largest_first(files);
    let next = AtomicUsize::new(0);
    let parts: Vec<Result<Counts>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let mut counts = Counts::new();
                    while let Some(f) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        count_file(&f.path, tok, &mut counts)?;
                    }
                    Ok(counts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("counting thread panicked"))
            .collect()
    });
    merge_all(parts)
}

/// Splits files into `n` shards of about equal bytes (largest first, each to
/// the lightest shard); this process counts the first shard while `n - 1`
/// child `wordcount` processes count the others.
fn count_processes(files: &[InputFile], tok: Tokenizer, n: usize) -> Result<Counts> {
    let mut shards: Vec<(u64, Vec<&Path>)> = vec![(0, Vec::new()); n];
    for f in largest_first(files) {
        let lightest = shards.iter_mut().min_by_key(|s| s.0).expect("n > 0");
        lightest.0 += f.size;
        lightest.1.push(&f.path);
    }
    let exe = std::env::current_exe().context("cannot find the wordcount executable")?;
    let mut children = Vec::new();
    for (_, paths) in shards[1..].iter().filter(|s| !s.1.is_empty()) {
        let mut child = Command::new(&exe)
            .args(["shard", "--tokenizer", tok.as_str()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start a counting process")?;
        let mut list = Vec::new();
        for p in paths {
            list.extend_from_slice(p.as_os_str().as_encoded_bytes());
            list.push(b'\n');
        }
        // The child reads its list to the end before it writes anything.
        child.stdin.take().expect("piped").write_all(&list)?;
        children.push(child);
    }
    let mut own = Counts::new();
    let own_result = shards[0]
        .1
        .iter()
        .try_for_each(|p| count_file(p, tok, &mut own).map(|_| ()));
    let mut parts: Vec<Result<Counts>> = children
        .into_iter()
        .map(|mut child| {
            let mut packed = Vec::new();
            child
                .stdout
                .take()
                .expect("piped")
                .read_to_end(&mut packed)?;
            let status = child.wait()?;
            if !status.success() {
                bail!("a counting process failed ({status})");
            }
            let mut counts = Counts::new();
            counts.add_packed(&packed)?;
            Ok(counts)
        })
        .collect();
    parts.push(own_result.map(|()| own));
    merge_all(parts)
}

/// The child side of `--processes`: counts the files listed on stdin, one
/// path a line, and writes the packed counts to stdout.
pub fn shard_main(tok: Tokenizer) -> Result<()> {
    let mut list = Vec::new();
    std::io::stdin().read_to_end(&mut list)?;
    let mut counts = Counts::new();
    for line in list.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        // SAFETY: the parent wrote these bytes from `OsStr::as_encoded_bytes`.
        let path = PathBuf::from(unsafe { std::ffi::OsStr::from_encoded_bytes_unchecked(line) });
        count_file(&path, tok, &mut counts)?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&counts.pack())?;
    out.flush()?;
    Ok(())
}

fn merge_all(parts: Vec<Result<Counts>>) -> Result<Counts> {
    let mut parts = parts.into_iter().collect::<Result<Vec<_>>>()?;
    parts.sort_by_key(|c| std::cmp::Reverse(c.distinct()));
    let mut iter = parts.into_iter();
    let mut total = iter.next().unwrap_or_default();
    for p in iter {
        total.merge(&p);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_file_is_counted_decompressed() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text = b"to be or not to be\n".repeat(1000);
        std::fs::write(dir.path().join("plain.txt"), &text).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        std::fs::write(dir.path().join("packed.txt.gz"), gz.finish().unwrap()).unwrap();
        let (mut plain, mut packed) = (Counts::new(), Counts::new());
        count_file(&dir.path().join("plain.txt"), Tokenizer::Alnum, &mut plain).unwrap();
        count_file(
            &dir.path().join("packed.txt.gz"),
            Tokenizer::Alnum,
            &mut packed,
        )
        .unwrap();
        assert_eq!(packed.get(b"be"), 2000);
        assert_eq!(plain, packed);
    }

    /// A reader that returns at most `step` bytes a call, to cut words.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn whole(text: &[u8], tok: Tokenizer) -> Counts {
        let mut c = Counts::new();
        tok.for_each_word(&mut text.to_vec(), |w| c.add(w, 1));
        c
    }

    proptest::proptest! {
        #[test]
        fn chunking_never_splits_a_word(
            text in proptest::collection::vec(proptest::prop_oneof![
                proptest::strategy::Just(b' '), proptest::strategy::Just(b'\n'),
                proptest::strategy::Just(0xc3u8), proptest::strategy::Just(0xa9u8),
                b'a'..=b'e', b'A'..=b'C', 0u8..=255u8], 0..600),
            step in 1usize..40,
        ) {
            for tok in [Tokenizer::Alnum, Tokenizer::Whitespace] {
                let mut c = Counts::new();
                let n = count_reader(Trickle(&text, step), tok, &mut c).unwrap();
                proptest::prop_assert_eq!(n as usize, text.len());
                proptest::prop_assert_eq!(c, whole(&text, tok));
            }
        }
    }

    #[test]
    fn a_word_longer_than_the_buffer_is_one_word() {
        let mut text = vec![b'x'; CHUNK * 3];
        text.extend_from_slice(b" y");
        let mut c = Counts::new();
        count_reader(&text[..], Tokenizer::Whitespace, &mut c).unwrap();
        assert_eq!(c.distinct(), 2);
        assert_eq!(c.get(&vec![b'x'; CHUNK * 3]), 1);
    }
}
