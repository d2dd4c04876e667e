//! Reading CLI inputs: files, directories (their `*.json` files, sorted,
//! not recursive) and `-` for stdin.

use std::io::Read;
use std::path::{Path, PathBuf};

/// One input to process.
#[derive(Debug)]
pub struct Input {
    /// How the input is named in output (`-` for stdin).
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Expands `args` and reads each input. Unreadable inputs are returned as
/// errors (with their name) so the caller can report them and go on.
pub fn read_all(args: &[PathBuf]) -> Vec<Result<Input, String>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            let mut bytes = Vec::new();
            out.push(match std::io::stdin().read_to_end(&mut bytes) {
                Ok(_) => Ok(Input {
                    name: "-".into(),
                    bytes,
                }),
                Err(e) => Err(format!("cannot read stdin: {e}")),
            });
        } else if arg.is_dir() {
            match json_files(arg) {
                Ok(files) => out.extend(files.iter().map(|f| read_file(f))),
                Err(e) => out.push(Err(format!("cannot list {}: {e}", arg.display()))),
            }
        } else {
            out.push(read_file(arg));
        }
    }
    out
}

fn read_file(path: &Path) -> Result<Input, String> {
    std::fs::read(path)
        .map(|bytes| Input {
            name: path.display().to_string(),
            bytes,
        })
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn json_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
