//! One site of a CRDT job run without a central runner (`--site I`, as the
//! operator's pods run it): every site is given the same list of
//! instances, and site I's own instance is the I-th.

use crate::connection::redact;
use anyhow::{bail, Result};
use wordcount_protocol::RedisMode;

/// Site `index` of a job whose instances are `urls`, in the job's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub index: usize,
    urls: Vec<String>,
}

impl Site {
    /// The site `--site` names in `--redis` (URLs separated by commas), if
    /// any; only the CRDT mode has sites.
    pub fn parse(mode: RedisMode, redis: &str, site: Option<usize>) -> Result<Option<Site>> {
        let Some(index) = site else {
            return Ok(None);
        };
        if mode != RedisMode::Crdt {
            bail!("--site {index} needs --redis-mode crdt (a site is one of a CRDT's instances)");
        }
        let urls: Vec<String> = redis.split(',').map(|u| u.trim().to_string()).collect();
        if urls.iter().any(String::is_empty) {
            let shown: Vec<String> = urls.iter().map(|u| redact(u)).collect();
            bail!("--redis {:?} has an empty URL", shown.join(","));
        }
        if index >= urls.len() {
            bail!(
                "--site {index}: --redis lists {} instance(s), numbered from 0 to {}",
                urls.len(),
                urls.len() - 1
            );
        }
        Ok(Some(Site { index, urls }))
    }

    /// How many sites (instances) the job has.
    pub fn sites(&self) -> usize {
        self.urls.len()
    }

    /// The instances, this site's first, then the others in the job's
    /// order: what the CRDT backend takes (its own instance first, which
    /// also names the site in its files' global ids).
    pub fn own_first(&self) -> String {
        let n = self.urls.len();
        (0..n)
            .map(|k| self.urls[(self.index + k) % n].as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The other sites' instances: (index in the job's order, URL).
    pub fn peers(&self) -> impl Iterator<Item = (usize, &str)> {
        (self.urls.iter().enumerate())
            .filter(|(k, _)| *k != self.index)
            .map(|(k, u)| (k, u.as_str()))
    }

    /// This site's share of the input listing: the items at positions
    /// congruent to its index modulo the number of sites (round robin in
    /// the listing's order, as `wordcount run --redis crdt` divides it).
    pub fn share<T>(&self, listing: Vec<T>) -> Vec<T> {
        let n = self.urls.len();
        (listing.into_iter().enumerate())
            .filter(|(k, _)| k % n == self.index)
            .map(|(_, item)| item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URLS: &str = "redis://a:1, redis://b:2,redis://c:3";

    fn site(i: usize) -> Site {
        Site::parse(RedisMode::Crdt, URLS, Some(i))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_own_instance_comes_first_and_the_others_keep_their_order() {
        assert_eq!(site(0).own_first(), "redis://a:1,redis://b:2,redis://c:3");
        assert_eq!(site(1).own_first(), "redis://b:2,redis://c:3,redis://a:1");
        assert_eq!(site(2).own_first(), "redis://c:3,redis://a:1,redis://b:2");
        let one = site(1);
        let peers: Vec<(usize, &str)> = one.peers().collect();
        assert_eq!(peers, [(0, "redis://a:1"), (2, "redis://c:3")]);
    }

    #[test]
    fn the_shares_divide_the_listing_round_robin() {
        let listing: Vec<u32> = (0..8).collect();
        let shares: Vec<Vec<u32>> = (0..3).map(|i| site(i).share(listing.clone())).collect();
        assert_eq!(shares, [vec![0, 3, 6], vec![1, 4, 7], vec![2, 5]]);
    }

    #[test]
    fn a_site_outside_the_list_or_the_crdt_mode_is_refused() {
        let err = Site::parse(RedisMode::Crdt, URLS, Some(3)).unwrap_err();
        assert!(err.to_string().contains("0 to 2"), "{err}");
        let err = Site::parse(RedisMode::Snapshot, URLS, Some(0)).unwrap_err();
        assert!(err.to_string().contains("--redis-mode crdt"), "{err}");
        assert_eq!(Site::parse(RedisMode::Snapshot, URLS, None).unwrap(), None);
    }
}
