//! A sorted set as the payload of Redis's `DUMP`, for `RESTORE`: the
//! cheapest way to make a large sorted set in Redis.
//!
//! The set is encoded as a listpack, the compact form Redis keeps small
//! sets in: one buffer of `member, score` pairs in the set's order. Redis
//! restores it with one copy, where a skiplist costs a hash-table insert
//! and a skiplist insert per member (614,000 members: 0.38 s of Redis's
//! time, and Redis does one thing at a time). Redis keeps it as a listpack
//! only while `zset-max-listpack-entries` allows (see
//! `state::replace_counts`); otherwise it converts it on load.
//!
//! The format is Redis's RDB encoding of one value (`rdb.c`, `listpack.c`):
//! the type, the value, then the RDB version and a CRC-64 of everything
//! before it.

use crc::{Crc, Table, CRC_64_REDIS};

/// `RDB_TYPE_ZSET_LISTPACK`.
const ZSET_LISTPACK: u8 = 17;
/// Redis 7.0's RDB version; every later Redis restores it.
const RDB_VERSION: u16 = 10;
/// A listpack's element count when it does not fit its 16-bit header.
const COUNT_UNKNOWN: u16 = u16::MAX;
const END: u8 = 0xff;

/// The payload of a sorted set of `(member, score)`, which must be sorted
/// by score, then member, and hold each member once.
pub fn sorted_set(members: &[(&[u8], u64)]) -> Vec<u8> {
    let bytes: usize = members.iter().map(|(m, _)| m.len() + 16).sum();
    let mut lp = Vec::with_capacity(bytes + 8);
    lp.extend_from_slice(&[0; 6]); // total bytes and count, known at the end
    for (member, score) in members {
        string_entry(&mut lp, member);
        int_entry(&mut lp, *score as i64);
    }
    lp.push(END);
    let total = u32::try_from(lp.len()).expect("a listpack is under 4 GiB");
    let count = u16::try_from(members.len() * 2).unwrap_or(COUNT_UNKNOWN);
    lp[..4].copy_from_slice(&total.to_le_bytes());
    lp[4..6].copy_from_slice(&count.to_le_bytes());

    let mut out = Vec::with_capacity(lp.len() + 32);
    out.push(ZSET_LISTPACK);
    length(&mut out, lp.len());
    out.extend_from_slice(&lp);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = Crc::<u64, Table<16>>::new(&CRC_64_REDIS).checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A string entry, stored as Redis stores it: as an integer when it is
/// one written plainly (`lpStringToInt64`: no sign but `-`, no leading 0).
fn string_entry(lp: &mut Vec<u8>, s: &[u8]) {
    if let Some(n) = plain_integer(s) {
        return int_entry(lp, n);
    }
    let start = lp.len();
    let n = s.len();
    if n < 1 << 6 {
        lp.push(0x80 | n as u8);
    } else if n < 1 << 12 {
        lp.extend_from_slice(&[0xe0 | (n >> 8) as u8, n as u8]);
    } else {
        lp.push(0xf0);
        lp.extend_from_slice(&(n as u32).to_le_bytes());
    }
    lp.extend_from_slice(s);
    backlen(lp, lp.len() - start);
}

fn plain_integer(s: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    (s.len() < 21 && n.to_string().as_bytes() == s).then_some(n)
}

/// An integer entry in the smallest of listpack's integer forms.
fn int_entry(lp: &mut Vec<u8>, v: i64) {
    let start = lp.len();
    match v {
        0..=127 => lp.push(v as u8),
        -4096..=4095 => {
            let u = (v as u16) & 0x1fff;
            lp.extend_from_slice(&[0xc0 | (u >> 8) as u8, u as u8]);
        }
        -32_768..=32_767 => {
            lp.push(0xf1);
            lp.extend_from_slice(&(v as i16).to_le_bytes());
        }
        -8_388_608..=8_388_607 => {
            lp.push(0xf2);
            lp.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        }
        _ if i32::try_from(v).is_ok() => {
            lp.push(0xf3);
            lp.extend_from_slice(&(v as i32).to_le_bytes());
        }
        _ => {
            lp.push(0xf4);
            lp.extend_from_slice(&v.to_le_bytes());
        }
    }
    backlen(lp, lp.len() - start);
}

/// An entry's length after it, for walking backwards: 7 bits a byte, the
/// first byte holding the highest bits, every byte but the first marked.
fn backlen(lp: &mut Vec<u8>, len: usize) {
    let groups = match len {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    for i in (0..groups).rev() {
        let bits = ((len >> (7 * i)) & 0x7f) as u8;
        lp.push(if i == groups - 1 { bits } else { bits | 0x80 });
    }
}

/// RDB's length: 6, 14, 32 or 64 bits, the first byte telling which.
fn length(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0x80);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Redis 7.0.15 answered to `ZADD z 1 a 2 b` then `DUMP z`: a
    /// small set in a listpack, whose checksum is the same algorithm's.
    const REDIS_DUMP: &[u8] = b"\x11\x11\x11\x00\x00\x00\x04\x00\x81a\x02\x01\x01\x81b\x02\x02\x01\xff\n\x00\xba\x07\xf2$\xa9\xd2\x8fU";

    #[test]
    fn checksum_is_redis_own() {
        let (body, crc) = REDIS_DUMP.split_at(REDIS_DUMP.len() - 8);
        let want = u64::from_le_bytes(crc.try_into().unwrap());
        assert_eq!(Crc::<u64>::new(&CRC_64_REDIS).checksum(body), want);
    }

    #[test]
    fn lengths_take_the_smallest_form() {
        let enc = |n| {
            let mut v = Vec::new();
            length(&mut v, n);
            v
        };
        assert_eq!(enc(63), [63]);
        assert_eq!(enc(64), [0x40, 64]);
        assert_eq!(enc(16_383), [0x7f, 0xff]);
        assert_eq!(enc(16_384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(enc(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn a_set_is_byte_for_byte_what_redis_dumps() {
        assert_eq!(sorted_set(&[(b"a", 1), (b"b", 2)]), REDIS_DUMP);
        // Redis 7.0.15, `--rdbcompression no`: members stored as integers
        // and as 6-, 12- and 32-bit strings, scores in each integer form,
        // and entries whose back-length takes 1, 2 and 3 bytes.
        let x = "x".repeat(100);
        let y = "y".repeat(5000);
        let members: Vec<(&[u8], u64)> = vec![
            (b"-0", 0),
            (b"123", 1),
            (b"-5", 200),
            (b"ab", 4095),
            (b"aa", 4096),
            (b"007", 5000),
            (x.as_bytes(), 40_000),
            (y.as_bytes(), 10_000_000),
            (b"w", 3_000_000_000),
            (b"v", 9_000_000_000_000_000),
        ];
        let want = include_bytes!("testdata/zset-listpack.dump");
        assert_eq!(sorted_set(&members), want);
    }

    #[test]
    fn many_members_leave_the_count_unknown() {
        let words: Vec<String> = (0..40_000).map(|i| format!("w{i:05}")).collect();
        let members: Vec<(&[u8], u64)> = words.iter().map(|w| (w.as_bytes(), 1)).collect();
        let p = sorted_set(&members);
        // type, 32-bit RDB length, then the listpack's header.
        assert_eq!(p[..2], [ZSET_LISTPACK, 0x80]);
        let lp = &p[6..p.len() - 10];
        assert_eq!(
            u32::from_le_bytes(lp[..4].try_into().unwrap()) as usize,
            lp.len()
        );
        assert_eq!(lp[4..6], COUNT_UNKNOWN.to_le_bytes());
        assert_eq!(lp[lp.len() - 1], END);
    }
}
