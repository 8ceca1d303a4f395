//! The CRDT mode's sites as real network peers: a network namespace per
//! site with an address of its own (a veth pair to a bridge on the host),
//! and cuts between a site and an instance as iptables rules in the site's
//! namespace. Made by `ip` and `iptables`, as root; removed on drop.

use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;
use std::process::Command;

pub struct Network {
    /// Unique to this run, so that runs side by side do not collide.
    tag: String,
    sites: usize,
    subnet: u8,
}

impl Network {
    /// Namespaces for `sites` sites on a bridge; needs root.
    pub fn create(sites: usize) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!(
                "partitions need root: each site runs in a network namespace of its own, cut \
                 with iptables (a job without --partition runs without root)"
            );
        }
        // Unique to the process and the run (an experiment runs many),
        // and short: interface names have at most 15 bytes.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
        let pid = std::process::id() % 10_000;
        let net = Network {
            tag: format!("wc{pid}r{run}"),
            sites,
            subnet: ((pid + run) % 200) as u8 + 20,
        };
        let bridge = net.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}/24", net.host()), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for i in 0..sites {
            let (ns, outside) = (net.ns(i), format!("{}h{i}", net.tag));
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &outside, "master", &bridge, "up"])?;
            in_ns(&ns, "ip", &["link", "set", "lo", "up"])?;
            in_ns(
                &ns,
                "ip",
                &["addr", "add", &format!("{}/24", net.addr(i)), "dev", "eth0"],
            )?;
            in_ns(&ns, "ip", &["link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    /// Site `i`'s namespace.
    pub fn ns(&self, i: usize) -> String {
        format!("{}s{i}", self.tag)
    }

    /// Site `i`'s address, where its Redis listens.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, i as u8 + 1)
    }

    /// The host's address on the bridge: where the runner and the drivers
    /// reach every site from, never cut.
    fn host(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 254)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    /// Drops (`add`) or lets through again (`remove`) site `site`'s traffic
    /// with instance `instance` listening on `port`, both ways.
    pub fn cut(&self, site: usize, instance: usize, port: u16, add: bool) -> Result<()> {
        let (op, dst, port) = (
            if add { "-A" } else { "-D" },
            self.addr(instance).to_string(),
            port.to_string(),
        );
        let ns = self.ns(site);
        let rules: [[&str; 10]; 2] = [
            [
                "-w", op, "OUTPUT", "-d", &dst, "-p", "tcp", "--dport", &port, "-j",
            ],
            [
                "-w", op, "INPUT", "-s", &dst, "-p", "tcp", "--sport", &port, "-j",
            ],
        ];
        for rule in rules {
            let mut args = rule.to_vec();
            args.push("DROP");
            in_ns(&ns, "iptables", &args)?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for i in 0..self.sites {
            let _ = ip(&["netns", "del", &self.ns(i)]);
            // Gone with the namespace, but not always at once.
            let _ = ip(&["link", "del", &format!("{}h{i}", self.tag)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<()> {
    run(Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args))
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
