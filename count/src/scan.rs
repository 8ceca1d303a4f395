//! The fast path of counting: words are found 64 bytes at a time from a
//! bit mask of word bytes (SSE2 on x86-64), and a word of up to 8 bytes is
//! counted by its bytes read as one u64, with no copy and no string compare.
//! [`Tokenize::for_each_word`](crate::tokenize::Tokenize::for_each_word) is the plain definition; tests hold this
//! path to it.

use crate::counts::Counts;
use crate::tokenize::{unicode_run, Tokenizer};

/// Counts the words of `text`, which must end on a word boundary.
pub fn count_text(tok: Tokenizer, text: &mut [u8], counts: &mut Counts) {
    text.make_ascii_lowercase();
    match tok {
        Tokenizer::Alnum => count_words::<true>(text, counts),
        Tokenizer::Whitespace => count_words::<false>(text, counts),
    }
}

fn count_words<const ALNUM: bool>(text: &[u8], counts: &mut Counts) {
    let n = text.len();
    let mut start = None::<usize>;
    let mut base = 0;
    while base < n {
        let mask = if base + 64 <= n {
            word_mask::<ALNUM>(text[base..base + 64].try_into().expect("64 bytes"))
        } else {
            // The tail, padded with spaces (a separator for both tokenizers).
            let mut block = [b' '; 64];
            block[..n - base].copy_from_slice(&text[base..]);
            word_mask::<ALNUM>(&block)
        };
        let mut off = 0;
        while off < 64 {
            match start {
                Some(s) => {
                    let rest = !mask >> off;
                    if rest == 0 {
                        break;
                    }
                    off += rest.trailing_zeros();
                    count_word::<ALNUM>(text, s, base + off as usize, counts);
                    start = None;
                }
                None => {
                    let rest = mask >> off;
                    if rest == 0 {
                        break;
                    }
                    off += rest.trailing_zeros();
                    start = Some(base + off as usize);
                }
            }
        }
        base += 64;
    }
    if let Some(s) = start {
        count_word::<ALNUM>(text, s, n, counts);
    }
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
fn count_word<const ALNUM: bool>(text: &[u8], s: usize, e: usize, counts: &mut Counts) {
    let len = e - s;
    if len <= 8 {
        let raw = match text.get(s..s + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => {
                let mut b = [0u8; 8];
                b[..len].copy_from_slice(&text[s..e]);
                u64::from_le_bytes(b)
            }
        };
        let key = raw & (u64::MAX >> (64 - 8 * len));
        if !ALNUM || key & HIGH_BITS == 0 {
            counts.add_short(key, len);
            return;
        }
    } else if !ALNUM || text[s..e].is_ascii() {
        counts.add(&text[s..e], 1);
        return;
    }
    unicode_run(&text[s..e], &mut String::new(), &mut |w| counts.add(w, 1));
}

/// Bit i set when byte i is part of a word: for `alnum` an ASCII letter or
/// digit (the text is lowercased already) or a byte >= 0x80, which the
/// Unicode path then sorts out; for `whitespace` anything but ASCII space.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn word_mask<const ALNUM: bool>(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86-64; loads are unaligned and in bounds.
    unsafe {
        // Unsigned `lo <= v < lo + n`, as a byte mask.
        let in_range = |v: __m128i, lo: u8, n: u8| {
            let d = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
            _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8((n - 1) as i8)), d)
        };
        let mut mask = 0u64;
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i) as *const __m128i);
            let bits = if ALNUM {
                let word = _mm_or_si128(
                    _mm_or_si128(in_range(v, b'a', 26), in_range(v, b'0', 10)),
                    _mm_cmplt_epi8(v, _mm_setzero_si128()),
                );
                _mm_movemask_epi8(word) as u16
            } else {
                let sep = _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8)),
                    in_range(v, 9, 5),
                );
                !(_mm_movemask_epi8(sep) as u16)
            };
            mask |= (bits as u64) << (16 * i);
        }
        mask
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn word_mask<const ALNUM: bool>(block: &[u8; 64]) -> u64 {
    let mut mask = 0u64;
    for (i, &b) in block.iter().enumerate() {
        let word = if ALNUM {
            b.is_ascii_alphanumeric() || b >= 0x80
        } else {
            !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
        };
        mask |= (word as u64) << i;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Tokenize;
    use proptest::prelude::*;

    fn reference(tok: Tokenizer, text: &[u8]) -> Counts {
        let mut c = Counts::new();
        tok.for_each_word(&mut text.to_vec(), |w| c.add(w, 1));
        c
    }

    fn fast(tok: Tokenizer, text: &[u8]) -> Counts {
        let mut c = Counts::new();
        count_text(tok, &mut text.to_vec(), &mut c);
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn fast_path_equals_the_definition(
            text in proptest::collection::vec(prop_oneof![
                Just(b' '), Just(b'\n'), Just(b'\t'), Just(0x0b), Just(0x0c), Just(b'\r'), Just(0u8),
                Just(0xc3), Just(0xa9), Just(0xe2), Just(0x80), Just(b'-'),
                b'a'..=b'z', b'A'..=b'Z', b'0'..=b'9', any::<u8>()], 0..300),
        ) {
            for tok in [Tokenizer::Alnum, Tokenizer::Whitespace] {
                prop_assert_eq!(fast(tok, &text), reference(tok, &text));
            }
        }

        #[test]
        fn words_of_every_length_near_block_edges(lens in proptest::collection::vec(1usize..20, 1..40), pad in 0usize..70) {
            let mut text = vec![b' '; pad];
            for (i, len) in lens.iter().enumerate() {
                text.extend(std::iter::repeat_n(b'a' + (i % 3) as u8, *len));
                text.push(if i % 2 == 0 { b' ' } else { b'\n' });
            }
            for tok in [Tokenizer::Alnum, Tokenizer::Whitespace] {
                prop_assert_eq!(fast(tok, &text), reference(tok, &text));
            }
        }
    }

    #[test]
    fn unicode_and_nul_bytes() {
        let text = "Ärger\0über a\0 a ÉCOLE naïve-café x".as_bytes();
        for tok in [Tokenizer::Alnum, Tokenizer::Whitespace] {
            assert_eq!(fast(tok, text), reference(tok, text));
        }
    }
}
