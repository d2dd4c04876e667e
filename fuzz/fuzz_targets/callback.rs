//! `callback`: an HTTP callback as the server sees it — header bytes and a
//! body — through the same code the server runs
//! ([`Ingest::callback`], with signature auth on, over a memory store), and
//! the same body as an FC event invocation ([`trigger::messages`],
//! [`Ingest::invoke`]).
//!
//! Input layout (so that `events/*.json` become seeds by prefixing 2 bytes):
//! - byte 0, bit 0 clear: *signed* — the timestamp is now plus a skew taken
//!   from byte 1 and the signature is computed with [`auth::sign`] (bits
//!   1–3 vary its spelling: wrong key, upper case, surrounding spaces, skew
//!   beyond the window); the body is the rest from byte 2;
//! - byte 0, bit 0 set: *raw* — the rest is `TIMESTAMP \n SIGNATURE \n BODY`,
//!   bit 1 drops the timestamp header, bit 2 drops the signature header.
//!
//! Asserted:
//! - nothing panics;
//! - `Ok` implies `event/{fingerprint}` and every reported resource exist in
//!   the store, the resource's stored status is the reported one, the
//!   fingerprint is that of the body, and a redelivery is `Ok` with every
//!   resource `duplicate`;
//! - every `Err` is 400, 401, 500 or 503 with a JSON object body holding
//!   string `error` and `message`; a 400 for an invalid event names a
//!   `rejected/…` record that exists;
//! - a correctly signed callback inside the window is never a 401, a missing
//!   header always is; a valid event correctly signed is stored (`Ok`):
//!   a healthy memory store has no reason to refuse it;
//! - the invocation split never loses a raw body, and an invocation's
//!   results match its messages one for one.
//!
//! Each input gets a fresh memory store (cheap), so that a finding always
//! reproduces from its input alone and memory does not grow over a run;
//! the runtime and the auth configuration are built once.

#![no_main]

use ims_callback::configuration::DEFAULT_MAX_CLOCK_SKEW;
use ims_callback::event::Event;
use ims_callback::ingest::auth::{self, CallbackAuth};
use ims_callback::ingest::{Ingest, IngestError, MessageOutcome, trigger, unix_now};
use ims_callback::pipeline::{EVENT_PREFIX, Processed};
use ims_callback::state::{ApplyOutcome, Fingerprint, ResourceState};
use ims_callback::store::{AnyStore, Store};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

const URL: &str = "https://example.com/ims/callback";
const KEY: &str = "fuzz-auth-key";
const WINDOW: u64 = 300;
/// Generous: a deadline hit is a legal 503, but would hide other checks.
const DEADLINE: Duration = Duration::from_secs(10);

struct World {
    runtime: tokio::runtime::Runtime,
    auth: CallbackAuth,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime"),
        auth: CallbackAuth::new(URL, vec!["old-key".into(), KEY.into()], WINDOW),
    })
}

/// What the fuzzer asked for.
struct Request<'a> {
    timestamp: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    body: &'a [u8],
    /// Signed with a configured key, inside the window by a safe margin.
    signed_ok: bool,
}

fn request(data: &[u8]) -> Option<Request<'_>> {
    let (&flags, rest) = data.split_first()?;
    if flags & 1 == 0 {
        let (&skew, body) = rest.split_first().unwrap_or((&0, &[]));
        let mut skew = i64::from(skew as i8);
        if flags & 0b1000 != 0 {
            // Beyond the window, either side.
            skew = skew.signum().max(1) * (WINDOW as i64 + 1 + skew.abs());
        }
        let timestamp = (unix_now() + skew).to_string();
        let wrong_key = flags & 0b10 != 0;
        let key = if wrong_key { "other-key" } else { KEY };
        let mut signature = auth::sign(URL, &timestamp, key);
        if flags & 0b100 != 0 {
            signature = format!(" {} ", signature.to_ascii_uppercase());
        }
        Some(Request {
            timestamp: Some(timestamp.into_bytes()),
            signature: Some(signature.into_bytes()),
            body,
            signed_ok: !wrong_key && skew.unsigned_abs() <= WINDOW - 10,
        })
    } else {
        let mut parts = rest.splitn(3, |&b| b == b'\n');
        let timestamp = parts.next().unwrap_or_default().to_vec();
        let signature = parts.next().unwrap_or_default().to_vec();
        let body = parts.next().unwrap_or_default();
        Some(Request {
            timestamp: (flags & 0b10 == 0).then_some(timestamp),
            signature: (flags & 0b100 == 0).then_some(signature),
            body,
            signed_ok: false,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else { return };
    let world = world();
    world.runtime.block_on(check(world, &request));
});

async fn fresh(world: &World) -> Ingest {
    let store = AnyStore::open("memory").await.expect("a memory store");
    Ingest::new(store, Some(world.auth.clone()), DEADLINE)
}

async fn check(world: &World, request: &Request<'_>) {
    let ingest = fresh(world).await;
    let result = ingest
        .callback(
            request.timestamp.as_deref(),
            request.signature.as_deref(),
            request.body,
        )
        .await;
    // Admission refuses (and keeps) an event dated further ahead than the
    // allowed clock skew, so only an admissible valid event must be stored.
    let valid = Event::from_slice(request.body).is_ok_and(|event| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
        let ahead = event.event_time.unix_nanos() - now;
        ahead <= i128::try_from(DEFAULT_MAX_CLOCK_SKEW.as_nanos()).unwrap_or(i128::MAX)
    });
    match &result {
        Ok(processed) => {
            check_stored(&ingest, processed, request.body, true).await;
            // IMS retries: a redelivery is acknowledged and changes nothing.
            let again = ingest
                .callback(
                    request.timestamp.as_deref(),
                    request.signature.as_deref(),
                    request.body,
                )
                .await
                .unwrap_or_else(|e| panic!("redelivery failed: {e}"));
            assert_eq!(again.fingerprint, processed.fingerprint);
            assert_eq!(again.resources.len(), processed.resources.len());
            for (r, first) in again.resources.iter().zip(&processed.resources) {
                assert_eq!(r.key, first.key);
                assert_eq!(r.outcome, ApplyOutcome::Duplicate, "{}", r.key);
                assert_eq!(r.status, first.status);
            }
        }
        Err(e) => check_error(&ingest, e).await,
    }
    if request.timestamp.is_none() || request.signature.is_none() {
        assert!(
            matches!(result, Err(IngestError::Unauthorized(_))),
            "a callback without signature headers got {:?}",
            result.as_ref().map(|_| "200").map_err(IngestError::status)
        );
    }
    if request.signed_ok {
        if let Err(IngestError::Unauthorized(e)) = &result {
            panic!("a correctly signed callback was refused: {e}");
        }
        if valid {
            if let Err(e) = &result {
                panic!(
                    "a valid, signed event was not stored: {} {}",
                    e.status(),
                    e.body()
                );
            }
        }
    }

    check_invocation(world, request.body).await;
}

/// `Ok` means durably stored: the raw event and every resource it reports.
/// `own_status`: nothing else wrote these resources since (not so in a batch).
async fn check_stored(ingest: &Ingest, processed: &Processed, body: &[u8], own_status: bool) {
    let store = ingest.store();
    let value: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    assert_eq!(processed.fingerprint, Fingerprint::of_value(&value));
    let key = format!("{EVENT_PREFIX}{}", processed.fingerprint);
    let record = store.get(&key).await.expect("memory store get");
    let record = record.unwrap_or_else(|| panic!("200 without {key} in the store"));
    let record: Value = serde_json::from_slice(&record.value).expect("the event record is JSON");
    assert_eq!(record["event"], value, "the event record holds the event");
    for r in &processed.resources {
        let found = store.get(&r.key).await.expect("memory store get");
        let found = found.unwrap_or_else(|| panic!("200 without {} in the store", r.key));
        let state: ResourceState =
            serde_json::from_slice(&found.value).expect("a stored state decodes");
        if own_status {
            assert_eq!(state.status, r.status, "{}", r.key);
        }
        assert_eq!(state.key, r.key);
    }
}

async fn check_error(ingest: &Ingest, e: &IngestError) {
    let status = e.status();
    assert!(
        matches!(status, 400 | 401 | 500 | 503),
        "unexpected status {status}: {e}"
    );
    let body = e.body();
    assert!(body.is_object(), "error body {body}");
    assert!(body["error"].is_string(), "error body {body}");
    assert!(body["message"].is_string(), "error body {body}");
    if let IngestError::Invalid {
        rejection,
        stored_as,
    } = e
    {
        assert!(!rejection.problems.is_empty());
        // One input per fresh ingest: the rejected budget is never spent.
        let stored_as = stored_as.as_deref().expect("kept within the budget");
        assert!(stored_as.starts_with("rejected/"), "{stored_as}");
        let kept = ingest
            .store()
            .get(stored_as)
            .await
            .expect("memory store get");
        assert!(kept.is_some(), "400 without {stored_as} in the store");
        assert_eq!(
            body["problems"].as_array().map(Vec::len),
            Some(rejection.problems.len())
        );
    }
}

/// The same body as an FC event invocation (`POST /invoke` marked by FC).
async fn check_invocation(world: &World, body: &[u8]) {
    let messages = trigger::messages(body);
    if serde_json::from_slice::<Value>(body).is_err() {
        let messages = messages
            .as_ref()
            .expect("a non-JSON body is one raw message");
        assert_eq!(messages.len(), 1);
        assert_eq!(&*messages[0].body, body);
    }
    if let Ok(messages) = &messages {
        assert!(!messages.is_empty(), "an invocation without messages");
    }
    let ingest = fresh(world).await;
    let until = tokio::time::Instant::now() + DEADLINE;
    let invoked = ingest.invoke(body, until).await;
    match &messages {
        Ok(messages) => {
            assert!(invoked.unsplit.is_none(), "a split body is not unsplit");
            assert_eq!(invoked.results.len(), messages.len());
            let single = messages.len() == 1;
            for (result, message) in invoked.results.iter().zip(messages) {
                assert_eq!(result.message_id, message.message_id);
                check_outcome(&ingest, &result.outcome, &message.body, single).await;
            }
        }
        Err(_) => {
            // An unsplittable body is taken whole, as one input, never dropped.
            assert!(invoked.unsplit.is_some(), "the split failed, so say why");
            assert_eq!(invoked.results.len(), 1);
            check_outcome(&ingest, &invoked.results[0].outcome, body, true).await;
        }
    }
}

/// One message's fate: stored (and then checked like a callback), kept as
/// rejected for being invalid, or not stored, which a healthy memory
/// store never causes.
async fn check_outcome(ingest: &Ingest, outcome: &MessageOutcome, body: &[u8], single: bool) {
    match outcome {
        MessageOutcome::Stored(p) => check_stored(ingest, p, body, single).await,
        MessageOutcome::Rejected(e) => {
            assert!(matches!(e, IngestError::Invalid { .. }), "{e:?}");
            check_error(ingest, e).await;
        }
        MessageOutcome::NotStored(e) => {
            panic!("a healthy memory store did not store a message: {e:?}");
        }
    }
}
