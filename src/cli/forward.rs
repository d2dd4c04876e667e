//! `ims-callback forward`: the forwarder of the change feed as a
//! standalone process (the loop `serve` runs in the background), until
//! SIGINT or SIGTERM; `--drain` stops once the log is delivered, as a
//! Function Compute timer tick does.

use super::EXIT_IO;
use super::store_args::{StoreArgs, runtime};
use ims_callback::forward::Forwarder;
use std::process::ExitCode;

/// Arguments of `forward`; `IMS_FORWARD_URL`, `IMS_FORWARD_SECRET` and
/// `IMS_FORWARD_TIMEOUT` come from the environment.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Deliver what is pending, print the summary and exit.
    #[arg(long)]
    drain: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Forwards; prints a JSON summary line at the end.
pub fn run(args: Args) -> ExitCode {
    let settings = match ims_callback::configuration::forward_from_env() {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            eprintln!("error: set IMS_FORWARD_URL and IMS_FORWARD_SECRET to forward");
            return ExitCode::from(EXIT_IO);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_IO);
        }
    };
    let _log = ims_callback::telemetry::init(ims_callback::telemetry::LogWriter::Direct);
    runtime().block_on(async {
        let Some(store) = args.store.open().await else {
            return ExitCode::from(EXIT_IO);
        };
        let forwarder = Forwarder::new(store, settings);
        let summary = if args.drain {
            // No invocation deadline here: until the log is delivered or a
            // change has to wait.
            forwarder
                .drain(tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365))
                .await
        } else {
            forwarder.run_until(stopped()).await
        };
        println!(
            "{}",
            serde_json::to_string(&summary).expect("a summary serialises")
        );
        ExitCode::SUCCESS
    })
}

async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
