//! The command-line interface of the `ims-callback` binary.

mod input;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Callback receiver for Alibaba Cloud IMS events.
#[derive(Debug, Parser)]
#[command(name = "ims-callback", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Classify and validate IMS events; print one JSON line per input.
    ///
    /// Exit status: 0 when every input is valid, 1 when any is invalid,
    /// 2 on a usage or I/O error.
    Validate(validate::Args),
}

/// Exit status for usage and I/O errors (clap uses 2 for usage errors too).
pub const EXIT_IO: u8 = 2;

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Validate(args) => validate::run(args),
        }
    }
}
