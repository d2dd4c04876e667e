//! `ims-callback changes`: the change feed as JSON lines, one change a
//! line in log order; `--follow` keeps waiting for more, like `tail -f`.

use super::EXIT_IO;
use super::store_args::{StoreArgs, runtime};
use ims_callback::changes::{self, ChangesError};
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `changes`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start after this cursor (a `next` printed before); without it, at
    /// the oldest change kept.
    #[arg(long)]
    after: Option<String>,
    /// Print at most this many changes (default: every change there is).
    #[arg(long)]
    limit: Option<usize>,
    /// Keep waiting for new changes instead of stopping at the end.
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Prints the feed; the cursor to resume from goes to stderr as
/// `next: CURSOR` at the end.
pub fn run(args: Args) -> ExitCode {
    let mut after = match args.after.as_deref().map(changes::parse_cursor).transpose() {
        Ok(after) => after,
        Err(e) => {
            eprintln!("error: --after: {e}");
            return ExitCode::from(EXIT_IO);
        }
    };
    if args.limit == Some(0) {
        eprintln!("error: --limit must be at least 1");
        return ExitCode::from(EXIT_IO);
    }
    runtime().block_on(async {
        let Some(store) = args.store.open().await else {
            return ExitCode::from(EXIT_IO);
        };
        let mut left = args.limit.unwrap_or(usize::MAX);
        let mut out = std::io::stdout().lock();
        while left > 0 {
            let wait = if args.follow {
                changes::MAX_WAIT
            } else {
                std::time::Duration::ZERO
            };
            let page =
                match changes::read(&store, after.as_ref(), left.min(changes::MAX_LIMIT), wait)
                    .await
                {
                    Ok(page) => page,
                    Err(e) => return fail(&e),
                };
            let done = page.changes.is_empty() && !args.follow;
            for change in &page.changes {
                let line = serde_json::to_string(change).expect("a change serialises");
                // A closed pipe (`| head`) ends the command quietly.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            left -= page.changes.len();
            match changes::parse_cursor(&page.next) {
                Ok(next) => after = Some(next),
                Err(e) => return fail(&e),
            }
            if done {
                break;
            }
        }
        if let Some(after) = &after {
            eprintln!("next: {after}");
        }
        ExitCode::SUCCESS
    })
}

fn fail(e: &ChangesError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_IO)
}
