//! Word counts: a hash table from word to count, its merge, its ranking and
//! the packed text form that workers commit to Redis (`word\tcount\n` lines;
//! no tokenizer yields a word with a tab or a newline).

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Word -> count. Words of up to 8 bytes (most of them) live in a table of
/// their own, keyed by their bytes read as one u64; longer ones in a
/// general hash table.
#[derive(Default, Clone)]
pub struct Counts {
    short: ShortTable,
    long: HashTable<(Box<[u8]>, u64)>,
    hasher: FixedState,
    total: u64,
}

/// Open addressing, linear probing, Fibonacci hashing; at most half full.
///
/// Every table (of every process) hashes alike, so iterating one yields its
/// words in the order of the slots they take in any other table at least as
/// large: adding them there walks its memory in order, which the cache
/// likes. Into a smaller table the same order would fill a few runs of
/// slots and make probing quadratic, so bulk adds reserve first
/// ([`Counts::reserve`]).
#[derive(Default, Clone)]
struct ShortTable {
    slots: Vec<Slot>,
    len: usize,
    /// 64 - log2(slots.len()).
    shift: u32,
}

#[derive(Default, Clone, Copy)]
struct Slot {
    /// The word's bytes, zero-padded.
    bytes: [u8; 8],
    /// count << 4 | length; 0 for an empty slot.
    meta: u64,
}

impl ShortTable {
    #[inline(always)]
    fn slot(&self, key: u64, len: usize) -> usize {
        (key.wrapping_add(len as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> self.shift) as usize
    }

    #[inline(always)]
    fn add(&mut self, key: u64, len: usize, n: u64) -> bool {
        if self.len * 2 >= self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key, len);
        loop {
            let s = &mut self.slots[i];
            if s.meta == 0 {
                *s = Slot {
                    bytes: key.to_le_bytes(),
                    meta: (n << 4) | len as u64,
                };
                self.len += 1;
                return true;
            }
            if u64::from_le_bytes(s.bytes) == key && (s.meta & 15) as usize == len {
                s.meta += n << 4;
                return false;
            }
            i = (i + 1) & mask;
        }
    }

    fn get(&self, key: u64, len: usize) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key, len);
        loop {
            let s = &self.slots[i];
            if s.meta == 0 {
                return 0;
            }
            if u64::from_le_bytes(s.bytes) == key && (s.meta & 15) as usize == len {
                return s.meta >> 4;
            }
            i = (i + 1) & mask;
        }
    }

    #[cold]
    fn grow(&mut self) {
        self.resize((self.slots.len() * 2).max(1024));
    }

    /// Room for `additional` more words at most half full.
    fn reserve(&mut self, additional: usize) {
        let want = ((self.len + additional) * 2).next_power_of_two().max(1024);
        if want > self.slots.len() {
            self.resize(want);
        }
    }

    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        self.shift = 64 - size.trailing_zeros();
        self.len = 0;
        // Words at 0 (after a subtraction) go.
        for s in old.into_iter().filter(|s| s.meta > 15) {
            self.add(
                u64::from_le_bytes(s.bytes),
                (s.meta & 15) as usize,
                s.meta >> 4,
            );
        }
    }

    /// Subtracts `n` from a word's count; false when the word has less.
    /// A word left at 0 keeps its slot (probing runs through it) until
    /// the table is rebuilt ([`ShortTable::drop_zeros`]).
    fn sub(&mut self, key: u64, len: usize, n: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key, len);
        loop {
            let s = &mut self.slots[i];
            if s.meta == 0 {
                return false;
            }
            if u64::from_le_bytes(s.bytes) == key && (s.meta & 15) as usize == len {
                if s.meta >> 4 < n {
                    return false;
                }
                s.meta -= n << 4;
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    /// Rebuilds the table without the words whose count is 0.
    fn drop_zeros(&mut self) {
        self.resize(self.slots.len());
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.slots
            .iter()
            .filter(|s| s.meta > 15)
            .map(|s| (&s.bytes[..(s.meta & 15) as usize], s.meta >> 4))
    }
}

/// A word of up to 8 bytes as its short-table key.
#[inline]
fn short_key(word: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..word.len()].copy_from_slice(word);
    u64::from_le_bytes(b)
}

/// One ranked entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WordCount {
    #[serde(with = "lossy")]
    pub word: Vec<u8>,
    pub count: u64,
}

impl Counts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` occurrences of `word`.
    #[inline]
    pub fn add(&mut self, word: &[u8], n: u64) {
        if !word.is_empty() && word.len() <= 8 {
            self.total += n;
            self.short.add(short_key(word), word.len(), n);
            return;
        }
        self.total += n;
        let hash = self.hasher.hash_one(word);
        match self.long.find_mut(hash, |(w, _)| &**w == word) {
            Some((_, c)) => *c += n,
            None => {
                let hasher = &self.hasher;
                self.long
                    .insert_unique(hash, (word.into(), n), |(w, _)| hasher.hash_one(&**w));
            }
        }
    }

    /// Adds one occurrence of a word of `len` (1..=8) bytes, given as its
    /// bytes read little-endian and zero-padded: the counting fast path.
    #[inline(always)]
    pub fn add_short(&mut self, key: u64, len: usize) {
        self.total += 1;
        self.short.add(key, len, 1);
    }

    /// Total occurrences.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Distinct words.
    pub fn distinct(&self) -> usize {
        self.short.len + self.long.len()
    }

    pub fn get(&self, word: &[u8]) -> u64 {
        if !word.is_empty() && word.len() <= 8 {
            return self.short.get(short_key(word), word.len());
        }
        let hash = self.hasher.hash_one(word);
        self.long
            .find(hash, |(w, _)| &**w == word)
            .map_or(0, |(_, c)| *c)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        self.short
            .iter()
            .chain(self.long.iter().map(|(w, c)| (&**w, *c)))
    }

    /// Empties the counts and keeps their room, for counting the next file.
    pub fn clear(&mut self) {
        self.short.slots.fill(Slot::default());
        self.short.len = 0;
        self.long.clear();
        self.total = 0;
    }

    /// Room for `additional` more distinct words without growing.
    pub fn reserve(&mut self, additional: usize) {
        self.short.reserve(additional);
        let hasher = &self.hasher;
        self.long
            .reserve(additional, |(w, _)| hasher.hash_one(&**w));
    }

    pub fn merge(&mut self, other: &Counts) {
        self.reserve(other.distinct());
        for (w, c) in other.iter() {
            self.add(w, c);
        }
    }

    /// The `k` most frequent words, count descending then word ascending
    /// (bytewise), so that every way of counting prints the same list.
    pub fn top(&self, k: usize) -> Vec<WordCount> {
        // The k-th largest count first, among the counts alone: only the
        // words that reach it are read (on 614,000 words, 3× faster).
        let mut counts: Vec<u64> = self.iter().map(|(_, c)| c).collect();
        let least = match k {
            0 => return Vec::new(),
            k if k < counts.len() => *counts.select_nth_unstable_by(k - 1, |a, b| b.cmp(a)).1,
            _ => 0,
        };
        let mut all: Vec<(&[u8], u64)> = self.iter().filter(|&(_, c)| c >= least).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.truncate(k);
        all.into_iter()
            .map(|(w, c)| WordCount {
                word: w.to_vec(),
                count: c,
            })
            .collect()
    }

    /// Every word as a `count word` line, count descending then word
    /// ascending: what `wordcount count --top K` prints, for every word.
    /// Sorted and formatted on every core: a job's output waits for it.
    pub fn lines(&self) -> Vec<u8> {
        use rayon::prelude::*;
        let mut all: Vec<(&[u8], u64)> = self.iter().collect();
        all.par_sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let parts: Vec<Vec<u8>> = (all.par_chunks(64 * 1024))
            .map(|chunk| {
                let mut out = Vec::with_capacity(chunk.iter().map(|(w, _)| w.len() + 8).sum());
                let mut num = itoa::Buffer::new();
                for (word, count) in chunk {
                    out.extend_from_slice(num.format(*count).as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(word);
                    out.push(b'\n');
                }
                out
            })
            .collect();
        parts.concat()
    }

    /// Appends the packed form of these counts to `out`.
    pub fn pack_into(&self, out: &mut Vec<u8>) {
        let mut num = itoa::Buffer::new();
        for (w, c) in self.iter() {
            out.extend_from_slice(w);
            out.push(b'\t');
            out.extend_from_slice(num.format(c).as_bytes());
            out.push(b'\n');
        }
    }

    pub fn pack(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.distinct() * 12);
        self.pack_into(&mut out);
        out
    }

    /// Adds the packed counts in `packed` (as made by [`Counts::pack`]):
    /// the driver's merge of every committed file, so each line is read
    /// in one pass from its end (the count's digits, then the tab).
    pub fn add_packed(&mut self, packed: &[u8]) -> anyhow::Result<()> {
        self.reserve(memchr::memchr_iter(b'\n', packed).count());
        for line in packed_lines(packed) {
            let (word, n) = line?;
            self.add(word, n);
        }
        Ok(())
    }

    /// Takes away the packed counts in `packed`, which were added before:
    /// what the driver merged from a commit that a Redis restart rolled
    /// back. Words left at 0 are gone. Fails, changing nothing it has not
    /// changed already, on a word with fewer occurrences than `packed` says.
    pub fn sub_packed(&mut self, packed: &[u8]) -> anyhow::Result<()> {
        let mut short_zeros = false;
        for line in packed_lines(packed) {
            let (word, n) = line?;
            let taken = if !word.is_empty() && word.len() <= 8 {
                let key = short_key(word);
                let ok = self.short.sub(key, word.len(), n);
                short_zeros |= ok && self.short.get(key, word.len()) == 0;
                ok
            } else {
                let hash = self.hasher.hash_one(word);
                match self.long.find_entry(hash, |(w, _)| &**w == word) {
                    Ok(e) if e.get().1 == n => {
                        e.remove();
                        true
                    }
                    Ok(mut e) if e.get().1 > n => {
                        e.get_mut().1 -= n;
                        true
                    }
                    _ => false,
                }
            };
            if !taken {
                anyhow::bail!(
                    "cannot take {n} of {:?} away: it was not added",
                    String::from_utf8_lossy(word)
                );
            }
            self.total -= n;
        }
        if short_zeros {
            let before = self.short.len;
            self.short.drop_zeros();
            debug_assert!(self.short.len <= before);
        }
        Ok(())
    }

    /// The first difference between two count tables, as a message.
    pub fn first_difference(&self, other: &Counts) -> Option<String> {
        let mut words: Vec<&[u8]> = self.iter().map(|(w, _)| w).collect();
        words.extend(other.iter().map(|(w, _)| w));
        words.sort_unstable();
        words.dedup();
        words.into_iter().find_map(|w| {
            let (a, b) = (self.get(w), other.get(w));
            (a != b).then(|| {
                format!(
                    "word {:?}: {a} here, {b} in the reference",
                    String::from_utf8_lossy(w)
                )
            })
        })
    }
}

/// The (word, count) of each line of packed counts.
fn packed_lines(packed: &[u8]) -> impl Iterator<Item = anyhow::Result<(&[u8], u64)>> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', packed)
        .chain([packed.len()])
        .filter_map(move |end| {
            let line = &packed[start..end];
            start = end + 1;
            (!line.is_empty()).then(|| {
                split_line(line).ok_or_else(|| {
                    anyhow::anyhow!(
                        "malformed packed counts line {:?}",
                        String::from_utf8_lossy(line)
                    )
                })
            })
        })
}

/// `word\tcount` as the word and its count.
#[inline]
fn split_line(line: &[u8]) -> Option<(&[u8], u64)> {
    let mut n: u64 = 0;
    let mut scale: u64 = 1;
    for (i, &b) in line.iter().enumerate().rev() {
        match b {
            b'0'..=b'9' => {
                n = n.checked_add(scale.checked_mul(u64::from(b - b'0'))?)?;
                scale = scale.saturating_mul(10);
            }
            b'\t' if i + 1 < line.len() => return Some((&line[..i], n)),
            _ => return None,
        }
    }
    None
}

impl PartialEq for Counts {
    fn eq(&self, other: &Self) -> bool {
        self.total == other.total
            && self.distinct() == other.distinct()
            && self.iter().all(|(w, c)| other.get(w) == c)
    }
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Counts({} words, {} distinct)",
            self.total,
            self.distinct()
        )
    }
}

/// Words are bytes (the whitespace tokenizer keeps any byte); JSON shows
/// them as text, with invalid UTF-8 replaced.
mod lossy {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(w: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(w))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(words: &[&str]) -> Counts {
        let mut c = Counts::new();
        for w in words {
            c.add(w.as_bytes(), 1);
        }
        c
    }

    #[test]
    fn top_orders_by_count_then_word() {
        let c = counts(&["b", "a", "c", "b", "a", "d"]);
        let top: Vec<_> = c.top(3).into_iter().map(|e| (e.word, e.count)).collect();
        assert_eq!(
            top,
            [(b"a".to_vec(), 2), (b"b".to_vec(), 2), (b"c".to_vec(), 1)]
        );
        assert_eq!(c.total(), 6);
        assert_eq!(c.distinct(), 4);
    }

    #[test]
    fn taking_away_what_was_added_leaves_the_rest() {
        let a = counts(&["x", "y", "a-long-word", "z"]);
        let b = counts(&["y", "a-long-word", "only-in-b-long", "w"]);
        let mut c = a.clone();
        c.add_packed(&b.pack()).unwrap();
        c.sub_packed(&b.pack()).unwrap();
        assert_eq!(c, a);
        assert_eq!(c.distinct(), 4);
        assert_eq!(c.iter().count(), 4);
        assert_eq!(c.get(b"w"), 0);
        // More than there is: refused.
        assert!(c.sub_packed(b"x\t2\n").is_err());
        // And what is left can be added to again.
        c.add(b"w", 3);
        assert_eq!(c.get(b"w"), 3);
        assert_eq!(c.distinct(), 5);
    }

    proptest::proptest! {
        /// Merging two tables and taking the second away gives the first.
        #[test]
        fn sub_undoes_add(
            a in proptest::collection::vec("[a-e]{1,12}", 0..200),
            b in proptest::collection::vec("[a-e]{1,12}", 0..200),
        ) {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let b: Vec<&str> = b.iter().map(String::as_str).collect();
            let (ca, cb) = (counts(&a), counts(&b));
            let mut c = ca.clone();
            c.merge(&cb);
            c.sub_packed(&cb.pack()).unwrap();
            prop_assert_eq!(c.distinct(), ca.distinct());
            prop_assert!(c == ca);
        }

        /// The top k is the head of every word sorted by count descending,
        /// then word, whatever the ties at the k-th count.
        #[test]
        fn top_is_the_head_of_the_full_order(
            words in proptest::collection::vec("[a-e]{1,2}", 0..200),
            k in 0usize..30,
        ) {
            let c = counts(&words.iter().map(String::as_str).collect::<Vec<_>>());
            let mut all: Vec<(Vec<u8>, u64)> = c.iter().map(|(w, n)| (w.to_vec(), n)).collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(k);
            let top: Vec<_> = c.top(k).into_iter().map(|e| (e.word, e.count)).collect();
            proptest::prop_assert_eq!(top, all);
        }
    }

    #[test]
    fn packed_lines_are_read_from_their_end() {
        assert_eq!(split_line(b"w1\t12"), Some((&b"w1"[..], 12)));
        assert_eq!(split_line(b"a\tb\t3"), Some((&b"a\tb"[..], 3)));
        let max = format!("w\t{}", u64::MAX);
        assert_eq!(split_line(max.as_bytes()), Some((&b"w"[..], u64::MAX)));
        for bad in ["abc", "a\t", "a\tx1", "a\t1 ", "a\t18446744073709551616"] {
            assert_eq!(split_line(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(Counts::new().add_packed(b"a\t1\nb\n").is_err());
        let mut c = Counts::new();
        c.add_packed(b"a\t1\nbb\t2\n\nccccccccccc\t3").unwrap();
        assert_eq!(
            (c.get(b"a"), c.get(b"bb"), c.get(b"ccccccccccc")),
            (1, 2, 3)
        );
    }

    #[test]
    fn first_difference_names_the_word() {
        let a = counts(&["x", "y"]);
        let b = counts(&["x", "y", "y"]);
        assert_eq!(
            a.first_difference(&b).unwrap(),
            "word \"y\": 1 here, 2 in the reference"
        );
        assert!(a.first_difference(&a.clone()).is_none());
    }

    proptest! {
        #[test]
        fn pack_round_trips(words in proptest::collection::vec("[a-z0-9é]{1,8}", 0..200)) {
            let c = counts(&words.iter().map(|s| s.as_str()).collect::<Vec<_>>());
            let mut back = Counts::new();
            back.add_packed(&c.pack()).unwrap();
            prop_assert_eq!(back, c);
        }

        #[test]
        fn merge_is_the_count_of_the_concatenation(
            a in proptest::collection::vec("[a-c]{1,2}", 0..50),
            b in proptest::collection::vec("[a-c]{1,2}", 0..50),
        ) {
            let mut merged = counts(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
            merged.merge(&counts(&b.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
            let all: Vec<&str> = a.iter().chain(&b).map(|s| s.as_str()).collect();
            prop_assert_eq!(merged, counts(&all));
        }
    }
}
