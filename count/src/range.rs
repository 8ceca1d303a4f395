//! Byte ranges of one large file, each counted on its own, every word
//! exactly once: the rule Hadoop's line reader uses for lines, applied to
//! words.
//!
//! A file is cut only right after a byte that [separates](Tokenize::separates)
//! words (an ASCII separator: it ends every word and never sits inside a
//! multi-byte character). Range `[start, end)` counts the text from the
//! first such cut at or after `start` to the first at or after `end`. So a
//! range skips the word it starts inside (the range before finishes it),
//! finishes the word it ends inside, and a range inside one long word
//! counts nothing. The ranges of a file partition it, so do their texts,
//! and the sum of their counts is the count of the whole file.

use crate::counts::Counts;
use crate::engine::{count_reader, scan_reader};
use crate::tokenize::{Tokenize, Tokenizer};
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;

/// The ranges a file of `size` bytes is enqueued as when files larger than
/// `every` bytes are split (`every` 0: never); `None` when it is not split.
pub fn split(size: u64, every: u64) -> Option<Vec<Range<u64>>> {
    if every == 0 || size <= every {
        return None;
    }
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < size {
        let end = size.min(start + every);
        ranges.push(start..end);
        start = end;
    }
    Some(ranges)
}

/// Where the bytes of `range` must be read from: one byte early, to see
/// whether a word runs into the range.
pub fn read_from(range: &Range<u64>) -> u64 {
    range.start.saturating_sub(1)
}

/// Counts the words of `range`, reading `reader` positioned at
/// [`read_from`]; returns the bytes read.
pub fn count_range(
    reader: impl Read,
    range: Range<u64>,
    tok: Tokenizer,
    counts: &mut Counts,
) -> std::io::Result<u64> {
    count_reader(RangeReader::new(reader, range, tok), tok, counts)
}

/// Passes every word of `range` to `add`, reading `reader` positioned at
/// [`read_from`]; returns the bytes read.
pub fn scan_range(
    reader: impl Read,
    range: Range<u64>,
    tok: Tokenizer,
    add: impl FnMut(&[u8]),
) -> std::io::Result<u64> {
    scan_reader(RangeReader::new(reader, range, tok), tok, add)
}

/// Where a [`RangeReader`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the first cut at or after the start.
    Skip,
    /// Inside the range, before its last byte.
    Body,
    /// At or past the range's last byte: up to and including a separator.
    Tail,
    Done,
}

/// The text of one range, read from a reader positioned at [`read_from`].
struct RangeReader<R> {
    inner: BufReader<R>,
    tok: Tokenizer,
    /// The absolute position of the next byte of `inner`.
    pos: u64,
    end: u64,
    phase: Phase,
}

impl<R: Read> RangeReader<R> {
    fn new(inner: R, range: Range<u64>, tok: Tokenizer) -> Self {
        let phase = match range.start {
            _ if range.is_empty() => Phase::Done,
            0 => Phase::Body,
            _ => Phase::Skip,
        };
        RangeReader {
            inner: BufReader::with_capacity(64 * 1024, inner),
            tok,
            pos: read_from(&range),
            end: range.end,
            phase,
        }
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.pos += n as u64;
    }

    /// Moves past the first separator, then into the body, or done when
    /// that separator is at or past the range's last byte (the range lies
    /// inside one word, or ends on the separator: the next range counts on).
    fn skip(&mut self) -> std::io::Result<()> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.phase = Phase::Done;
                return Ok(());
            }
            match buf.iter().position(|&b| self.tok.separates(b)) {
                Some(i) => {
                    let sep_at = self.pos + i as u64;
                    self.consume(i + 1);
                    self.phase = match sep_at + 1 >= self.end {
                        true => Phase::Done,
                        false => Phase::Body,
                    };
                    return Ok(());
                }
                None => {
                    let n = buf.len();
                    self.consume(n);
                }
            }
        }
    }
}

impl<R: Read> Read for RangeReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.phase {
                Phase::Done => return Ok(0),
                Phase::Skip => self.skip()?,
                Phase::Body if self.pos + 1 >= self.end => self.phase = Phase::Tail,
                Phase::Body => {
                    let buf = self.inner.fill_buf()?;
                    let left = (self.end - 1 - self.pos) as usize;
                    let n = buf.len().min(out.len()).min(left);
                    out[..n].copy_from_slice(&buf[..n]);
                    self.consume(n);
                    return Ok(n);
                }
                Phase::Tail => {
                    let buf = self.inner.fill_buf()?;
                    let n = buf.len().min(out.len());
                    let (n, last) = match buf[..n].iter().position(|&b| self.tok.separates(b)) {
                        Some(i) => (i + 1, true),
                        None => (n, buf.is_empty()),
                    };
                    out[..n].copy_from_slice(&buf[..n]);
                    self.consume(n);
                    if last {
                        self.phase = Phase::Done;
                    }
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKENIZERS: [Tokenizer; 2] = [Tokenizer::Alnum, Tokenizer::Whitespace];

    fn whole(text: &[u8], tok: Tokenizer) -> Counts {
        let mut counts = Counts::new();
        count_reader(text, tok, &mut counts).expect("in memory");
        counts
    }

    /// The counts of `text` cut at `cuts` (sorted, inside the text), each
    /// range read from its own offset.
    fn by_ranges(text: &[u8], cuts: &[u64], tok: Tokenizer) -> Counts {
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(text.len() as u64);
        let mut counts = Counts::new();
        for w in bounds.windows(2) {
            let range = w[0]..w[1];
            let from = read_from(&range) as usize;
            count_range(&text[from..], range, tok, &mut counts).expect("in memory");
        }
        counts
    }

    fn sorted(counts: &Counts) -> Vec<(Vec<u8>, u64)> {
        let mut v: Vec<(Vec<u8>, u64)> = counts.iter().map(|(w, n)| (w.to_vec(), n)).collect();
        v.sort();
        v
    }

    #[test]
    fn split_covers_the_file_in_ranges_of_at_most_every() {
        assert_eq!(split(10, 0), None);
        assert_eq!(split(10, 10), None);
        assert_eq!(split(10, 4), Some(vec![0..4, 4..8, 8..10]));
        assert_eq!(read_from(&(0..4)), 0);
        assert_eq!(read_from(&(4..8)), 3);
    }

    #[test]
    fn a_cut_at_every_offset_counts_each_word_once() {
        let text = "Ärger über ÉCOLE,\tnaïve—café ٣٤ ab\u{ff}cd\n\
                    don't stop me-now 42x \u{e2}\u{82} end"
            .as_bytes()
            .to_vec();
        let mut text = text;
        text.extend_from_slice(b" bad\xffbytes\xc3 here");
        for tok in TOKENIZERS {
            let expected = sorted(&whole(&text, tok));
            for k in 0..=text.len() as u64 {
                assert_eq!(
                    sorted(&by_ranges(&text, &[k], tok)),
                    expected,
                    "{tok:?} cut at {k}"
                );
            }
            for k in 0..text.len() as u64 {
                let cuts = [k, k + 1];
                assert_eq!(
                    sorted(&by_ranges(&text, &cuts, tok)),
                    expected,
                    "{tok:?} at {k}"
                );
            }
        }
    }

    #[test]
    fn a_range_inside_one_long_word_counts_nothing() {
        let text = format!("a {} b", "x".repeat(100));
        for tok in TOKENIZERS {
            let mut counts = Counts::new();
            let range = 10..20;
            let from = read_from(&range) as usize;
            count_range(&text.as_bytes()[from..], range, tok, &mut counts).expect("in memory");
            assert_eq!(counts.iter().count(), 0);
            assert_eq!(
                sorted(&by_ranges(text.as_bytes(), &[1, 2, 10, 20, 102, 103], tok)),
                sorted(&whole(text.as_bytes(), tok))
            );
        }
    }

    /// Bytes drawn to make boundaries hard: ASCII letters and separators,
    /// pieces of multi-byte characters, invalid bytes, long runs.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"a".to_vec()),
            Just(b"Bc".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\n".to_vec()),
            Just(b",".to_vec()),
            Just("é".as_bytes().to_vec()),
            Just("—".as_bytes().to_vec()),
            Just("٣".as_bytes().to_vec()),
            Just(vec![0xff]),
            Just(vec![0xc3]),
            Just(vec![0xe2, 0x82]),
            Just(b"longwordlongwordlongword".to_vec()),
        ];
        prop::collection::vec(piece, 0..200).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn ranges_at_random_boundaries_sum_to_the_whole(
            text in text(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut cuts: Vec<u64> = cuts.iter().map(|i| i.index(text.len() + 1) as u64).collect();
            cuts.sort();
            for tok in TOKENIZERS {
                prop_assert_eq!(sorted(&by_ranges(&text, &cuts, tok)), sorted(&whole(&text, tok)));
            }
        }
    }
}
