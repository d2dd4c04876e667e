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
/// Default `IMS_MAX_CLOCK_SKEW`: how far an `EventTime` may be ahead of
/// the receiver's clock.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(600);
/// Default `IMS_REJECTED_BUDGET`: bytes of rejected inputs kept per hour.
pub const DEFAULT_REJECTED_BUDGET: u64 = 64 << 20;

/// Where the process runs, from the platform's own environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Neither of the below (`cargo run`, a container, a test).
    Local,
    /// Alibaba Cloud Function Compute: `FC_FUNCTION_NAME` and
    /// `FC_INSTANCE_ID` are set (system variables of every FC instance,
    /// alibabacloud.com/help/en/functioncompute/fc/environment-variables).
    /// Not `FC_CUSTOM_LISTEN_PORT` alone, which local scripts set too.
    FunctionCompute,
    /// AWS Lambda: `AWS_LAMBDA_FUNCTION_NAME` or `AWS_LAMBDA_RUNTIME_API`.
    Lambda,
}

impl Platform {
    /// The platform's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Local => "a local run",
            Platform::FunctionCompute => "Function Compute",
            Platform::Lambda => "AWS Lambda",
        }
    }

    fn detect(get: impl Fn(&str) -> Option<String>) -> Platform {
        if get("FC_FUNCTION_NAME").is_some() && get("FC_INSTANCE_ID").is_some() {
            Platform::FunctionCompute
        } else if get("AWS_LAMBDA_FUNCTION_NAME").is_some()
            || get("AWS_LAMBDA_RUNTIME_API").is_some()
        {
            Platform::Lambda
        } else {
            Platform::Local
        }
    }
}

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
    /// Where the process runs.
    pub platform: Platform,
    /// How far an `EventTime` may be ahead of the clock at ingest
    /// (`IMS_MAX_CLOCK_SKEW`, e.g. `10m`).
    pub max_clock_skew: Duration,
    /// Bytes of rejected inputs kept per hour (`IMS_REJECTED_BUDGET`,
    /// e.g. `64MiB`).
    pub rejected_budget: u64,
    /// Whether state changes are appended to the change log
    /// (`IMS_CHANGE_FEED`, `on` by default; `off` skips the log, so
    /// `/v1/changes` and forwarding see nothing).
    pub change_feed: bool,
    /// Forwarding of the feed (`IMS_FORWARD_URL`, `IMS_FORWARD_SECRET`,
    /// `IMS_FORWARD_TIMEOUT`); `None` when not configured.
    pub forward: Option<crate::forward::ForwardSettings>,
}

impl Settings {
    /// The admission limits (clock skew, rejected budget).
    pub fn limits(&self) -> crate::admission::Limits {
        crate::admission::Limits {
            max_clock_skew: self.max_clock_skew,
            rejected_budget: self.rejected_budget,
        }
    }

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
        let platform = Platform::detect(get);
        let auth = match (keys.is_empty(), get("IMS_CALLBACK_URL")) {
            (true, _) if platform != Platform::Local => {
                match get("IMS_ALLOW_UNSIGNED").as_deref() {
                    Some("true") => None,
                    Some("false") | None => {
                        return Err(err(
                            "IMS_CALLBACK_AUTH_KEYS",
                            format!(
                                "required on {}: without it anyone who can reach the \
                                 function can write any state. Set it (with IMS_CALLBACK_URL) to \
                                 the AuthKey configured in IMS, or set IMS_ALLOW_UNSIGNED=true \
                                 to accept unsigned callbacks knowingly",
                                platform.name()
                            ),
                        ));
                    }
                    Some(other) => {
                        return Err(err(
                            "IMS_ALLOW_UNSIGNED",
                            format!("`{other}` is neither `true` nor `false`"),
                        ));
                    }
                }
            }
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

        let max_clock_skew = match get("IMS_MAX_CLOCK_SKEW") {
            Some(d) => parse_duration(&d).ok_or_else(|| {
                err(
                    "IMS_MAX_CLOCK_SKEW",
                    format!("`{d}` is not a duration such as `600s`, `10m` or `1h`"),
                )
            })?,
            None => DEFAULT_MAX_CLOCK_SKEW,
        };
        let rejected_budget = match get("IMS_REJECTED_BUDGET") {
            Some(b) => parse_size(&b).ok_or_else(|| {
                err(
                    "IMS_REJECTED_BUDGET",
                    format!("`{b}` is not a size such as `64MiB`, `512KiB` or `0`"),
                )
            })?,
            None => DEFAULT_REJECTED_BUDGET,
        };

        let change_feed = match get("IMS_CHANGE_FEED").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(err(
                    "IMS_CHANGE_FEED",
                    format!("`{other}` is neither `on` nor `off`"),
                ));
            }
        };
        let forward = forward_settings(&get)?;
        if forward.is_some() && !change_feed {
            return Err(err(
                "IMS_CHANGE_FEED",
                "is `off`, but IMS_FORWARD_URL is set: forwarding delivers the change feed, \
                 so it needs the feed on"
                    .into(),
            ));
        }

        Ok(Settings {
            listen,
            store: get("IMS_STORE").unwrap_or_else(|| DEFAULT_STORE.to_owned()),
            callback_path,
            auth,
            max_body,
            deadline,
            query_token: get("IMS_QUERY_TOKEN").map(SecretString::from),
            platform,
            max_clock_skew,
            rejected_budget,
            change_feed,
            forward,
        })
    }
}

/// The forwarding settings alone, from the process environment (for
/// `ims-callback forward`); `None` when `IMS_FORWARD_URL` and
/// `IMS_FORWARD_SECRET` are unset.
pub fn forward_from_env() -> Result<Option<crate::forward::ForwardSettings>, ConfigError> {
    forward_settings(&|name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// `IMS_FORWARD_URL` with `IMS_FORWARD_SECRET` (both or neither), and
/// `IMS_FORWARD_TIMEOUT`.
fn forward_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<crate::forward::ForwardSettings>, ConfigError> {
    use crate::forward::{ForwardSettings, WebhookSecret};
    let err = |variable: &'static str, reason: String| ConfigError { variable, reason };
    let (url, secret) = match (get("IMS_FORWARD_URL"), get("IMS_FORWARD_SECRET")) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(err(
                "IMS_FORWARD_SECRET",
                "required when IMS_FORWARD_URL is set: every forwarded change is signed \
                 (`whsec_` and the base64 of 24 to 64 random bytes)"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "IMS_FORWARD_URL",
                "required when IMS_FORWARD_SECRET is set: where to POST the changes".into(),
            ));
        }
        (Some(url), Some(secret)) => (url, secret),
    };
    let uri: hyper::Uri = url
        .parse()
        .ok()
        .filter(|u: &hyper::Uri| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
        })
        .ok_or_else(|| {
            err(
                "IMS_FORWARD_URL",
                format!("`{url}` is not an http(s) URL with a host"),
            )
        })?;
    let secret =
        WebhookSecret::parse(&secret).map_err(|reason| err("IMS_FORWARD_SECRET", reason))?;
    let mut settings = ForwardSettings::new(uri, secret);
    if let Some(t) = get("IMS_FORWARD_TIMEOUT") {
        settings.timeout = parse_duration(&t)
            .filter(|d| (1..=30).contains(&d.as_secs()))
            .ok_or_else(|| {
                err(
                    "IMS_FORWARD_TIMEOUT",
                    format!("`{t}` is not a duration from `1s` to `30s`"),
                )
            })?;
    }
    Ok(Some(settings))
}

/// `600`, `600s`, `10m`, `1h`: whole seconds, minutes or hours.
fn parse_duration(text: &str) -> Option<Duration> {
    let (digits, unit) = split_unit(text);
    let n: u64 = digits.parse().ok()?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// `1048576`, `512KiB`, `64MiB`, `1GiB` (binary units; `B` optional).
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = split_unit(text);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

fn split_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
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
            (vec![("IMS_MAX_CLOCK_SKEW", "soon")], "IMS_MAX_CLOCK_SKEW"),
            (vec![("IMS_MAX_CLOCK_SKEW", "10d")], "IMS_MAX_CLOCK_SKEW"),
            (vec![("IMS_REJECTED_BUDGET", "64MB")], "IMS_REJECTED_BUDGET"),
            (vec![("IMS_REJECTED_BUDGET", "-1")], "IMS_REJECTED_BUDGET"),
            (vec![("IMS_CHANGE_FEED", "no")], "IMS_CHANGE_FEED"),
            (
                vec![("IMS_FORWARD_URL", "https://a/")],
                "IMS_FORWARD_SECRET",
            ),
            (vec![("IMS_FORWARD_SECRET", SECRET)], "IMS_FORWARD_URL"),
            (
                vec![
                    ("IMS_FORWARD_URL", "ftp://a/"),
                    ("IMS_FORWARD_SECRET", SECRET),
                ],
                "IMS_FORWARD_URL",
            ),
            (
                vec![
                    ("IMS_FORWARD_URL", "https://a/"),
                    ("IMS_FORWARD_SECRET", "hunter2"),
                ],
                "IMS_FORWARD_SECRET",
            ),
            (
                vec![
                    ("IMS_FORWARD_URL", "https://a/"),
                    ("IMS_FORWARD_SECRET", SECRET),
                    ("IMS_FORWARD_TIMEOUT", "5m"),
                ],
                "IMS_FORWARD_TIMEOUT",
            ),
            (
                vec![
                    ("IMS_FORWARD_URL", "https://a/"),
                    ("IMS_FORWARD_SECRET", SECRET),
                    ("IMS_CHANGE_FEED", "off"),
                ],
                "IMS_CHANGE_FEED",
            ),
            (
                vec![
                    ("FC_FUNCTION_NAME", "f"),
                    ("FC_INSTANCE_ID", "i"),
                    ("IMS_ALLOW_UNSIGNED", "yes"),
                ],
                "IMS_ALLOW_UNSIGNED",
            ),
        ] {
            let e = settings(&vars).unwrap_err();
            assert_eq!(e.variable, variable, "{vars:?}");
            assert!(e.to_string().contains(variable));
        }
    }

    /// A valid `IMS_FORWARD_SECRET` (24 bytes).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn forwarding_is_on_with_a_url_and_a_secret() {
        let s = settings(&[]).unwrap();
        assert!(s.change_feed && s.forward.is_none());
        let s = settings(&[
            ("IMS_FORWARD_URL", "https://app.example.com/hooks/ims"),
            ("IMS_FORWARD_SECRET", SECRET),
            ("IMS_FORWARD_TIMEOUT", "20s"),
        ])
        .unwrap();
        let forward = s.forward.unwrap();
        assert_eq!(forward.url, "https://app.example.com/hooks/ims");
        assert_eq!(forward.timeout, Duration::from_secs(20));
        assert!(!format!("{forward:?}").contains("MfKQ9r8"));
        assert!(!settings(&[("IMS_CHANGE_FEED", "off")]).unwrap().change_feed);
    }

    #[test]
    fn limits_read_durations_and_sizes() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.max_clock_skew, s.rejected_budget),
            (DEFAULT_MAX_CLOCK_SKEW, DEFAULT_REJECTED_BUDGET)
        );
        for (text, seconds) in [("90", 90), ("90s", 90), ("10m", 600), ("2h", 7200)] {
            let s = settings(&[("IMS_MAX_CLOCK_SKEW", text)]).unwrap();
            assert_eq!(s.max_clock_skew, Duration::from_secs(seconds), "{text}");
        }
        for (text, bytes) in [
            ("0", 0),
            ("100B", 100),
            ("512KiB", 512 << 10),
            ("64MiB", 64 << 20),
            ("1GiB", 1 << 30),
        ] {
            let s = settings(&[("IMS_REJECTED_BUDGET", text)]).unwrap();
            assert_eq!(s.rejected_budget, bytes, "{text}");
        }
    }

    #[test]
    fn unsigned_is_refused_on_a_platform_unless_allowed() {
        let fc = [("FC_FUNCTION_NAME", "f"), ("FC_INSTANCE_ID", "i")];
        let lambda = [("AWS_LAMBDA_FUNCTION_NAME", "f")];
        for platform in [&fc[..], &lambda[..]] {
            let e = settings(platform).unwrap_err();
            assert_eq!(e.variable, "IMS_CALLBACK_AUTH_KEYS");
            assert!(e.to_string().contains("IMS_ALLOW_UNSIGNED=true"), "{e}");
            let mut vars = platform.to_vec();
            vars.push(("IMS_ALLOW_UNSIGNED", "false"));
            assert!(settings(&vars).is_err());
            vars.pop();
            vars.push(("IMS_ALLOW_UNSIGNED", "true"));
            assert!(settings(&vars).unwrap().auth.is_none());
            vars.pop();
            vars.push(("IMS_CALLBACK_AUTH_KEYS", "k"));
            vars.push(("IMS_CALLBACK_URL", "https://example.com/cb"));
            assert!(settings(&vars).unwrap().auth.is_some());
        }
        assert_eq!(settings(&fc).map(|s| s.platform).ok(), None);
        // Locally unsigned stays allowed; FC_CUSTOM_LISTEN_PORT alone or one
        // of the two FC variables is not Function Compute.
        for local in [
            &[][..],
            &[("FC_CUSTOM_LISTEN_PORT", "9000")][..],
            &[("FC_FUNCTION_NAME", "f")][..],
        ] {
            let s = settings(local).unwrap();
            assert_eq!(s.platform, Platform::Local, "{local:?}");
            assert!(s.auth.is_none());
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
