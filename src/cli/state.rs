//! `ims-callback state KEY`: print a resource's stored state.

use super::EXIT_IO;
use super::store_args::{StoreArgs, runtime};
use ims_callback::pipeline::read_state;
use ims_callback::state::ResourceKey;
use std::process::ExitCode;

/// Arguments of `state`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The resource: `media/ID`, `job/ID`, `task/ID` or `live-record/ID`.
    key: String,
    /// Print the stored record: the stamps (time, fingerprint) once, each
    /// field as `[value, stamp index]`.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: Args) -> ExitCode {
    let key = match ResourceKey::try_from(args.key.as_str()) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_IO);
        }
    };
    runtime().block_on(async {
        let Some(store) = args.store.open().await else {
            return ExitCode::from(EXIT_IO);
        };
        match read_state(&store, &key).await {
            Ok(Some(state)) => {
                let value = if args.raw {
                    serde_json::to_value(&state).expect("serialises")
                } else {
                    state.view()
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).expect("serialises")
                );
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!("{key}: no such resource");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("error: {key}: {e}");
                ExitCode::from(EXIT_IO)
            }
        }
    })
}
