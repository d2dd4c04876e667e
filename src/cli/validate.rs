//! `ims-callback validate FILE|DIR|-…`: classify and validate only.

use super::{EXIT_IO, input};
use ims_callback::validate::{Report, validate};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Event files, directories of `*.json` files, or `-` for stdin.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    inputs: Vec<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut any_invalid, mut any_error) = (false, false);
    for input in input::read_all(&args.inputs) {
        let input = match input {
            Ok(input) => input,
            Err(message) => {
                eprintln!("error: {message}");
                any_error = true;
                continue;
            }
        };
        let result = validate(&input.bytes);
        let report = Report::new(&input.name, &result);
        if let Some(entry) = result.as_ref().ok().and_then(|e| e.entry())
            && let Some(note) = entry.deprecated
        {
            eprintln!("warning: {}: {}: {note}", input.name, entry.name);
        }
        any_invalid |= !report.valid;
        let line = serde_json::to_string(&report).expect("a report always serialises");
        if writeln!(out, "{line}").is_err() {
            // stdout closed (e.g. piped into `head`): nothing more to say.
            return ExitCode::from(EXIT_IO);
        }
    }
    if any_error {
        ExitCode::from(EXIT_IO)
    } else if any_invalid {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
