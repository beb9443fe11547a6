//! `shop`: run the product locally and operate it. The commands are in
//! `cli/`, one file each; this is the entry point. A command that fails
//! prints one line, `shop: <what went wrong>` (its causes after colons), and
//! exits 1 — never a backtrace, whatever `RUST_BACKTRACE` says.

mod cli;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match cli::Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shop: {e:#}");
            ExitCode::FAILURE
        }
    }
}
