//! `ims-callback replay`: re-process the stored rejected inputs, e.g. after
//! an upgrade that learned a new event type or relaxed a rule.

use super::EXIT_IO;
use super::store_args::{StoreArgs, runtime};
use ims_callback::admission::ReceivedAt;
use ims_callback::pipeline::Pipeline;
use std::process::ExitCode;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: Args) -> ExitCode {
    runtime().block_on(async {
        let Some(store) = args.store.open().await else {
            return ExitCode::from(EXIT_IO);
        };
        match Pipeline::new(store).replay(ReceivedAt::now()).await {
            Ok(results) => {
                let still_rejected = results.iter().filter(|r| r.processed.is_none()).count();
                for r in &results {
                    println!("{}", serde_json::to_string(r).expect("serialises"));
                }
                eprintln!(
                    "replayed {} rejected input(s): {} now accepted, {still_rejected} still invalid",
                    results.len(),
                    results.len() - still_rejected
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_IO)
            }
        }
    })
}
