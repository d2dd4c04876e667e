//! The deployment descriptors agree with the code's contract.
//!
//! `template.yaml` (ROS, `Aliyun::Serverless-2018-04-03`) and `s.yaml`
//! (Serverless Devs, `fc3`) must both run the binary as an FC custom runtime
//! on port 9000, expose it through an anonymous HTTP trigger that allows
//! POST, and set only environment variables the binary reads. The sample
//! trigger envelopes in `events/triggers/` must carry valid IMS events, and
//! `scripts/check-glibc.sh` must judge glibc versions as documented.

use ims_callback::event::Event;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

/// Every environment variable the binary reads (README, docs/deploy.md).
const DOCUMENTED_ENV: &[&str] = &[
    "IMS_STORE",
    "IMS_CALLBACK_URL",
    "IMS_CALLBACK_AUTH_KEYS",
    "IMS_AUTH_WINDOW",
    "IMS_QUERY_TOKEN",
    "IMS_MAX_BODY",
    "IMS_DEADLINE_MS",
    "IMS_CALLBACK_PATH",
    "IMS_LISTEN",
    "RUST_LOG",
];

/// Variables a deployment cannot do without: where state goes, and what the
/// callback signature is checked against.
const REQUIRED_ENV: &[&str] = &["IMS_STORE", "IMS_CALLBACK_URL", "IMS_CALLBACK_AUTH_KEYS"];

/// Variables holding secrets (ROS parameters must be `NoEcho`).
const SECRET_ENV: &[&str] = &["IMS_STORE", "IMS_CALLBACK_AUTH_KEYS", "IMS_QUERY_TOKEN"];

/// `FC_CUSTOM_LISTEN_PORT`'s default, which the server listens on.
const PORT: i64 = 9000;
const RUNTIME: &str = "custom.debian10";
const BOOTSTRAP: &str = "/code/bootstrap";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn load_yaml(name: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(name)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: expected one YAML document");
    docs.remove(0)
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {y:?}"))
}

fn keys(y: &Yaml, what: &str) -> BTreeSet<String> {
    y.as_hash()
        .unwrap_or_else(|| panic!("{what}: expected a mapping, found {y:?}"))
        .keys()
        .map(|k| str_of(k, what).to_owned())
        .collect()
}

fn methods(y: &Yaml, what: &str) -> BTreeSet<String> {
    y.as_vec()
        .unwrap_or_else(|| panic!("{what}: expected a list of methods, found {y:?}"))
        .iter()
        .map(|m| str_of(m, what).to_ascii_uppercase())
        .collect()
}

/// Checks a descriptor's environment variable names against the contract.
fn check_env_names(names: &BTreeSet<String>, what: &str) {
    for name in names {
        assert!(
            DOCUMENTED_ENV.contains(&name.as_str()),
            "{what}: environment variable {name} is not one the binary reads ({DOCUMENTED_ENV:?})"
        );
    }
    for name in REQUIRED_ENV {
        assert!(names.contains(*name), "{what}: {name} is not set");
    }
}

// ---------------------------------------------------------------- template

/// The one `Aliyun::Serverless::Function` of the template (nested, as the
/// transform wants, under its `Aliyun::Serverless::Service`).
fn template_function(doc: &Yaml) -> &Yaml {
    let resources = doc["Resources"]
        .as_hash()
        .expect("template.yaml: Resources is not a mapping");
    let mut functions = Vec::new();
    for resource in resources.values() {
        if resource["Type"].as_str() != Some("Aliyun::Serverless::Service") {
            continue;
        }
        for child in resource.as_hash().unwrap().values() {
            if child["Type"].as_str() == Some("Aliyun::Serverless::Function") {
                functions.push(child);
            }
        }
    }
    assert_eq!(
        functions.len(),
        1,
        "template.yaml: expected exactly one Aliyun::Serverless::Function"
    );
    functions[0]
}

#[test]
fn template_uses_the_serverless_transform() {
    let doc = load_yaml("template.yaml");
    assert_eq!(doc["ROSTemplateFormatVersion"].as_str(), Some("2015-09-01"));
    assert_eq!(
        doc["Transform"].as_str(),
        Some("Aliyun::Serverless-2018-04-03")
    );
}

#[test]
fn template_runs_the_custom_runtime_on_port_9000() {
    let doc = load_yaml("template.yaml");
    let props = &template_function(&doc)["Properties"];
    assert_eq!(props["Runtime"].as_str(), Some(RUNTIME));
    assert_eq!(props["CAPort"].as_i64(), Some(PORT), "CAPort");
    assert!(props["Handler"].as_str().is_some(), "Handler is required");
    assert!(!props["CodeUri"].is_badvalue(), "CodeUri is required");
    // IMS waits 3 s; the function must be allowed at least that long.
    let timeout = props["Timeout"].as_i64().expect("Timeout");
    assert!(
        timeout >= 3,
        "Timeout {timeout} s is shorter than IMS's 3 s"
    );
}

#[test]
fn template_environment_is_the_documented_one() {
    let doc = load_yaml("template.yaml");
    let env = &template_function(&doc)["Properties"]["EnvironmentVariables"];
    let names = keys(env, "template.yaml EnvironmentVariables");
    check_env_names(&names, "template.yaml");

    // Every `Ref` names a declared parameter; secrets are NoEcho.
    let params = &doc["Parameters"];
    for name in &names {
        let value = &env[name.as_str()];
        let Some(param) = value["Ref"].as_str() else {
            assert!(
                value.as_str().is_some(),
                "{name}: neither a Ref nor a string"
            );
            assert!(
                !SECRET_ENV.contains(&name.as_str()),
                "{name} is a secret: make it a NoEcho parameter, not a literal"
            );
            continue;
        };
        let decl = &params[param];
        assert!(
            decl.as_hash().is_some(),
            "{name}: Ref {param} is not a declared parameter"
        );
        assert_eq!(decl["Type"].as_str(), Some("String"), "{param}: Type");
        if SECRET_ENV.contains(&name.as_str()) {
            assert_eq!(
                decl["NoEcho"].as_bool(),
                Some(true),
                "parameter {param} ({name}) holds a secret: set NoEcho: true"
            );
        }
    }
    // A `CodeUri` Ref, if any, is declared too.
    let code = &template_function(&doc)["Properties"]["CodeUri"];
    if let Some(param) = code["Ref"].as_str() {
        assert!(params[param].as_hash().is_some(), "CodeUri: Ref {param}");
    }
}

#[test]
fn template_has_an_anonymous_http_trigger_allowing_post() {
    let doc = load_yaml("template.yaml");
    let events = template_function(&doc)["Events"]
        .as_hash()
        .expect("template.yaml: the function has no Events");
    let http: Vec<_> = events
        .values()
        .filter(|e| e["Type"].as_str() == Some("HTTP"))
        .collect();
    assert_eq!(http.len(), 1, "template.yaml: expected one HTTP trigger");
    let props = &http[0]["Properties"];
    assert!(
        str_of(&props["AuthType"], "AuthType").eq_ignore_ascii_case("anonymous"),
        "the HTTP trigger must be anonymous: IMS cannot sign FC requests"
    );
    let m = methods(&props["Methods"], "template.yaml Methods");
    assert!(m.contains("POST"), "callbacks are POSTs: {m:?}");
    assert!(
        m.contains("GET"),
        "healthz and the read API are GETs: {m:?}"
    );
}

// ------------------------------------------------------------------ s.yaml

/// The one `fc3` resource's `props`.
fn s_props(doc: &Yaml) -> &Yaml {
    let resources = doc["resources"]
        .as_hash()
        .expect("s.yaml: resources is not a mapping");
    let fc3: Vec<_> = resources
        .values()
        .filter(|r| {
            r["component"]
                .as_str()
                .is_some_and(|c| c == "fc3" || c.starts_with("fc3@"))
        })
        .collect();
    assert_eq!(fc3.len(), 1, "s.yaml: expected exactly one fc3 resource");
    &fc3[0]["props"]
}

#[test]
fn s_yaml_is_serverless_devs_3() {
    let doc = load_yaml("s.yaml");
    assert_eq!(doc["edition"].as_str(), Some("3.0.0"));
    s_props(&doc);
}

#[test]
fn s_yaml_runs_the_bootstrap_on_port_9000() {
    let doc = load_yaml("s.yaml");
    let props = s_props(&doc);
    assert_eq!(props["runtime"].as_str(), Some(RUNTIME));
    let crc = &props["customRuntimeConfig"];
    assert_eq!(crc["port"].as_i64(), Some(PORT), "customRuntimeConfig.port");
    let command: Vec<_> = crc["command"]
        .as_vec()
        .expect("customRuntimeConfig.command is a list")
        .iter()
        .map(|c| str_of(c, "command"))
        .collect();
    assert_eq!(command, [BOOTSTRAP], "customRuntimeConfig.command");
    // `code` is what scripts/build-fc.sh makes.
    let code = str_of(&props["code"], "code");
    assert!(
        code == "./target/fc/code" || code == "./target/fc/code.zip",
        "code: {code} is not an output of scripts/build-fc.sh"
    );
    let script = std::fs::read_to_string(root().join("scripts/build-fc.sh")).unwrap();
    assert!(script.contains("code/bootstrap") && script.contains("code.zip"));
    let timeout = props["timeout"].as_i64().expect("timeout");
    assert!(
        timeout >= 3,
        "timeout {timeout} s is shorter than IMS's 3 s"
    );
}

#[test]
fn s_yaml_environment_is_the_documented_one() {
    let doc = load_yaml("s.yaml");
    let env = &s_props(&doc)["environmentVariables"];
    let names = keys(env, "s.yaml environmentVariables");
    check_env_names(&names, "s.yaml");
    // Each value comes from the deploying shell's variable of the same name,
    // so no secret is written into the file.
    for name in &names {
        let value = str_of(&env[name.as_str()], name);
        let expected = format!("${{env('{name}'");
        assert!(
            value.starts_with(&expected),
            "{name}: {value:?} should read ${{env('{name}' ...)}}"
        );
    }
}

#[test]
fn s_yaml_has_an_anonymous_http_trigger_allowing_post() {
    let doc = load_yaml("s.yaml");
    let triggers = s_props(&doc)["triggers"]
        .as_vec()
        .expect("s.yaml: no triggers");
    let http: Vec<_> = triggers
        .iter()
        .filter(|t| t["triggerType"].as_str() == Some("http"))
        .collect();
    assert_eq!(http.len(), 1, "s.yaml: expected one http trigger");
    let config = &http[0]["triggerConfig"];
    assert_eq!(config["authType"].as_str(), Some("anonymous"));
    let m = methods(&config["methods"], "s.yaml methods");
    assert!(m.contains("POST"), "callbacks are POSTs: {m:?}");
    assert!(
        m.contains("GET"),
        "healthz and the read API are GETs: {m:?}"
    );
}

#[test]
fn both_descriptors_set_the_same_variables() {
    let t = load_yaml("template.yaml");
    let s = load_yaml("s.yaml");
    let from_template = keys(
        &template_function(&t)["Properties"]["EnvironmentVariables"],
        "template.yaml",
    );
    let from_s = keys(&s_props(&s)["environmentVariables"], "s.yaml");
    assert_eq!(from_template, from_s);
}

// ---------------------------------------------------------- trigger events

fn trigger_samples() -> Vec<PathBuf> {
    let dir = root().join("events/triggers");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    files
}

/// Standard base64 (with padding), enough to read the samples.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes = text.trim().as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = n << 6 | u32::from(value(c)?);
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

/// The IMS event a message body carries: JSON text, or base64 of it when
/// the trigger's "base64 decode" option is off.
fn decode_message_body(body: &str) -> Vec<u8> {
    if serde_json::from_str::<Value>(body).is_ok() {
        return body.as_bytes().to_vec();
    }
    base64_decode(body).unwrap_or_else(|| panic!("messageBody is neither JSON nor base64"))
}

/// The envelopes of a sample: one object, or an array of them (batch mode).
fn envelopes(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap();
    let value: Value =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match value {
        Value::Array(items) => {
            assert!(!items.is_empty(), "{}: empty batch", path.display());
            items
        }
        one => vec![one],
    }
}

#[test]
fn trigger_samples_carry_valid_ims_events() {
    let mut base64_seen = false;
    let mut batch_seen = false;
    for path in trigger_samples() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let envs = envelopes(&path);
        batch_seen |= envs.len() > 1;
        for env in &envs {
            for field in ["id", "source", "specversion", "type", "subject", "time"] {
                assert!(env[field].is_string(), "{name}: CloudEvents field {field}");
            }
            assert_eq!(env["specversion"], "1.0", "{name}");
            assert_eq!(env["type"], "mns:Queue:SendMessage", "{name}");
            for field in ["requestId", "messageId", "messageBody"] {
                assert!(env["data"][field].is_string(), "{name}: data.{field}");
            }
            let body = env["data"]["messageBody"].as_str().unwrap();
            let decoded = decode_message_body(body);
            base64_seen |= decoded != body.as_bytes();

            Event::from_slice(&decoded)
                .unwrap_or_else(|r| panic!("{name}: messageBody is not a valid IMS event: {r}"));
            // It is one of the corpus samples, unchanged.
            let carried: Value = serde_json::from_slice(&decoded).unwrap();
            let event_type = carried["EventType"].as_str().unwrap();
            let original = root().join(format!("events/{event_type}.json"));
            let original: Value =
                serde_json::from_slice(&std::fs::read(&original).unwrap()).unwrap();
            assert_eq!(
                carried, original,
                "{name}: differs from events/{event_type}.json"
            );
        }
    }
    assert!(base64_seen, "no sample has a base64 messageBody");
    assert!(batch_seen, "no sample is a batch");
}

#[test]
fn trigger_samples_are_unwrapped_by_the_invoke_path() {
    for path in trigger_samples() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let messages = ims_callback::ingest::trigger::messages(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let envs = envelopes(&path);
        assert_eq!(messages.len(), envs.len(), "{name}: message count");
        for (message, env) in messages.iter().zip(&envs) {
            assert_eq!(
                message.message_id.as_deref(),
                env["data"]["messageId"].as_str(),
                "{name}: the envelope was not recognised as an MNS message"
            );
            Event::from_slice(&message.body)
                .unwrap_or_else(|r| panic!("{name}: unwrapped body is not valid: {r}"));
        }
    }
}

#[test]
fn base64_decoder_reads_padding() {
    assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
    assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
    assert_eq!(base64_decode("TQ==").unwrap(), b"M");
    assert!(base64_decode("TQ=").is_none());
    assert!(base64_decode("T!==").is_none());
}

// ------------------------------------------------------------------ scripts

fn check_glibc(binary: &Path, max: &str) -> i32 {
    let out = Command::new("bash")
        .arg(root().join("scripts/check-glibc.sh"))
        .arg(binary)
        .arg(max)
        .output()
        .expect("bash");
    out.status.code().expect("check-glibc.sh was killed")
}

#[test]
fn check_glibc_compares_symbol_versions() {
    // This test binary links the build machine's glibc: it needs at least
    // GLIBC_2.2.5 (x86_64's base version) and no version from the future.
    let me = std::env::current_exe().unwrap();
    assert_eq!(check_glibc(&me, "999.0"), 0, "a far-future limit passes");
    assert_eq!(check_glibc(&me, "2.0"), 1, "a limit below any glibc fails");
    assert_eq!(check_glibc(Path::new("/nonexistent/binary"), "2.28"), 2);
    assert_eq!(check_glibc(&me, "not-a-version"), 2);
}

#[test]
fn build_script_is_valid_bash() {
    for script in ["scripts/build-fc.sh", "scripts/check-glibc.sh"] {
        let status = Command::new("bash")
            .arg("-n")
            .arg(root().join(script))
            .status()
            .unwrap();
        assert!(status.success(), "{script} has a syntax error");
    }
}
