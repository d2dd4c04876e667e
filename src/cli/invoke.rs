//! `ims-callback invoke FILE|DIR|-…`: run the whole pipeline locally
//! (validate → derive → apply to the store) and print one outcome line per
//! input.

use super::store_args::{StoreArgs, runtime};
use super::{EXIT_IO, input};
use ims_callback::admission::ReceivedAt;
use ims_callback::pipeline::{Pipeline, PipelineError};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `invoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Event files, directories of `*.json` files, or `-` for stdin.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: Args) -> ExitCode {
    runtime().block_on(async {
        let Some(store) = args.store.open().await else {
            return ExitCode::from(EXIT_IO);
        };
        let pipeline = Pipeline::new(store);
        let mut out = std::io::stdout().lock();
        let (mut any_rejected, mut any_error) = (false, false);
        for input in input::read_all(&args.inputs) {
            let input = match input {
                Ok(input) => input,
                Err(message) => {
                    eprintln!("error: {message}");
                    any_error = true;
                    continue;
                }
            };
            let line = match pipeline.process(&input.bytes, ReceivedAt::now()).await {
                Ok(processed) => {
                    let mut line = serde_json::to_value(&processed).expect("serialises");
                    line["file"] = json!(input.name);
                    line
                }
                Err(PipelineError::Rejected {
                    rejection,
                    stored_as,
                }) => {
                    any_rejected = true;
                    json!({
                        "file": input.name,
                        "rejected": true,
                        "event_type": rejection.event_type,
                        "stored_as": stored_as,
                        "problems": rejection.problems,
                    })
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", input.name);
                    any_error = true;
                    continue;
                }
            };
            if writeln!(out, "{line}").is_err() {
                return ExitCode::from(EXIT_IO);
            }
        }
        if any_error {
            ExitCode::from(EXIT_IO)
        } else if any_rejected {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}
