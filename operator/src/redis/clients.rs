//! Ending a job's Redis connections (partitions): a partition's
//! NetworkPolicy filters new connections only, so the open ones that got
//! through are ended here.

use super::{connect, unreachable, Endpoint, ReadError};
use futures::future::BoxFuture;
use std::time::Duration;

/// Ends a job's Redis connections from given addresses: the one thing the
/// operator does to a job's Redis besides reading it.
pub trait EndConnections: Send + Sync {
    /// Ends the connections of the clients at these IP addresses; returns
    /// how many it ended.
    fn end<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        ips: &'a [String],
    ) -> BoxFuture<'a, Result<usize, ReadError>>;
}

/// `CLIENT LIST`, then `CLIENT KILL ID` for each client at one of the addresses.
#[derive(Clone, Debug)]
pub struct ClientKill {
    pub timeout: Duration,
}

impl Default for ClientKill {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
        }
    }
}

impl EndConnections for ClientKill {
    fn end<'a>(
        &'a self,
        ep: &'a Endpoint,
        ips: &'a [String],
    ) -> BoxFuture<'a, Result<usize, ReadError>> {
        Box::pin(async move {
            let mut con = connect(ep, self.timeout).await?;
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut con)
                .await
                .map_err(unreachable(ep))?;
            let mut pipe = redis::pipe();
            for id in clients_at(&list, ips) {
                pipe.cmd("CLIENT").arg("KILL").arg("ID").arg(id);
            }
            let ended: Vec<usize> = pipe.query_async(&mut con).await.map_err(unreachable(ep))?;
            Ok(ended.iter().sum())
        })
    }
}

/// The ids of the clients in a `CLIENT LIST` reply whose address is one of `ips`.
fn clients_at(list: &str, ips: &[String]) -> Vec<u64> {
    list.lines()
        .filter_map(|line| {
            let field = |key: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
            };
            let ip = field("addr")?.rsplit_once(':')?.0;
            ips.iter()
                .any(|i| i == ip)
                .then(|| field("id")?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_picked_by_address() {
        let list = "id=3 addr=10.244.0.5:41234 laddr=10.244.0.3:6379 fd=8 name= db=0\n\
                    id=4 addr=10.244.0.15:5000 laddr=10.244.0.3:6379 fd=9 name= db=0\n\
                    id=7 addr=10.244.0.5:41240 laddr=10.244.0.3:6379 fd=10 name= db=0\n";
        assert_eq!(clients_at(list, &["10.244.0.5".into()]), [3, 7]);
        assert_eq!(clients_at(list, &["10.244.0.1".into()]), Vec::<u64>::new());
    }
}
