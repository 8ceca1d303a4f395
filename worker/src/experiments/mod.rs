//! Experiments: each runs real counts and jobs, writes CSV and a PNG plot.

use anyhow::Result;

#[derive(clap::Args)]
pub struct ExperimentArgs {}

pub fn run(_args: ExperimentArgs) -> Result<()> {
    anyhow::bail!("no experiments yet")
}
