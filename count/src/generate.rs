//! Synthetic corpora: files of words drawn from a Zipf vocabulary, with an
//! optional skewed file, or files of tweets made of the same words;
//! reproducible from a seed.

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Zipf};
use std::io::Write;
use std::ops::RangeInclusive;
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
        let mut rng = file_rng(spec.seed, i);
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

/// File `i`'s own generator: each file can be made (and checked) alone.
fn file_rng(seed: u64, i: usize) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64))
}

/// Synthetic tweets: short lines of Zipf words with hashtags, mentions, the
/// odd link and emoji, the punctuation-heavy text a tokenizer meets in
/// social media.
#[derive(Clone, Debug)]
pub struct TweetSpec {
    pub files: usize,
    pub tweets_per_file: usize,
    /// Distinct words to draw from (hashtags draw from them too).
    pub vocabulary: u64,
    /// Zipf exponent: 1.0 is about natural text; 0 is uniform.
    pub zipf: f64,
    pub seed: u64,
}

impl Default for TweetSpec {
    fn default() -> Self {
        TweetSpec {
            files: 10,
            tweets_per_file: 100,
            vocabulary: 50_000,
            zipf: 1.0,
            seed: 1,
        }
    }
}

/// Twitter's limit. Counted here in chars (Twitter counts an emoji as two
/// and a link as 23; near enough for a benchmark).
pub const TWEET_MAX_CHARS: usize = 280;
/// Tokens per tweet before the link, uniform: "a few" to about thirty
/// words, most tweets well under the cap.
const TWEET_TOKENS: RangeInclusive<usize> = 3..=30;
/// Per token, the odds of a hashtag, a mention and an emoji; the rest are words.
const HASHTAG: f64 = 0.05;
const MENTION: f64 = 0.05;
const EMOJI_ODDS: f64 = 0.03;
/// Per tweet, the odds of a link; it goes last, where clients put them.
const LINK: f64 = 0.15;
/// Accounts that mentions name, Zipf too: a few are mentioned a lot.
const USERS: f64 = 10_000.0;
/// Real emoji, each a single char: no variation selectors or joiners,
/// so every tokenizer sees the same thing (not a letter, not a digit).
const EMOJI: [char; 8] = ['😂', '🔥', '👍', '🙏', '😭', '✨', '🎉', '💯'];
/// The characters of a t.co link's id.
const BASE62: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Writes the tweets into `dir` (created if needed) as `tweets-00000.txt`...,
/// one tweet a line; returns the paths written.
pub fn generate_tweets(dir: &Path, spec: &TweetSpec) -> Result<Vec<PathBuf>> {
    if spec.files == 0 {
        bail!("tweets need at least one file (got 0 files)");
    }
    if spec.tweets_per_file == 0 {
        bail!("tweets need at least one tweet per file (got 0 tweets per file)");
    }
    if spec.vocabulary == 0 {
        bail!("tweets need at least one word (got a vocabulary of 0)");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let draws = Draws {
        words: Zipf::new(spec.vocabulary as f64, spec.zipf).context("bad Zipf parameters")?,
        users: Zipf::new(USERS, 1.0).context("bad Zipf parameters")?,
    };
    let mut paths = Vec::with_capacity(spec.files);
    let (mut line, mut token) = (String::new(), String::new());
    for i in 0..spec.files {
        let mut rng = file_rng(spec.seed, i);
        let path = dir.join(format!("tweets-{i:05}.txt"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for _ in 0..spec.tweets_per_file {
            tweet(&mut rng, &draws, &mut line, &mut token);
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The distributions a tweet draws from, built once for all files.
struct Draws {
    words: Zipf<f64>,
    users: Zipf<f64>,
}

/// One tweet into `line`: tokens until the count drawn or the cap, then
/// perhaps a link. `token` is scratch space.
fn tweet(rng: &mut StdRng, draws: &Draws, line: &mut String, token: &mut String) {
    line.clear();
    for _ in 0..rng.random_range(TWEET_TOKENS) {
        token.clear();
        draw_token(rng, draws, token);
        if !push_capped(line, token) {
            break;
        }
    }
    if rng.random_bool(LINK) {
        token.clear();
        link(rng, token);
        push_capped(line, token);
    }
}

/// A word, `#word`, `@user123` or an emoji.
fn draw_token(rng: &mut StdRng, draws: &Draws, out: &mut String) {
    let r: f64 = rng.random();
    if r < MENTION {
        out.push_str("@user");
        out.push_str(itoa::Buffer::new().format(draws.users.sample(rng) as u64));
    } else if r < MENTION + EMOJI_ODDS {
        out.push(EMOJI[rng.random_range(0..EMOJI.len())]);
    } else {
        if r < MENTION + EMOJI_ODDS + HASHTAG {
            out.push('#');
        }
        spell(draws.words.sample(rng) as u64 - 1, out);
    }
}

/// A shortened link, `https://t.co/` and ten base-62 characters.
fn link(rng: &mut StdRng, out: &mut String) {
    out.push_str("https://t.co/");
    for _ in 0..10 {
        out.push(BASE62[rng.random_range(0..BASE62.len())] as char);
    }
}

/// Appends `token` (after a space) if the line stays within the cap.
fn push_capped(line: &mut String, token: &str) -> bool {
    let sep = usize::from(!line.is_empty());
    if line.chars().count() + sep + token.chars().count() > TWEET_MAX_CHARS {
        return false;
    }
    if sep == 1 {
        line.push(' ');
    }
    line.push_str(token);
    true
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

    /// What a token of a tweet is; panics on anything the generator should
    /// not write.
    #[derive(Debug, PartialEq)]
    enum Kind {
        Word,
        Hashtag,
        Mention,
        Link,
        Emoji,
    }

    fn kind(token: &str) -> Kind {
        let letters = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase());
        if let Some(w) = token.strip_prefix('#') {
            assert!(letters(w), "bad hashtag {token:?}");
            Kind::Hashtag
        } else if let Some(n) = token.strip_prefix("@user") {
            assert!(
                n.parse::<u64>().is_ok_and(|n| n >= 1),
                "bad mention {token:?}"
            );
            Kind::Mention
        } else if let Some(id) = token.strip_prefix("https://t.co/") {
            assert!(
                id.len() == 10 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
                "bad link {token:?}"
            );
            Kind::Link
        } else if token.chars().count() == 1 && EMOJI.contains(&token.chars().next().unwrap()) {
            Kind::Emoji
        } else {
            assert!(letters(token), "bad word {token:?}");
            Kind::Word
        }
    }

    fn tweets(spec: &TweetSpec) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate_tweets(dir.path(), spec).unwrap();
        (dir, paths)
    }

    fn lines(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .flat_map(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                assert!(
                    text.ends_with('\n'),
                    "{} lacks its last newline",
                    p.display()
                );
                text.lines().map(str::to_owned).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn generate_tweets_is_deterministic_for_a_seed() {
        let spec = TweetSpec {
            files: 3,
            seed: 7,
            ..Default::default()
        };
        let (_a, first) = tweets(&spec);
        let names: Vec<_> = first.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(
            names,
            ["tweets-00000.txt", "tweets-00001.txt", "tweets-00002.txt"]
        );
        let (_b, again) = tweets(&spec);
        for (x, y) in first.iter().zip(&again) {
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
        }
        // The files differ from each other, and another seed changes them.
        assert_ne!(
            std::fs::read(&first[0]).unwrap(),
            std::fs::read(&first[1]).unwrap()
        );
        let (_c, other) = tweets(&TweetSpec { seed: 8, ..spec });
        assert_ne!(
            std::fs::read(&first[0]).unwrap(),
            std::fs::read(&other[0]).unwrap()
        );
    }

    #[test]
    fn generate_tweets_writes_one_short_tweet_a_line() {
        let spec = TweetSpec {
            files: 2,
            tweets_per_file: 300,
            ..Default::default()
        };
        let (_dir, paths) = tweets(&spec);
        let all = lines(&paths);
        assert_eq!(all.len(), 600);
        for line in &all {
            let tokens = line.split(' ').count();
            // The drawn tokens, plus perhaps a link; no empty token.
            assert!((3..=31).contains(&tokens), "{tokens} tokens: {line:?}");
            assert!(line.split(' ').all(|t| !t.is_empty()), "{line:?}");
            assert!(line.chars().count() <= TWEET_MAX_CHARS, "{line:?}");
        }
        let lengths: Vec<usize> = all.iter().map(|l| l.split(' ').count()).collect();
        assert!(lengths.iter().any(|&n| n <= 5) && lengths.iter().any(|&n| n >= 28));
    }

    #[test]
    fn generate_tweets_caps_long_tweets() {
        // Words of a huge vocabulary are long: thirty of them do not fit.
        let spec = TweetSpec {
            files: 1,
            tweets_per_file: 500,
            vocabulary: 1 << 50,
            zipf: 0.0,
            ..Default::default()
        };
        let (_dir, paths) = tweets(&spec);
        let all = lines(&paths);
        assert_eq!(all.len(), 500);
        let longest = all.iter().map(|l| l.chars().count()).max().unwrap();
        assert!(
            (TWEET_MAX_CHARS - 30..=TWEET_MAX_CHARS).contains(&longest),
            "longest {longest}"
        );
        for line in &all {
            assert!(line.chars().count() <= TWEET_MAX_CHARS, "{line:?}");
            assert!(!line.is_empty() && !line.starts_with(' ') && !line.ends_with(' '));
        }
    }

    #[test]
    fn generate_tweets_has_hashtags_mentions_links_and_emoji() {
        let (_dir, paths) = tweets(&TweetSpec::default());
        let mut seen = std::collections::HashMap::new();
        let mut emoji = std::collections::HashSet::new();
        for line in lines(&paths) {
            let mut links = 0;
            for token in line.split(' ') {
                let k = kind(token);
                if k == Kind::Emoji {
                    emoji.insert(token.to_owned());
                }
                links += usize::from(k == Kind::Link);
                *seen.entry(format!("{k:?}")).or_insert(0usize) += 1;
            }
            assert!(links <= 1, "{line:?}");
        }
        let count = |k: &str| seen.get(k).copied().unwrap_or(0);
        let words = count("Word");
        // Roughly the odds asked for, and words the bulk of it.
        for (k, odds) in [
            ("Hashtag", HASHTAG),
            ("Mention", MENTION),
            ("Emoji", EMOJI_ODDS),
        ] {
            let share = count(k) as f64 / (words as f64);
            assert!(share > odds / 2.0 && share < odds * 2.0, "{k}: {seen:?}");
        }
        let links = count("Link") as f64 / 1000.0;
        assert!(links > LINK / 2.0 && links < LINK * 2.0, "{seen:?}");
        assert!(emoji.len() >= EMOJI.len() / 2, "{emoji:?}");
    }

    #[test]
    fn generate_tweets_counts_as_expected_and_follows_zipf() {
        use crate::engine::{count_files, Parallelism};
        use crate::tokenize::Tokenizer;
        let (dir, paths) = tweets(&TweetSpec::default());
        // What the alnum tokenizer should find, from the tokens written: a
        // link is https, t, co and its id; an emoji is no word.
        let expected: u64 = lines(&paths)
            .iter()
            .flat_map(|l| l.split(' ').map(kind).collect::<Vec<_>>())
            .map(|k| match k {
                Kind::Word | Kind::Hashtag | Kind::Mention => 1,
                Kind::Link => 4,
                Kind::Emoji => 0,
            })
            .sum();
        assert!(expected > 10_000, "{expected}");
        let files = crate::input::list(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files.len(), 10);
        let counts = count_files(&files, Tokenizer::Alnum, Parallelism::Serial).unwrap();
        assert_eq!(counts.total(), expected);
        // Zipf with exponent 1: the first word of the vocabulary is the most
        // frequent, about ten times the tenth (rank 9, "co", is also in links).
        let word = |n| {
            let mut w = String::new();
            spell(n, &mut w);
            counts.get(w.as_bytes())
        };
        assert_eq!(counts.top(1)[0].word, b"ba");
        let (first, tenth) = (word(0), word(9));
        assert!(
            tenth > 0 && first > 5 * tenth && first < 20 * tenth,
            "{first} vs {tenth}"
        );
    }

    #[test]
    fn generate_tweets_needs_files_and_tweets() {
        let dir = tempfile::tempdir().unwrap();
        for (spec, says) in [
            (
                TweetSpec {
                    files: 0,
                    ..Default::default()
                },
                "at least one file",
            ),
            (
                TweetSpec {
                    tweets_per_file: 0,
                    ..Default::default()
                },
                "at least one tweet",
            ),
        ] {
            let err = generate_tweets(dir.path(), &spec).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
