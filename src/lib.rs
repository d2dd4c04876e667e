//! ims-callback: the callback receiver for Alibaba Cloud IMS events.
//!
//! The crate is a pure core (event model, validation) with thin edges
//! (CLI, and later the HTTP server, the Lambda adapter and the store
//! backends) so that every entry point runs the same code.

pub mod event;
pub mod store;
