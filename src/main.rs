//! The `ims-callback` binary.
fn main() {}
