//! The `ims-callback` binary: parses the command line and runs it.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::Cli::parse().run()
}

#[global_allocator]
static GLOBAL: ims_callback::alloc::MiMalloc = ims_callback::alloc::MiMalloc;
