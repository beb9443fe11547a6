//! `shop`: run the product locally and operate it. The commands are in
//! `cli/`, one file each; this is the entry point.

mod cli;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::Cli::parse().run().await
}
