//! Tokenizers: what a word is.
//!
//! `alnum`: a word is a maximal run of Unicode alphanumeric characters,
//! lowercased; invalid UTF-8 separates words. `whitespace`: split on ASCII
//! whitespace (space, \t, \n, \v, \f, \r); A-Z lowercased, every other byte
//! kept as is.
//!
//! Both scan bytes through a class table, so ASCII text never decodes UTF-8;
//! only a run that contains a byte >= 0x80 takes the Unicode path.

pub use wordcount_protocol::Tokenizer;

/// The tokenizers' definitions; their names are the contract's.
pub trait Tokenize: Copy {
    /// Calls `word` for every word of `text`, which must end on a word
    /// boundary (see [`Tokenize::safe_cut`]). Words are passed lowercased.
    fn for_each_word(self, text: &mut [u8], word: impl FnMut(&[u8]));

    /// The length of the longest prefix of `buf` that ends on a word
    /// boundary, so that a chunk cut there splits no word; 0 if none.
    fn safe_cut(self, buf: &[u8]) -> usize;

    /// True when `byte` ends any word it follows, whatever comes before or
    /// after it (an ASCII separator): a cut right after it splits no word
    /// and no character.
    fn separates(self, byte: u8) -> bool;
}

impl Tokenize for Tokenizer {
    #[inline]
    fn for_each_word(self, text: &mut [u8], mut word: impl FnMut(&[u8])) {
        match self {
            Tokenizer::Alnum => alnum(text, &mut word),
            Tokenizer::Whitespace => whitespace(text, &mut word),
        }
    }

    fn safe_cut(self, buf: &[u8]) -> usize {
        buf.iter()
            .rposition(|&b| self.separates(b))
            .map_or(0, |i| i + 1)
    }

    #[inline]
    fn separates(self, byte: u8) -> bool {
        let table = match self {
            Tokenizer::Alnum => &ALNUM_CLASS,
            Tokenizer::Whitespace => &WS_CLASS,
        };
        table[byte as usize] == SEP
    }
}

const SEP: u8 = 0;
const WORD: u8 = 1;
/// A byte >= 0x80: part of a multi-byte character, or invalid.
const HIGH: u8 = 2;

const fn class_tables() -> ([u8; 256], [u8; 256]) {
    let mut alnum = [SEP; 256];
    let mut ws = [WORD; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            alnum[b] = WORD;
        } else if c >= 0x80 {
            alnum[b] = HIGH;
        }
        if matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            ws[b] = SEP;
        }
        b += 1;
    }
    (alnum, ws)
}

static ALNUM_CLASS: [u8; 256] = class_tables().0;
static WS_CLASS: [u8; 256] = class_tables().1;

#[inline]
fn whitespace(text: &mut [u8], word: &mut impl FnMut(&[u8])) {
    text.make_ascii_lowercase();
    let n = text.len();
    let mut i = 0;
    while i < n {
        while i < n && WS_CLASS[text[i] as usize] == SEP {
            i += 1;
        }
        let start = i;
        while i < n && WS_CLASS[text[i] as usize] != SEP {
            i += 1;
        }
        if start < i {
            word(&text[start..i]);
        }
    }
}

#[inline]
fn alnum(text: &mut [u8], word: &mut impl FnMut(&[u8])) {
    // Lowercasing ASCII in place is safe: it never touches bytes >= 0x80.
    text.make_ascii_lowercase();
    let n = text.len();
    let mut i = 0;
    let mut scratch = String::new();
    while i < n {
        while i < n && ALNUM_CLASS[text[i] as usize] == SEP {
            i += 1;
        }
        let start = i;
        let mut high = false;
        while i < n {
            match ALNUM_CLASS[text[i] as usize] {
                SEP => break,
                HIGH => high = true,
                _ => {}
            }
            i += 1;
        }
        if start == i {
            continue;
        }
        if high {
            unicode_run(&text[start..i], &mut scratch, word);
        } else {
            word(&text[start..i]);
        }
    }
}

/// Splits a run of ASCII alphanumerics and non-ASCII bytes into words:
/// non-alphanumeric characters and invalid UTF-8 separate them.
#[cold]
pub(crate) fn unicode_run(mut run: &[u8], scratch: &mut String, word: &mut impl FnMut(&[u8])) {
    scratch.clear();
    while !run.is_empty() {
        let (valid, rest) = match std::str::from_utf8(run) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let good = e.valid_up_to();
                let bad = e.error_len().unwrap_or(run.len() - good);
                // SAFETY: `from_utf8` says the first `good` bytes are valid.
                let s = unsafe { std::str::from_utf8_unchecked(&run[..good]) };
                (s, &run[good + bad..])
            }
        };
        for c in valid.chars() {
            if c.is_alphanumeric() {
                scratch.extend(c.to_lowercase());
            } else if !scratch.is_empty() {
                word(scratch.as_bytes());
                scratch.clear();
            }
        }
        if !rest.is_empty() || valid.len() < run.len() {
            // An invalid sequence separates words.
            if !scratch.is_empty() {
                word(scratch.as_bytes());
                scratch.clear();
            }
        }
        run = rest;
    }
    if !scratch.is_empty() {
        word(scratch.as_bytes());
        scratch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: Tokenizer, s: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = s.to_vec();
        t.for_each_word(&mut buf, |w| {
            out.push(String::from_utf8_lossy(w).into_owned())
        });
        out
    }

    #[test]
    fn alnum_splits_on_punctuation_and_lowercases() {
        assert_eq!(
            words(Tokenizer::Alnum, b"Don't STOP, me-now 42x"),
            ["don", "t", "stop", "me", "now", "42x"]
        );
    }

    #[test]
    fn alnum_handles_unicode_letters_and_digits() {
        assert_eq!(
            words(
                Tokenizer::Alnum,
                "Ärger über ÉCOLE, naïve—café ٣٤".as_bytes()
            ),
            ["ärger", "über", "école", "naïve", "café", "٣٤"]
        );
    }

    #[test]
    fn alnum_invalid_utf8_separates() {
        assert_eq!(
            words(Tokenizer::Alnum, b"ab\xffcd\xc3ef \xe2\x82"),
            ["ab", "cd", "ef"]
        );
    }

    #[test]
    fn whitespace_keeps_punctuation_and_non_ascii_bytes() {
        assert_eq!(
            words(
                Tokenizer::Whitespace,
                "Hello,\tWORLD\x0b\x0cÄb x\r\n".as_bytes()
            ),
            ["hello,", "world", "Äb", "x"]
        );
    }

    #[test]
    fn safe_cut_ends_on_a_separator() {
        assert_eq!(Tokenizer::Alnum.safe_cut(b"ab cd"), 3);
        assert_eq!(Tokenizer::Alnum.safe_cut("ab é".as_bytes()), 3);
        assert_eq!(Tokenizer::Whitespace.safe_cut(b"ab,cd"), 0);
        assert_eq!(Tokenizer::Whitespace.safe_cut(b"ab\ncd"), 3);
    }
}
