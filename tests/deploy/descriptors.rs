//! `template.yaml` (ROS, FC 3.0) and `s.yaml` (Serverless Devs, fc3) agree
//! with the platform references and with the code: only documented names,
//! the settings the code reads, the port and command the binary and its
//! package use, the lifecycle hooks the server routes, and the same
//! function and trigger names in both.
//!
//! Each check returns the problems it found, so that the tests can also
//! feed it a broken copy of a descriptor and see it fail.

use crate::allowlist;
use crate::root;
use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::{Yaml, YamlLoader};

/// Settings the code reads that the descriptors deliberately do not pass.
const NOT_PASSED: &[(&str, &str)] = &[
    (
        "FC_FUNCTION_NAME",
        "set by FC in every instance; with FC_INSTANCE_ID it tells the code it runs on FC",
    ),
    ("FC_INSTANCE_ID", "set by FC in every instance"),
    (
        "AWS_LAMBDA_FUNCTION_NAME",
        "set by Lambda; these descriptors deploy to FC",
    ),
    (
        "AWS_LAMBDA_RUNTIME_API",
        "set by Lambda; these descriptors deploy to FC",
    ),
    (
        "IMS_ALLOW_UNSIGNED",
        "an opt-out of signed callbacks a deployer must add by hand, knowingly, never a default",
    ),
    (
        "FC_CUSTOM_LISTEN_PORT",
        "set by FC from the custom runtime's port (the FC_ prefix is reserved)",
    ),
    (
        "IMS_LISTEN",
        "FC reaches the server only on 0.0.0.0:$FC_CUSTOM_LISTEN_PORT",
    ),
];

/// Settings a deployment cannot do without: where state goes, and what the
/// callback signature is checked against. They have no default in either
/// file, so the deployer must supply them.
const REQUIRED: &[&str] = &["IMS_STORE", "IMS_CALLBACK_URL", "IMS_CALLBACK_AUTH_KEYS"];

/// Settings holding secrets (a Redis URL carries its password).
const SECRETS: &[&str] = &[
    "IMS_STORE",
    "IMS_CALLBACK_AUTH_KEYS",
    "IMS_QUERY_TOKEN",
    "IMS_FORWARD_SECRET",
];

/// The function and its triggers, by name, as both files must declare them.
const FUNCTION_NAME: &str = "ims-callback";
const TRIGGERS: &[(&str, &str)] = &[
    ("http", "http"),
    ("mns", "eventbridge"),
    // The forwarding tick on POST /invoke (src/ingest/trigger.rs `timer`).
    ("forward", "timer"),
];
const MNS_TRIGGER: &str = "mns";
/// IMS SetEventCallback: "CallbackQueueName … 必须以 ice-callback- 开头".
const IMS_QUEUE_PREFIX: &str = "ice-callback-";
/// Custom runtimes the ROS FC3 reference lists.
const CUSTOM_RUNTIMES: &[&str] = &["custom", "custom.debian10"];

fn load(name: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(name)).unwrap();
    parse(name, &text)
}

fn parse(name: &str, text: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: expected one YAML document");
    docs.remove(0)
}

/// `name` with `from` replaced by `to` (which must occur), parsed.
fn broken(name: &str, from: &str, to: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(name)).unwrap();
    assert!(text.contains(from), "{name} has no `{from}` to break");
    parse(name, &text.replacen(from, to, 1))
}

fn source(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The problems, or a pass.
fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The problems mention `needle`.
fn assert_caught(problems: Vec<String>, needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem about `{needle}`, got {problems:#?}"
    );
}

fn keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(Yaml::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A number, written as one or as a numeric string.
fn number(y: &Yaml) -> Option<f64> {
    y.as_f64()
        .or_else(|| y.as_i64().map(|i| i as f64))
        .or_else(|| y.as_str().and_then(|s| s.parse().ok()))
}

// ------------------------------------------------------------ the code

/// Every setting the code reads: `get("NAME")` in src/configuration.rs
/// (outside its tests) and `env::var("NAME")` in src/telemetry.rs.
fn settings_read_by_code() -> BTreeSet<String> {
    fn quoted_after(text: &str, prefix: &str) -> Vec<String> {
        text.match_indices(prefix)
            .filter_map(|(at, _)| {
                let rest = &text[at + prefix.len()..];
                let name = &rest[..rest.find('"')?];
                let ok = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                ok.then(|| name.to_owned())
            })
            .collect()
    }
    let configuration = source("src/configuration.rs");
    let configuration = configuration
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default();
    let mut names: BTreeSet<String> = quoted_after(configuration, "get(\"").into_iter().collect();
    names.extend(quoted_after(&source("src/telemetry.rs"), "env::var(\""));
    names
}

/// What the server routes `path` with (`post`, `get`, …), from
/// src/server/mod.rs.
fn route_method(path: &str) -> Option<String> {
    let text = source("src/server/mod.rs");
    let needle = format!(".route(\"{path}\",");
    let rest = text[text.find(&needle)? + needle.len()..].trim_start();
    Some(rest[..rest.find('(')?].to_owned())
}

/// The command FC must run: the package's entry, unpacked under /code
/// (FC_FUNC_CODE_PATH). scripts/build-fc.sh names the zip entry.
fn packaged_command() -> String {
    let script = source("scripts/build-fc.sh");
    let at = script
        .find("ZipInfo(\"")
        .expect("build-fc.sh writes a ZipInfo entry")
        + 9;
    let entry = &script[at..at + script[at..].find('"').unwrap()];
    format!("/code/{entry}")
}

// ------------------------------------------------------ the descriptors

/// The facts both descriptors must agree on, read from one of them.
#[derive(Debug, Default)]
struct Function {
    name: Option<String>,
    runtime: Option<String>,
    command: Vec<String>,
    port: Option<f64>,
    memory: Option<f64>,
    timeout: Option<f64>,
    concurrency: Option<f64>,
    /// Hook → (handler, timeout).
    hooks: BTreeMap<&'static str, (Option<String>, Option<f64>)>,
    /// Variable → its default (`None`: none, the deployer must supply it).
    env: BTreeMap<String, Option<String>>,
    /// Trigger name → (type, config).
    triggers: BTreeMap<String, (String, Yaml)>,
}

/// The template's resources of a type.
fn ros_resources<'a>(doc: &'a Yaml, kind: &str) -> Vec<(&'a str, &'a Yaml)> {
    doc["Resources"]
        .as_hash()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .filter_map(|(k, r)| Some((k.as_str()?, r)))
        .collect()
}

fn template_function(doc: &Yaml, problems: &mut Vec<String>) -> Function {
    let functions = ros_resources(doc, "ALIYUN::FC3::Function");
    if functions.len() != 1 {
        problems.push(format!(
            "template.yaml: expected one ALIYUN::FC3::Function, found {}",
            functions.len()
        ));
        return Function::default();
    }
    let (logical, function) = functions[0];
    let p = &function["Properties"];
    let params = &doc["Parameters"];
    let mut f = Function {
        name: p["FunctionName"].as_str().map(str::to_owned),
        runtime: p["Runtime"].as_str().map(str::to_owned),
        command: strings(&p["CustomRuntimeConfig"]["Command"]),
        port: number(&p["CustomRuntimeConfig"]["Port"]),
        memory: number(&p["MemorySize"]),
        timeout: number(&p["Timeout"]),
        concurrency: number(&p["InstanceConcurrency"]),
        ..Function::default()
    };
    for (hook, key) in [("initializer", "Initializer"), ("preStop", "PreStop")] {
        let h = &p["InstanceLifecycleConfig"][key];
        if !h.is_badvalue() {
            let handler = h["Handler"].as_str().map(str::to_owned);
            f.hooks.insert(hook, (handler, number(&h["Timeout"])));
        }
    }
    for name in keys(&p["EnvironmentVariables"]) {
        let value = &p["EnvironmentVariables"][name.as_str()];
        let Some(param) = value["Ref"].as_str() else {
            problems.push(format!(
                "template.yaml: {name} is not a Ref to a parameter, so it cannot be set per stack"
            ));
            continue;
        };
        let decl = &params[param];
        if decl.as_hash().is_none() {
            problems.push(format!(
                "template.yaml: {name}: Ref {param} is not a parameter"
            ));
            continue;
        }
        if decl["Type"].as_str() != Some("String") {
            problems.push(format!(
                "template.yaml: parameter {param}: Type must be String"
            ));
        }
        if SECRETS.contains(&name.as_str()) && decl["NoEcho"].as_bool() != Some(true) {
            problems.push(format!(
                "template.yaml: parameter {param} holds the secret {name}: set NoEcho: true"
            ));
        }
        let default = match &decl["Default"] {
            Yaml::BadValue => None,
            Yaml::String(s) => Some(s.clone()),
            Yaml::Integer(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        };
        f.env.insert(name, default);
    }
    for (_, trigger) in ros_resources(doc, "ALIYUN::FC3::Trigger") {
        let t = &trigger["Properties"];
        let name = t["TriggerName"].as_str().unwrap_or("").to_owned();
        // The trigger belongs to this function, and ROS creates it after.
        let owner = &t["FunctionName"]["Fn::GetAtt"];
        if strings(owner) != [logical, "FunctionName"] {
            problems.push(format!(
                "template.yaml: trigger {name}: FunctionName must be Fn::GetAtt [{logical}, FunctionName]"
            ));
        }
        let kind = t["TriggerType"].as_str().unwrap_or("").to_owned();
        f.triggers.insert(name, (kind, t["TriggerConfig"].clone()));
    }
    f
}

/// A Serverless Devs value with its variables resolved: `${vars.X}` to the
/// variable, `${env('N', 'D')}` to its default `D` (`None` without one).
fn s_resolve(doc: &Yaml, value: &str) -> Option<String> {
    if let Some(var) = value
        .strip_prefix("${vars.")
        .and_then(|v| v.strip_suffix('}'))
    {
        return s_resolve(doc, doc["vars"][var].as_str()?);
    }
    if let Some(call) = value
        .strip_prefix("${env(")
        .and_then(|v| v.strip_suffix(")}"))
    {
        let (_, default) = call.split_once(',')?;
        return Some(default.trim().trim_matches('\'').to_owned());
    }
    Some(value.to_owned())
}

fn s_function(doc: &Yaml, problems: &mut Vec<String>) -> Function {
    let fc3: Vec<_> = doc["resources"]
        .as_hash()
        .into_iter()
        .flatten()
        .map(|(_, r)| r)
        .filter(|r| {
            r["component"]
                .as_str()
                .is_some_and(|c| c == "fc3" || c.starts_with("fc3@"))
        })
        .collect();
    if fc3.len() != 1 {
        problems.push(format!(
            "s.yaml: expected one fc3 resource, found {}",
            fc3.len()
        ));
        return Function::default();
    }
    let p = &fc3[0]["props"];
    let mut f = Function {
        name: p["functionName"].as_str().map(str::to_owned),
        runtime: p["runtime"].as_str().map(str::to_owned),
        command: strings(&p["customRuntimeConfig"]["command"]),
        port: number(&p["customRuntimeConfig"]["port"]),
        memory: number(&p["memorySize"]),
        timeout: number(&p["timeout"]),
        concurrency: number(&p["instanceConcurrency"]),
        ..Function::default()
    };
    for hook in ["initializer", "preStop"] {
        let h = &p["instanceLifecycleConfig"][hook];
        if !h.is_badvalue() {
            let handler = h["handler"].as_str().map(str::to_owned);
            f.hooks.insert(hook, (handler, number(&h["timeout"])));
        }
    }
    for name in keys(&p["environmentVariables"]) {
        let value = p["environmentVariables"][name.as_str()]
            .as_str()
            .unwrap_or("");
        // Each value comes from the deploying shell's variable of the same
        // name, so no secret is written into the file.
        if !value.starts_with(&format!("${{env('{name}'")) {
            problems.push(format!(
                "s.yaml: {name}: {value:?} should read ${{env('{name}' …)}}"
            ));
        }
        f.env.insert(
            name.clone(),
            s_resolve(doc, value).filter(|_| value.contains(',')),
        );
    }
    for t in p["triggers"].as_vec().into_iter().flatten() {
        let name = t["triggerName"].as_str().unwrap_or("").to_owned();
        let kind = t["triggerType"].as_str().unwrap_or("").to_owned();
        f.triggers.insert(name, (kind, t["triggerConfig"].clone()));
    }
    f
}

// ---------------------------------------------------------------- checks

/// Only names from the ROS references.
fn template_names(doc: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    allowlist::check(doc, allowlist::ROS_TEMPLATE, "template.yaml", &mut problems);
    if !doc["Transform"].is_badvalue() {
        problems.push("template.yaml: `Transform` is FC 2.0's serverless transform".into());
    }
    if doc["ROSTemplateFormatVersion"].as_str() != Some("2015-09-01") {
        problems.push("template.yaml: ROSTemplateFormatVersion must be '2015-09-01'".into());
    }
    for (name, p) in doc["Parameters"].as_hash().into_iter().flatten() {
        let path = format!("template.yaml.Parameters.{}", name.as_str().unwrap_or("?"));
        allowlist::check(p, allowlist::ROS_PARAMETER, &path, &mut problems);
    }
    for (name, o) in doc["Outputs"].as_hash().into_iter().flatten() {
        let path = format!("template.yaml.Outputs.{}", name.as_str().unwrap_or("?"));
        allowlist::check(o, allowlist::ROS_OUTPUT, &path, &mut problems);
    }
    for (name, r) in doc["Resources"].as_hash().into_iter().flatten() {
        let path = format!("template.yaml.Resources.{}", name.as_str().unwrap_or("?"));
        allowlist::check(r, allowlist::ROS_RESOURCE, &path, &mut problems);
        let kind = r["Type"].as_str().unwrap_or("");
        match allowlist::ROS_TYPES.iter().find(|(t, _)| *t == kind) {
            Some((_, shape)) => {
                let props = format!("{path}.Properties");
                allowlist::check(&r["Properties"], *shape, &props, &mut problems);
            }
            None => problems.push(format!("{path}.Type: `{kind}` is not in the allow-list")),
        }
    }
    problems
}

/// Only names from the fc3 component's schema and YAML reference.
fn s_yaml_names(doc: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    allowlist::check(doc, allowlist::S_PROJECT, "s.yaml", &mut problems);
    if doc["edition"].as_str() != Some("3.0.0") {
        problems.push("s.yaml: edition must be 3.0.0 (Serverless Devs 3, fc3)".into());
    }
    for (name, r) in doc["resources"].as_hash().into_iter().flatten() {
        let path = format!("s.yaml.resources.{}", name.as_str().unwrap_or("?"));
        allowlist::check(r, allowlist::S_RESOURCE, &path, &mut problems);
        let props = format!("{path}.props");
        allowlist::check(&r["props"], allowlist::FC3_PROPS, &props, &mut problems);
    }
    problems
}

/// Every `Ref` names a parameter or a pseudo parameter, every `Fn::GetAtt`
/// a resource, every resource `Condition` a condition; every parameter is
/// used.
fn template_references(doc: &Yaml) -> Vec<String> {
    fn walk<'a>(y: &'a Yaml, refs: &mut Vec<&'a str>, getatts: &mut Vec<&'a str>) {
        match y {
            Yaml::Hash(h) => {
                for (k, v) in h {
                    match k.as_str() {
                        Some("Ref") => refs.extend(v.as_str()),
                        Some("Fn::GetAtt") => getatts.extend(v[0].as_str()),
                        _ => {}
                    }
                    walk(v, refs, getatts);
                }
            }
            Yaml::Array(a) => a.iter().for_each(|v| walk(v, refs, getatts)),
            _ => {}
        }
    }
    let mut problems = Vec::new();
    let (mut refs, mut getatts) = (Vec::new(), Vec::new());
    walk(doc, &mut refs, &mut getatts);
    let params = keys(&doc["Parameters"]);
    let resources = keys(&doc["Resources"]);
    for r in &refs {
        if !(r.starts_with("ALIYUN::") || params.contains(*r) || resources.contains(*r)) {
            problems.push(format!("template.yaml: Ref {r} names nothing declared"));
        }
    }
    for g in &getatts {
        if !resources.contains(*g) {
            problems.push(format!("template.yaml: Fn::GetAtt {g} is not a resource"));
        }
    }
    for p in &params {
        if !refs.contains(&p.as_str()) {
            problems.push(format!("template.yaml: parameter {p} is never used"));
        }
    }
    let conditions = keys(&doc["Conditions"]);
    for (name, r) in doc["Resources"].as_hash().into_iter().flatten() {
        if let Some(c) = r["Condition"].as_str()
            && !conditions.contains(c)
        {
            problems.push(format!(
                "template.yaml: {name:?}: Condition {c} is not declared"
            ));
        }
    }
    problems
}

/// Runtime, command, port, sizes: as the code and package need, and equal
/// in both files.
fn runtime_contract(t: &Function, s: &Function) -> Vec<String> {
    let mut problems = Vec::new();
    let port = f64::from(ims_callback::configuration::DEFAULT_PORT);
    let command = packaged_command();
    for (file, f) in [("template.yaml", t), ("s.yaml", s)] {
        if f.name.as_deref() != Some(FUNCTION_NAME) {
            problems.push(format!(
                "{file}: function name {:?}, not {FUNCTION_NAME}",
                f.name
            ));
        }
        if !f
            .runtime
            .as_deref()
            .is_some_and(|r| CUSTOM_RUNTIMES.contains(&r))
        {
            problems.push(format!(
                "{file}: runtime {:?} is not a custom runtime",
                f.runtime
            ));
        }
        if f.command != [command.as_str()] {
            problems.push(format!(
                "{file}: command {:?}, but the package runs [{command}] (scripts/build-fc.sh)",
                f.command
            ));
        }
        if f.port != Some(port) {
            problems.push(format!(
                "{file}: port {:?}, but the server listens on FC_CUSTOM_LISTEN_PORT, default {port}",
                f.port
            ));
        }
        // IMS waits 3 s; the function must be allowed at least that long.
        if !f.timeout.is_some_and(|s| s >= 3.0) {
            problems.push(format!(
                "{file}: timeout {:?} s is shorter than IMS's 3 s",
                f.timeout
            ));
        }
    }
    for (what, a, b) in [
        (
            "runtime",
            format!("{:?}", t.runtime),
            format!("{:?}", s.runtime),
        ),
        (
            "memory",
            format!("{:?}", t.memory),
            format!("{:?}", s.memory),
        ),
        (
            "timeout",
            format!("{:?}", t.timeout),
            format!("{:?}", s.timeout),
        ),
        (
            "concurrency",
            format!("{:?}", t.concurrency),
            format!("{:?}", s.concurrency),
        ),
    ] {
        if a != b {
            problems.push(format!("{what}: template.yaml {a} ≠ s.yaml {b}"));
        }
    }
    problems
}

/// Both hooks configured, with the same timeouts, and served by the code as
/// FC calls them: Initializer `POST /initialize`, PreStop `GET /pre-stop`.
fn lifecycle_hooks(t: &Function, s: &Function) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, method) in [("/initialize", "post"), ("/pre-stop", "get")] {
        let routed = route_method(path);
        if routed.as_deref() != Some(method) {
            problems.push(format!(
                "src/server/mod.rs routes {path} with {routed:?}; FC calls it with {method}"
            ));
        }
    }
    for (file, f) in [("template.yaml", t), ("s.yaml", s)] {
        for hook in ["initializer", "preStop"] {
            match f.hooks.get(hook) {
                None => problems.push(format!("{file}: the {hook} hook is not configured")),
                Some((handler, timeout)) => {
                    if handler.as_deref().is_none_or(str::is_empty) {
                        problems.push(format!("{file}: {hook} needs a handler (any string)"));
                    }
                    if !timeout.is_some_and(|s| s >= 1.0) {
                        problems.push(format!("{file}: {hook} needs a timeout"));
                    }
                }
            }
        }
    }
    if t.hooks != s.hooks {
        problems.push(format!(
            "hooks: template.yaml {:?} ≠ s.yaml {:?}",
            t.hooks, s.hooks
        ));
    }
    problems
}

/// Each descriptor passes exactly the settings the code reads, less
/// [`NOT_PASSED`]; required ones have no default, optional ones the code's.
fn settings(t: &Function, s: &Function) -> Vec<String> {
    use ims_callback::configuration::{DEFAULT_AUTH_WINDOW, DEFAULT_DEADLINE, DEFAULT_MAX_BODY};
    let mut problems = Vec::new();
    let read = settings_read_by_code();
    let expected: BTreeSet<String> = read
        .iter()
        .filter(|n| !NOT_PASSED.iter().any(|(m, _)| m == n))
        .cloned()
        .collect();
    let code_defaults = [
        ("IMS_AUTH_WINDOW", DEFAULT_AUTH_WINDOW.to_string()),
        ("IMS_MAX_BODY", DEFAULT_MAX_BODY.to_string()),
        ("IMS_DEADLINE_MS", DEFAULT_DEADLINE.as_millis().to_string()),
    ];
    for (file, f) in [("template.yaml", t), ("s.yaml", s)] {
        let passed: BTreeSet<String> = f.env.keys().cloned().collect();
        for missing in expected.difference(&passed) {
            problems.push(format!(
                "{file}: {missing} is read by the code but not passed"
            ));
        }
        for extra in passed.difference(&expected) {
            problems.push(format!(
                "{file}: {extra} is passed but the code does not read it"
            ));
        }
        for (name, default) in &f.env {
            let required = REQUIRED.contains(&name.as_str());
            if required && default.is_some() {
                problems.push(format!(
                    "{file}: {name} is required: it must have no default"
                ));
            }
            if !required && default.is_none() {
                problems.push(format!("{file}: {name} is optional: give it a default"));
            }
        }
        for (name, value) in &code_defaults {
            if f.env
                .get(*name)
                .is_some_and(|d| d.as_deref() != Some(value))
            {
                problems.push(format!(
                    "{file}: {name} defaults to {:?}, the code to {value}",
                    f.env[*name]
                ));
            }
        }
    }
    if t.env != s.env {
        problems.push(format!(
            "defaults: template.yaml {:?} ≠ s.yaml {:?}",
            t.env, s.env
        ));
    }
    problems
}

/// The same triggers in both files; http anonymous with POST and GET; the
/// MNS trigger as the /invoke path needs it.
fn triggers(t: &Function, s: &Function, s_doc: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    let expected: BTreeMap<String, String> = TRIGGERS
        .iter()
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .collect();
    for (file, f) in [("template.yaml", t), ("s.yaml", s)] {
        let found: BTreeMap<String, String> = f
            .triggers
            .iter()
            .map(|(n, (k, _))| (n.clone(), k.clone()))
            .collect();
        if found != expected {
            problems.push(format!("{file}: triggers {found:?}, expected {expected:?}"));
        }
        if let Some((_, http)) = f.triggers.get("http") {
            if http["authType"].as_str() != Some("anonymous") {
                problems.push(format!(
                    "{file}: the http trigger must be anonymous (IMS signs)"
                ));
            }
            let m: BTreeSet<String> = strings(&http["methods"])
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect();
            if !(m.contains("POST") && m.contains("GET")) {
                problems.push(format!(
                    "{file}: http methods {m:?}: callbacks are POSTs, healthz and the read API GETs"
                ));
            }
        }
        let Some((_, mns)) = f.triggers.get(MNS_TRIGGER) else {
            continue;
        };
        let source = &mns["eventSourceConfig"];
        let run = &mns["runOptions"];
        let pattern = format!("{{\"source\":[\"MNS-{FUNCTION_NAME}-{MNS_TRIGGER}\"]}}");
        for (what, ok) in [
            (
                "eventSourceType MNS",
                source["eventSourceType"].as_str() == Some("MNS"),
            ),
            (
                "synchronous delivery (asyncInvocationType: true, see the file's comment)",
                mns["asyncInvocationType"].as_bool() == Some(true),
            ),
            (
                "the eventRuleFilterPattern fc3 derives from the names",
                mns["eventRuleFilterPattern"].as_str() == Some(pattern.as_str()),
            ),
            (
                "CloudEvents envelopes (what /invoke unwraps)",
                mns["eventSinkConfig"]["deliveryOption"]["eventSchema"].as_str()
                    == Some("CloudEvents"),
            ),
            (
                "runOptions.mode event-streaming",
                run["mode"].as_str() == Some("event-streaming"),
            ),
            (
                "a retry strategy",
                matches!(
                    run["retryStrategy"]["PushRetryStrategy"].as_str(),
                    Some("BACKOFF_RETRY" | "EXPONENTIAL_DECAY_RETRY")
                ),
            ),
            (
                "a dead-letter queue",
                !run["deadLetterQueue"]["Arn"].is_badvalue(),
            ),
            (
                "errorsTolerance ALL (failures go to the dead-letter queue)",
                run["errorsTolerance"].as_str() == Some("ALL"),
            ),
        ] {
            if !ok {
                problems.push(format!("{file}: the {MNS_TRIGGER} trigger needs {what}"));
            }
        }
        if file == "s.yaml" {
            let queue = source["eventSourceParameters"]["sourceMNSParameters"]["QueueName"]
                .as_str()
                .and_then(|q| s_resolve(s_doc, q))
                .unwrap_or_default();
            if !queue.starts_with(IMS_QUEUE_PREFIX) {
                problems.push(format!(
                    "s.yaml: MNS queue {queue:?} must start with {IMS_QUEUE_PREFIX} (IMS)"
                ));
            }
        }
    }
    if t.triggers != s.triggers {
        // Compare what is not parameterised: the literal configuration keys.
        for (name, (_, tc)) in &t.triggers {
            if let Some((_, sc)) = s.triggers.get(name)
                && keys(tc) != keys(sc)
            {
                problems.push(format!(
                    "trigger {name}: template.yaml sets {:?}, s.yaml {:?}",
                    keys(tc),
                    keys(sc)
                ));
            }
        }
    }
    problems
}

/// The template's MNS parts: behind a parameter and condition, the queue
/// checked for IMS's prefix, and the callback URL as an output.
fn template_mns_and_outputs(doc: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    let triggers = ros_resources(doc, "ALIYUN::FC3::Trigger");
    let by_name = |n: &str| {
        triggers
            .iter()
            .find(|(_, r)| r["Properties"]["TriggerName"].as_str() == Some(n))
            .copied()
    };
    if let Some((_, http)) = by_name("http")
        && !http["Condition"].is_badvalue()
    {
        problems.push("template.yaml: the http trigger must exist in both modes".into());
    }
    match by_name(MNS_TRIGGER) {
        None => problems.push("template.yaml: no mns trigger".into()),
        Some((_, mns)) => {
            let condition = mns["Condition"].as_str().unwrap_or("");
            let rule = &doc["Conditions"][condition]["Fn::Equals"];
            let params = keys(&doc["Parameters"]);
            let on_param = rule.as_vec().is_some_and(|r| {
                r.iter()
                    .any(|v| v["Ref"].as_str().is_some_and(|p| params.contains(p)))
            });
            if condition.is_empty() || !on_param {
                problems.push(
                    "template.yaml: the mns trigger must depend on a Condition comparing a parameter"
                        .into(),
                );
            }
            let queue = &mns["Properties"]["TriggerConfig"]["eventSourceConfig"]["eventSourceParameters"]
                ["sourceMNSParameters"]["QueueName"];
            let param = &doc["Parameters"][queue["Ref"].as_str().unwrap_or("")];
            let pattern = param["AllowedPattern"].as_str().unwrap_or("");
            let default = param["Default"].as_str().unwrap_or("");
            if !pattern.starts_with(&format!("^{IMS_QUEUE_PREFIX}")) {
                problems.push(format!(
                    "template.yaml: the queue parameter's AllowedPattern {pattern:?} must require {IMS_QUEUE_PREFIX}"
                ));
            }
            if !default.starts_with(IMS_QUEUE_PREFIX) {
                problems.push(format!(
                    "template.yaml: the queue parameter's Default {default:?} must start with {IMS_QUEUE_PREFIX}"
                ));
            }
        }
    }
    let http = by_name("http").map(|(l, _)| l).unwrap_or("");
    let url_output = doc["Outputs"]
        .as_hash()
        .into_iter()
        .flatten()
        .any(|(_, o)| strings(&o["Value"]["Fn::GetAtt"]) == [http, "UrlInternet"]);
    if !url_output {
        problems.push("template.yaml: no output gives the http trigger's UrlInternet".into());
    }
    problems
}

/// All checks of both files.
fn all(template: &Yaml, s: &Yaml) -> Vec<String> {
    let mut problems = template_names(template);
    problems.extend(s_yaml_names(s));
    problems.extend(template_references(template));
    problems.extend(template_mns_and_outputs(template));
    let tf = template_function(template, &mut problems);
    let sf = s_function(s, &mut problems);
    problems.extend(runtime_contract(&tf, &sf));
    problems.extend(lifecycle_hooks(&tf, &sf));
    problems.extend(settings(&tf, &sf));
    problems.extend(triggers(&tf, &sf, s));
    problems
}

// ----------------------------------------------------------------- tests

#[test]
fn descriptors_agree_with_the_references_and_the_code() {
    assert_none(all(&load("template.yaml"), &load("s.yaml")));
}

#[test]
fn the_code_scan_finds_the_settings() {
    let read = settings_read_by_code();
    for name in [
        "IMS_STORE",
        "IMS_CALLBACK_URL",
        "IMS_DEADLINE_MS",
        "RUST_LOG",
    ] {
        assert!(
            read.contains(name),
            "{name} not found in the code: {read:?}"
        );
    }
    // The exemptions are real settings, and said so in the deployment docs.
    let docs = source("docs/deploy.md");
    for (name, why) in NOT_PASSED {
        assert!(
            read.contains(*name),
            "{name} ({why}) is no longer read by the code"
        );
        assert!(
            docs.contains(name),
            "docs/deploy.md does not say why {name} is not passed"
        );
    }
    assert_eq!(route_method("/initialize").as_deref(), Some("post"));
    assert_eq!(packaged_command(), "/code/bootstrap");
}

#[test]
fn unknown_names_are_caught() {
    let s = load("s.yaml");
    let t = load("template.yaml");
    // An FC 2.0 property on an FC 3.0 function, and a misspelt key.
    assert_caught(
        template_names(&broken(
            "template.yaml",
            "        Port: 9000",
            "        CAPort: 9000",
        )),
        "CustomRuntimeConfig.CAPort",
    );
    assert_caught(
        template_names(&broken(
            "template.yaml",
            "          PushRetryStrategy:",
            "          PushRetry:",
        )),
        "retryStrategy.PushRetry",
    );
    assert_caught(
        template_names(&broken(
            "template.yaml",
            "Type: ALIYUN::FC3::Trigger",
            "Type: ALIYUN::FC::Trigger",
        )),
        "ALIYUN::FC::Trigger",
    );
    assert_caught(
        template_names(&broken(
            "template.yaml",
            "ROSTemplateFormatVersion: '2015-09-01'",
            "ROSTemplateFormatVersion: '2015-09-01'\nTransform: 'Aliyun::Serverless-2018-04-03'",
        )),
        "Transform",
    );
    assert_caught(
        s_yaml_names(&broken("s.yaml", "        preStop:", "        preStopp:")),
        "instanceLifecycleConfig.preStopp",
    );
    assert_caught(
        s_yaml_names(&broken(
            "s.yaml",
            "                  QueueName:",
            "                  queueName:",
        )),
        "sourceMNSParameters.queueName",
    );
    assert_none(template_names(&t));
    assert_none(s_yaml_names(&s));
}

#[test]
fn a_wrong_port_command_or_hook_is_caught() {
    let s = load("s.yaml");
    let t = load("template.yaml");
    let mut ignore = Vec::new();
    let sf = s_function(&s, &mut ignore);
    let tf = template_function(&t, &mut ignore);
    assert_none(runtime_contract(&tf, &sf));
    assert_none(lifecycle_hooks(&tf, &sf));

    let bad = template_function(
        &broken("template.yaml", "Port: 9000", "Port: 9001"),
        &mut ignore,
    );
    assert_caught(runtime_contract(&bad, &sf), "port Some(9001.0)");
    let bad = s_function(
        &broken("s.yaml", "- /code/bootstrap", "- /code/main"),
        &mut ignore,
    );
    assert_caught(runtime_contract(&tf, &bad), "command [\"/code/main\"]");

    let bad = s_function(
        &broken("s.yaml", "        preStop:", "        postStop:"),
        &mut ignore,
    );
    assert_caught(
        lifecycle_hooks(&tf, &bad),
        "the preStop hook is not configured",
    );
    let bad = template_function(
        &broken("template.yaml", "Timeout: 10", "Timeout: 20"),
        &mut ignore,
    );
    assert_caught(lifecycle_hooks(&bad, &sf), "hooks:");
}

#[test]
fn a_missing_or_leaked_setting_is_caught() {
    let s = load("s.yaml");
    let t = load("template.yaml");
    let mut ignore = Vec::new();
    let sf = s_function(&s, &mut ignore);
    let tf = template_function(&t, &mut ignore);
    assert_none(settings(&tf, &sf));

    let text = std::fs::read_to_string(root().join("s.yaml")).unwrap();
    let line = "        IMS_CALLBACK_PATH: ${env('IMS_CALLBACK_PATH', '')}\n";
    assert!(text.contains(line));
    let bad = s_function(&parse("s.yaml", &text.replace(line, "")), &mut ignore);
    assert_caught(
        settings(&tf, &bad),
        "s.yaml: IMS_CALLBACK_PATH is read by the code",
    );

    let bad = s_function(
        &broken(
            "s.yaml",
            "IMS_MAX_BODY', '1048576'",
            "IMS_MAX_BODY', '2048'",
        ),
        &mut ignore,
    );
    assert_caught(settings(&tf, &bad), "IMS_MAX_BODY defaults to");

    let mut problems = Vec::new();
    template_function(
        &broken("template.yaml", "NoEcho: true", "NoEcho: false"),
        &mut problems,
    );
    assert_caught(problems, "set NoEcho: true");
}

#[test]
fn disagreeing_triggers_are_caught() {
    let s = load("s.yaml");
    let t = load("template.yaml");
    let mut ignore = Vec::new();
    let tf = template_function(&t, &mut ignore);
    let sf = s_function(&s, &mut ignore);
    assert_none(triggers(&tf, &sf, &s));
    assert_none(template_mns_and_outputs(&t));

    let bad_doc = broken("s.yaml", "triggerName: mns", "triggerName: queue");
    let bad = s_function(&bad_doc, &mut ignore);
    assert_caught(triggers(&tf, &bad, &bad_doc), "s.yaml: triggers");

    let bad_doc = broken("s.yaml", "deadLetterQueue:\n", "deadLetter:\n");
    let bad = s_function(&bad_doc, &mut ignore);
    assert_caught(triggers(&tf, &bad, &bad_doc), "a dead-letter queue");

    let bad_doc = broken("s.yaml", "'ice-callback-events'", "'ims-events'");
    let bad = s_function(&bad_doc, &mut ignore);
    assert_caught(
        triggers(&tf, &bad, &bad_doc),
        "must start with ice-callback-",
    );

    assert_caught(
        template_mns_and_outputs(&broken("template.yaml", "    Condition: MnsMode\n", "")),
        "must depend on a Condition",
    );
    assert_caught(
        template_mns_and_outputs(&broken("template.yaml", "- UrlInternet", "- UrlIntranet")),
        "UrlInternet",
    );
    assert_caught(
        template_references(&broken(
            "template.yaml",
            "Ref: DeadLetterQueueName",
            "Ref: DeadLetterQueue",
        )),
        "Ref DeadLetterQueue names nothing",
    );
}
