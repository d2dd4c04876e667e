//! The `--store` option shared by the commands that use the store.

use ims_callback::store::{AnyStore, redact_url};

/// The local default: an embedded redb file in the working directory.
pub const DEFAULT_STORE: &str = "redb:./ims-state.redb";

/// Where state is kept.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// `memory`, `redb:PATH`, `redis://…`, `rediss://…` or
    /// `redis+cluster://HOST:PORT,…` (see the README).
    #[arg(long, env = "IMS_STORE", default_value = DEFAULT_STORE, hide_env_values = true)]
    store: String,
}

impl StoreArgs {
    /// Opens the store, or explains on stderr why it cannot be opened.
    pub async fn open(&self) -> Option<AnyStore> {
        match AnyStore::open(&self.store).await {
            Ok(store) => Some(store),
            Err(e) => {
                eprintln!("error: cannot open store {}: {e}", redact_url(&self.store));
                None
            }
        }
    }
}

/// A current-thread runtime for one CLI command.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}
