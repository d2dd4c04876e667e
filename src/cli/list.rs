//! `ims-callback list`: resources newest first as JSON lines, with the
//! filters of `GET /v1/resources`; and `ims-callback reindex`, which lists
//! the resources of a store written before the listing index existed.

use super::EXIT_IO;
use super::store_args::{StoreArgs, runtime};
use ims_callback::listing::{self, Filter, ListError};
use std::io::Write;
use std::process::ExitCode;

/// Arguments of `list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this kind: media, job, task or live-record.
    #[arg(long)]
    kind: Option<String>,
    /// Only this status, exactly as the state shows it (e.g. `Fail`).
    #[arg(long)]
    status: Option<String>,
    /// Only resources updated strictly after this UTC time
    /// (e.g. 2026-01-01T00:00:00Z).
    #[arg(long)]
    updated_after: Option<String>,
    /// Print at most this many resources (default: every match).
    #[arg(long)]
    limit: Option<usize>,
    /// Start after this cursor (a `next` printed before).
    #[arg(long)]
    cursor: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// Prints the matching resources, one JSON line each; when `--limit`
/// stopped it before the end, the cursor to go on from goes to stderr as
/// `next: CURSOR`.
pub fn run(args: Args) -> ExitCode {
    let parsed = (|| {
        let filter = Filter {
            kind: args.kind.as_deref().map(listing::parse_kind).transpose()?,
            status: args.status.clone(),
            updated_after: args
                .updated_after
                .as_deref()
                .map(listing::parse_time)
                .transpose()?,
        };
        let cursor = args
            .cursor
            .as_deref()
            .map(listing::parse_cursor)
            .transpose()?;
        Ok::<_, ListError>((filter, cursor))
    })();
    let (filter, mut after) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return fail(&e),
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
            let size = left.min(listing::MAX_LIMIT);
            let page = match listing::page(&store, &filter, after.as_ref(), size).await {
                Ok(page) => page,
                Err(e) => return fail(&e),
            };
            left -= page.resources.len();
            for resource in &page.resources {
                let line = serde_json::to_string(resource).expect("a resource serialises");
                // A closed pipe (`| head`) ends the command quietly.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return ExitCode::SUCCESS;
                }
            }
            let Some(next) = page.next else {
                return ExitCode::SUCCESS;
            };
            match listing::parse_cursor(&next) {
                Ok(next) => after = Some(next),
                Err(e) => return fail(&e),
            }
        }
        if let Some(after) = &after {
            eprintln!("next: {after}");
        }
        ExitCode::SUCCESS
    })
}

/// Arguments of `reindex`.
#[derive(Debug, clap::Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    store: StoreArgs,
}

/// Lists every stored resource from its state; prints `{listed, skipped}`.
pub fn reindex(args: ReindexArgs) -> ExitCode {
    runtime().block_on(async {
        let Some(store) = args.store.open().await else {
            return ExitCode::from(EXIT_IO);
        };
        match listing::reindex(&store).await {
            Ok(done) => {
                println!("{}", serde_json::to_string(&done).expect("serialises"));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        }
    })
}

fn fail(e: &ListError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_IO)
}
