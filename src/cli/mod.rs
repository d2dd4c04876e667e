//! The command-line interface of the `ims-callback` binary.

mod changes;
mod forward;
mod input;
mod invoke;
mod list;
mod replay;
mod send;
mod serve;
mod sign;
mod state;
mod store_args;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Callback receiver for Alibaba Cloud IMS events.
#[derive(Debug, Parser)]
#[command(name = "ims-callback", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without one, `serve` (how Function Compute starts
    /// `/code/bootstrap`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the callback server (the default): FC custom runtime on
    /// 0.0.0.0:$FC_CUSTOM_LISTEN_PORT (9000).
    Serve(serve::Args),
    /// Print the X-ICE-TIMESTAMP and X-ICE-SIGNATURE headers IMS would send.
    Sign(sign::Args),
    /// Classify and validate IMS events; print one JSON line per input.
    ///
    /// Exit status: 0 when every input is valid, 1 when any is invalid,
    /// 2 on a usage or I/O error.
    Validate(validate::Args),
    /// Run the whole pipeline locally (validate, derive, apply to the store);
    /// print one outcome line per input.
    ///
    /// Exit status: 0 when every input was applied, 1 when any was rejected
    /// (it is kept in the store's rejected area), 2 on a usage, I/O or
    /// store error.
    Invoke(invoke::Args),
    /// Print a resource's stored state as JSON (exit 1 if absent).
    State(state::Args),
    /// Re-process stored rejected inputs; those now valid are applied.
    Replay(replay::Args),
    /// Print the change feed as JSON lines (`--follow` waits for more).
    Changes(changes::Args),
    /// Forward the change feed to IMS_FORWARD_URL, signed with
    /// IMS_FORWARD_SECRET (Standard Webhooks), until stopped or, with
    /// `--drain`, until delivered; print a JSON summary line.
    Forward(forward::Args),
    /// Print resources newest first as JSON lines, filtered by kind,
    /// status and update time.
    List(list::Args),
    /// List every stored resource in the listing index (for a store
    /// written before it existed); print `{listed, skipped}`.
    Reindex(list::ReindexArgs),
    /// Deliver events to an endpoint as IMS does (signed HTTP callbacks,
    /// or MNS queue messages with `--mns`); print a JSON summary line.
    ///
    /// Exit status: 0 when every event was delivered, 1 when any was not,
    /// 2 on a usage or I/O error.
    Send(send::Args),
}

/// Exit status for usage and I/O errors (clap uses 2 for usage errors too).
pub const EXIT_IO: u8 = 2;

impl Cli {
    /// Runs the chosen subcommand.
    pub fn run(self) -> ExitCode {
        match self
            .command
            .unwrap_or(Command::Serve(serve::Args::default()))
        {
            Command::Serve(args) => serve::run(args),
            Command::Sign(args) => sign::run(args),
            Command::Validate(args) => validate::run(args),
            Command::Invoke(args) => invoke::run(args),
            Command::State(args) => state::run(args),
            Command::Replay(args) => replay::run(args),
            Command::Changes(args) => changes::run(args),
            Command::List(args) => list::run(args),
            Command::Reindex(args) => list::reindex(args),
            Command::Send(args) => send::run(args),
            Command::Forward(args) => forward::run(args),
        }
    }
}
