//! `ims-callback sign`: the headers IMS would send, for curl tests.

use ims_callback::ingest::auth::sign;
use ims_callback::ingest::unix_now;
use std::process::ExitCode;

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CallbackURL exactly as configured in IMS.
    #[arg(long, env = "IMS_CALLBACK_URL")]
    url: String,
    /// The AuthKey.
    #[arg(long, hide_env_values = true)]
    key: String,
    /// Unix seconds (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
}

pub fn run(args: Args) -> ExitCode {
    let timestamp = args.timestamp.unwrap_or_else(unix_now).to_string();
    println!("X-ICE-TIMESTAMP: {timestamp}");
    println!(
        "X-ICE-SIGNATURE: {}",
        sign(&args.url, &timestamp, &args.key)
    );
    ExitCode::SUCCESS
}
