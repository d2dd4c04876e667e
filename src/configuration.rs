//! Settings of the server and the Lambda adapter, read from the
//! environment once at startup and validated, each error naming its
//! variable.

use crate::ingest::auth::CallbackAuth;
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

/// Default listen port: what Function Compute's custom runtime expects.
pub const DEFAULT_PORT: u16 = 9000;
/// Default `IMS_MAX_BODY`: 1 MiB; IMS events are a few KiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default per-request deadline: IMS waits 3 s for an answer.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(2500);
/// Default `IMS_AUTH_WINDOW` in seconds.
pub const DEFAULT_AUTH_WINDOW: u64 = 300;
/// Default `IMS_STORE`.
pub const DEFAULT_STORE: &str = "redb:./ims-state.redb";

/// A setting that is present but wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Everything the runtimes need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen (`IMS_LISTEN`, else `0.0.0.0:$FC_CUSTOM_LISTEN_PORT`).
    pub listen: SocketAddr,
    /// The store (`IMS_STORE`).
    pub store: String,
    /// Accept callbacks only on this path (`IMS_CALLBACK_PATH`); any POST
    /// path when unset.
    pub callback_path: Option<String>,
    /// Signature check (`IMS_CALLBACK_AUTH_KEYS`, `IMS_CALLBACK_URL`,
    /// `IMS_AUTH_WINDOW`); `None` accepts unsigned callbacks.
    pub auth: Option<CallbackAuth>,
    /// Largest accepted body (`IMS_MAX_BODY`, bytes).
    pub max_body: usize,
    /// Per-request deadline (`IMS_DEADLINE_MS`).
    pub deadline: Duration,
    /// Bearer token of the read API (`IMS_QUERY_TOKEN`); the API is off
    /// (404) when unset.
    pub query_token: Option<SecretString>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let err = |variable: &'static str, reason: String| ConfigError { variable, reason };

        let listen = match get("IMS_LISTEN") {
            Some(addr) => addr
                .parse()
                .map_err(|e| err("IMS_LISTEN", format!("`{addr}` is not HOST:PORT ({e})")))?,
            None => {
                let port = match get("FC_CUSTOM_LISTEN_PORT") {
                    Some(p) => p.parse::<u16>().map_err(|_| {
                        err(
                            "FC_CUSTOM_LISTEN_PORT",
                            format!("`{p}` is not a port number"),
                        )
                    })?,
                    None => DEFAULT_PORT,
                };
                // FC requires 0.0.0.0: binding 127.0.0.1 is unreachable there.
                SocketAddr::from(([0, 0, 0, 0], port))
            }
        };

        let callback_path = match get("IMS_CALLBACK_PATH") {
            Some(p) if !p.starts_with('/') => {
                return Err(err(
                    "IMS_CALLBACK_PATH",
                    format!("`{p}` must start with `/`"),
                ));
            }
            p => p,
        };

        let window = match get("IMS_AUTH_WINDOW") {
            Some(w) => w.parse::<u64>().ok().filter(|w| *w > 0).ok_or_else(|| {
                err(
                    "IMS_AUTH_WINDOW",
                    format!("`{w}` is not a positive number of seconds"),
                )
            })?,
            None => DEFAULT_AUTH_WINDOW,
        };
        let keys: Vec<SecretString> = get("IMS_CALLBACK_AUTH_KEYS")
            .map(|k| {
                k.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(SecretString::from)
                    .collect()
            })
            .unwrap_or_default();
        let auth = match (keys.is_empty(), get("IMS_CALLBACK_URL")) {
            (true, _) => None,
            (false, None) => {
                return Err(err(
                    "IMS_CALLBACK_URL",
                    "required when IMS_CALLBACK_AUTH_KEYS is set: the signature covers the \
                     CallbackURL exactly as configured in IMS"
                        .into(),
                ));
            }
            (false, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(err(
                    "IMS_CALLBACK_URL",
                    format!("`{url}` is not an http(s) URL"),
                ));
            }
            (false, Some(url)) => Some(CallbackAuth::new(url, keys, window)),
        };

        let max_body = match get("IMS_MAX_BODY") {
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|m| (1..=32 << 20).contains(m))
                .ok_or_else(|| {
                    err(
                        "IMS_MAX_BODY",
                        format!("`{m}` is not a byte count from 1 to 33554432"),
                    )
                })?,
            None => DEFAULT_MAX_BODY,
        };
        let deadline = match get("IMS_DEADLINE_MS") {
            Some(d) => d
                .parse::<u64>()
                .ok()
                .filter(|d| (1..=60_000).contains(d))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    err(
                        "IMS_DEADLINE_MS",
                        format!("`{d}` is not a number of milliseconds from 1 to 60000"),
                    )
                })?,
            None => DEFAULT_DEADLINE,
        };

        Ok(Settings {
            listen,
            store: get("IMS_STORE").unwrap_or_else(|| DEFAULT_STORE.to_owned()),
            callback_path,
            auth,
            max_body,
            deadline,
            query_token: get("IMS_QUERY_TOKEN").map(SecretString::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_fit_function_compute() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.store, DEFAULT_STORE);
        assert!(s.auth.is_none() && s.query_token.is_none() && s.callback_path.is_none());
        assert_eq!(
            (s.max_body, s.deadline),
            (DEFAULT_MAX_BODY, DEFAULT_DEADLINE)
        );
        let s = settings(&[("FC_CUSTOM_LISTEN_PORT", "8080")]).unwrap();
        assert_eq!(s.listen.port(), 8080);
        let s = settings(&[
            ("FC_CUSTOM_LISTEN_PORT", "8080"),
            ("IMS_LISTEN", "127.0.0.1:1"),
        ])
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:1".parse().unwrap());
    }

    #[test]
    fn every_error_names_its_variable() {
        for (vars, variable) in [
            (vec![("IMS_LISTEN", "nope")], "IMS_LISTEN"),
            (
                vec![("FC_CUSTOM_LISTEN_PORT", "99999")],
                "FC_CUSTOM_LISTEN_PORT",
            ),
            (vec![("IMS_CALLBACK_PATH", "cb")], "IMS_CALLBACK_PATH"),
            (vec![("IMS_AUTH_WINDOW", "0")], "IMS_AUTH_WINDOW"),
            (vec![("IMS_CALLBACK_AUTH_KEYS", "k1")], "IMS_CALLBACK_URL"),
            (
                vec![
                    ("IMS_CALLBACK_AUTH_KEYS", "k1"),
                    ("IMS_CALLBACK_URL", "ftp://x"),
                ],
                "IMS_CALLBACK_URL",
            ),
            (vec![("IMS_MAX_BODY", "lots")], "IMS_MAX_BODY"),
            (vec![("IMS_DEADLINE_MS", "0")], "IMS_DEADLINE_MS"),
        ] {
            let e = settings(&vars).unwrap_err();
            assert_eq!(e.variable, variable, "{vars:?}");
            assert!(e.to_string().contains(variable));
        }
    }

    #[test]
    fn auth_keys_are_split_and_never_shown() {
        let s = settings(&[
            ("IMS_CALLBACK_AUTH_KEYS", " old-secret , new-secret ,"),
            ("IMS_CALLBACK_URL", "https://example.com/cb"),
            ("IMS_QUERY_TOKEN", "query-secret"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        for secret in ["old-secret", "new-secret", "query-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(s.auth.is_some());
    }
}
