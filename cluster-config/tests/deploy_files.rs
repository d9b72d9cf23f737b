//! The deployment files under `cluster-config/deploy/` against the code they deploy: the
//! Dockerfile builds as CI does and runs unprivileged; compose.yaml and the Kubernetes
//! manifests parse, have the expected kinds and fields, run real binaries with real flags,
//! and their node and gateway configs pass the real parsers with ports, paths and addresses
//! that agree with the manifests; the systemd units carry their hardening.
//!
//! Each check collects problems instead of panicking at the first, so that the tests below
//! can also show that a broken copy of a file is caught.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cluster_config::{GatewayConfig, NodeConfig};
use serde::Deserialize;
use serde_yaml_ng::Value;

// ---------------------------------------------------------------------------------------
// Files and the workspace's real binaries and flags
// ---------------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cluster-config lives in the workspace")
        .to_path_buf()
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_deploy(rel: &str) -> String {
    read(&deploy_dir().join(rel))
}

/// Every binary the workspace builds: `[[bin]]` entries, `src/main.rs` (named after its
/// package) and `src/bin/*.rs`.
fn workspace_binaries() -> BTreeSet<String> {
    let root = repo_root();
    let workspace: toml::Table = toml::from_str(&read(&root.join("Cargo.toml"))).unwrap();
    let members = workspace["workspace"]["members"].as_array().unwrap();
    let mut bins = BTreeSet::new();
    for member in members {
        let dir = root.join(member.as_str().unwrap());
        let manifest: toml::Table = toml::from_str(&read(&dir.join("Cargo.toml"))).unwrap();
        let mut explicit_paths = BTreeSet::new();
        for bin in manifest
            .get("bin")
            .and_then(|b| b.as_array())
            .into_iter()
            .flatten()
        {
            bins.insert(bin["name"].as_str().unwrap().to_string());
            if let Some(path) = bin.get("path").and_then(|p| p.as_str()) {
                explicit_paths.insert(path.to_string());
            }
        }
        if dir.join("src/main.rs").exists() && !explicit_paths.contains("src/main.rs") {
            bins.insert(manifest["package"]["name"].as_str().unwrap().to_string());
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("src/bin")) {
            for entry in entries {
                let path = entry.unwrap().path();
                let rel = format!("src/bin/{}", path.file_name().unwrap().to_str().unwrap());
                if path.extension().is_some_and(|e| e == "rs") && !explicit_paths.contains(&rel) {
                    bins.insert(path.file_stem().unwrap().to_str().unwrap().to_string());
                }
            }
        }
    }
    bins
}

/// The `--long` flags a clap derive source declares: every field under an `#[arg(...)]`
/// attribute that says `long` (renamed by `long = "..."` where given), plus `--help` and
/// `--version`.
fn long_flags(source: &str) -> BTreeSet<String> {
    let mut flags: BTreeSet<String> = ["--help", "--version"].map(String::from).into();
    let mut attribute = String::new();
    let mut in_attribute = false;
    let mut pending: Option<Option<String>> = None;
    for line in source.lines() {
        let line = line.trim();
        if line.starts_with("#[arg(") {
            in_attribute = true;
            attribute.clear();
        }
        if in_attribute {
            attribute.push_str(line);
            attribute.push(' ');
            if line.ends_with(")]") {
                in_attribute = false;
                let words: Vec<&str> = attribute
                    .trim()
                    .trim_start_matches("#[arg(")
                    .trim_end_matches(")]")
                    .split(',')
                    .map(str::trim)
                    .collect();
                let is_long = |w: &str| {
                    w == "long"
                        || w.strip_prefix("long")
                            .is_some_and(|r| r.trim().starts_with('='))
                };
                if let Some(long) = words.iter().find(|w| is_long(w)) {
                    let renamed = long
                        .strip_prefix("long")
                        .map(str::trim)
                        .and_then(|rest| rest.strip_prefix('='))
                        .map(|name| name.trim().trim_matches('"').to_string());
                    pending = Some(renamed);
                }
            }
            continue;
        }
        if line.starts_with("#[") || line.starts_with("//") || line.is_empty() {
            continue;
        }
        if let Some(renamed) = pending.take() {
            let field = line.trim_start_matches("pub ").split(':').next().unwrap();
            let name = renamed.unwrap_or_else(|| field.trim().replace('_', "-"));
            flags.insert(format!("--{name}"));
        }
    }
    flags
}

/// The variants of `enum NAME { ... }` in `source`, in kebab case (clap's subcommand names).
fn subcommands(source: &str, enum_name: &str) -> BTreeSet<String> {
    let start = source
        .find(&format!("enum {enum_name} {{"))
        .unwrap_or_else(|| panic!("no enum {enum_name}"));
    let body = &source[start..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .skip(1)
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .filter_map(|l| {
            let word: String = l
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            word.chars().next()?.is_uppercase().then(|| {
                let mut kebab = String::new();
                for (i, c) in word.chars().enumerate() {
                    if c.is_uppercase() && i > 0 {
                        kebab.push('-');
                    }
                    kebab.push(c.to_ascii_lowercase());
                }
                kebab
            })
        })
        .collect()
}

/// What the deployment files may invoke: each binary's real flags, and invctl's `certs`
/// subcommands.
struct Cli {
    binaries: BTreeSet<String>,
    flags: BTreeMap<&'static str, BTreeSet<String>>,
    certs_subcommands: BTreeSet<String>,
}

impl Cli {
    fn load() -> Cli {
        let root = repo_root();
        let invctl = read(&root.join("node/src/bin/invctl.rs"));
        let invctl_flags: BTreeSet<String> = long_flags(&invctl)
            .into_iter()
            .chain(long_flags(&read(&root.join("node/src/cli/certs.rs"))))
            .chain(long_flags(&read(&root.join("node/src/cli/output.rs"))))
            .collect();
        Cli {
            binaries: workspace_binaries(),
            flags: BTreeMap::from([
                (
                    "flashstock-node",
                    long_flags(&read(&root.join("node/src/main.rs"))),
                ),
                (
                    "flashstock-gateway",
                    long_flags(&read(&root.join("gateway/src/main.rs"))),
                ),
                ("invctl", invctl_flags),
            ]),
            certs_subcommands: subcommands(&invctl, "CertsCmd"),
        }
    }

    /// Problems with one command line (`words[0]` the program, with or without a path).
    fn check(&self, words: &[String], problems: &mut Vec<String>) {
        let Some(program) = words.first() else {
            problems.push("an empty command".into());
            return;
        };
        let name = program.rsplit('/').next().unwrap();
        if !self.binaries.contains(name) {
            problems.push(format!(
                "{name} is not a binary of the workspace ({words:?})"
            ));
            return;
        }
        if let Some(flags) = self.flags.get(name) {
            for word in words.iter().filter(|w| w.starts_with("--")) {
                let flag = word.split('=').next().unwrap();
                if !flags.contains(flag) {
                    problems.push(format!("{name} has no flag {flag} ({words:?})"));
                }
            }
        }
        if name == "invctl" && words.get(1).map(String::as_str) == Some("certs") {
            match words.get(2) {
                Some(sub) if self.certs_subcommands.contains(sub) => {}
                other => problems.push(format!("invctl certs has no subcommand {other:?}")),
            }
        }
    }
}

/// A shell-ish split: whitespace separates words, double quotes group and are dropped.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// The port of `host:port`.
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("{addr:?} has no port"))
}

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map(|(host, _)| host).unwrap()
}

/// Every TLS path of a config lies in `dir`.
fn tls_paths_under(
    what: &str,
    tls: &cluster_config::TlsSettings,
    dir: &str,
    problems: &mut Vec<String>,
) {
    match tls.tls_files() {
        None => problems.push(format!("{what}: no [tls] files (insecure)")),
        Some(files) => {
            for path in [files.ca, files.cert, files.key] {
                if !path.starts_with(dir) {
                    problems.push(format!("{what}: {} is not under {dir}", path.display()));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// YAML helpers
// ---------------------------------------------------------------------------------------

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("bad YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// `v` at a dotted path (`spec.template.spec.containers.0`), if there.
fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, key| match key.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(key),
        })
}

fn get_str<'a>(v: &'a Value, path: &str) -> &'a str {
    get(v, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {path}"))
}

fn seq<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn strings(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("not a string: {other:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------

struct Stage {
    from: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

/// Instructions (keyword, arguments) grouped by stage; comments dropped, continuations joined.
fn dockerfile_stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.split_whitespace().collect::<Vec<_>>().join(" ");
        if keyword == "FROM" {
            let words: Vec<&str> = args.split(' ').collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push(Stage {
                from: words[0].to_string(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, args));
        }
    }
    stages
}

fn check_dockerfile(text: &str, cli: &Cli) -> Vec<String> {
    let mut problems = Vec::new();
    let stages = dockerfile_stages(text);
    let [builder, runtime] = stages.as_slice() else {
        return vec![format!(
            "expected a builder and a runtime stage, found {}",
            stages.len()
        )];
    };
    if !builder.from.starts_with("rust:") {
        problems.push(format!("the builder is {}, not a Rust image", builder.from));
    }
    let Some(builder_name) = &builder.name else {
        return vec!["the builder stage has no name (FROM ... AS builder)".into()];
    };
    let builds: Vec<&String> = builder
        .instructions
        .iter()
        .filter(|(k, a)| k == "RUN" && a.contains("cargo "))
        .map(|(_, a)| a)
        .collect();
    match builds.as_slice() {
        [build] if build.starts_with("cargo build --release") && build.contains("--bins") => {}
        other => problems.push(format!(
            "the builder must run `cargo build --release ... --bins` as CI and README do, runs {other:?}"
        )),
    }
    if !(runtime.from.starts_with("debian:") && runtime.from.contains("slim")) {
        problems.push(format!(
            "the runtime is {}, not a slim Debian",
            runtime.from
        ));
    }
    let users: Vec<&String> = runtime
        .instructions
        .iter()
        .filter(|(k, _)| k == "USER")
        .map(|(_, a)| a)
        .collect();
    match users.last() {
        None => problems.push("the runtime stage has no USER: it would run as root".into()),
        Some(user) => {
            let name = user.split(':').next().unwrap();
            if name == "root" || name.parse::<u32>() == Ok(0) {
                problems.push(format!("the runtime stage runs as {user}"));
            }
        }
    }
    let mut copied = BTreeSet::new();
    for (_, args) in runtime.instructions.iter().filter(|(k, _)| k == "COPY") {
        let words: Vec<&str> = args.split(' ').collect();
        if words[0] != format!("--from={builder_name}") {
            continue;
        }
        for source in &words[1..words.len() - 1] {
            match source.strip_prefix("/src/target/release/") {
                Some(bin) if cli.binaries.contains(bin) => {
                    copied.insert(bin.to_string());
                }
                _ => problems.push(format!("copies {source}, not a release binary")),
            }
        }
    }
    for needed in ["flashstock-node", "flashstock-gateway", "invctl"] {
        if !copied.contains(needed) {
            problems.push(format!("the runtime stage lacks the {needed} binary"));
        }
    }
    if !runtime
        .instructions
        .iter()
        .any(|(k, a)| k == "VOLUME" && a.contains("/var/lib/flashstock"))
    {
        problems.push("no VOLUME for /var/lib/flashstock".into());
    }
    problems
}

#[test]
fn dockerfile_builds_as_ci_does_and_runs_unprivileged() {
    let cli = Cli::load();
    let text = read_deploy("Dockerfile");
    let problems = check_dockerfile(&text, &cli);
    assert!(problems.is_empty(), "{problems:#?}");

    let as_root = format!("{text}\nUSER root\n");
    assert!(!check_dockerfile(&as_root, &cli).is_empty());
    let no_user: String = text
        .lines()
        .filter(|l| !l.starts_with("USER"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!check_dockerfile(&no_user, &cli).is_empty());
    let debug_build = text.replace("cargo build --release", "cargo build");
    assert!(!check_dockerfile(&debug_build, &cli).is_empty());
    let wrong_binary = text.replace("target/release/invctl", "target/release/invctld");
    assert!(!check_dockerfile(&wrong_binary, &cli).is_empty());
}

// ---------------------------------------------------------------------------------------
// compose.yaml
// ---------------------------------------------------------------------------------------

const COMPOSE_NODES: [&str; 3] = ["node1", "node2", "node3"];

/// `source:target[:ro]` volume entries of a compose service.
fn compose_mounts(service: &Value) -> Vec<(String, String)> {
    strings(seq(service, "volumes"))
        .iter()
        .map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            (parts[0].to_string(), parts[1].to_string())
        })
        .collect()
}

/// The container path where `source` is mounted.
fn mount_target(service: &Value, source: &str) -> Option<String> {
    compose_mounts(service)
        .into_iter()
        .find(|(s, _)| s == source)
        .map(|(_, t)| t)
}

/// The host file mounted at `target`, relative to deploy/.
fn mounted_file(service: &Value, target: &str) -> Option<String> {
    compose_mounts(service)
        .into_iter()
        .find(|(s, t)| t == target && s.starts_with("./"))
        .map(|(s, _)| s.trim_start_matches("./").to_string())
}

fn check_compose(compose: &Value, cli: &Cli) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(services) = get(compose, "services").and_then(Value::as_mapping) else {
        return vec!["no services".into()];
    };
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for wanted in COMPOSE_NODES.iter().chain(&["gateway", "certs"]) {
        if !names.contains(wanted) {
            problems.push(format!("no service {wanted}"));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let service = |name: &str| &compose["services"][name];

    // One image, built from the Dockerfile checked above.
    let images: BTreeSet<&str> = names.iter().map(|n| get_str(service(n), "image")).collect();
    if images.len() != 1 {
        problems.push(format!("services run different images: {images:?}"));
    }
    for name in &names {
        let build = get(service(name), "build");
        let context = build
            .and_then(|b| get(b, "context"))
            .and_then(Value::as_str);
        let dockerfile = build
            .and_then(|b| get(b, "dockerfile"))
            .and_then(Value::as_str);
        match (context, dockerfile) {
            (Some(context), Some(dockerfile)) => {
                let context = deploy_dir().join(context);
                if context.canonicalize().ok() != repo_root().canonicalize().ok() {
                    problems.push(format!("{name}: build context is not the repository root"));
                }
                if context.join(dockerfile).canonicalize().ok()
                    != deploy_dir().join("Dockerfile").canonicalize().ok()
                {
                    problems.push(format!("{name}: builds from {dockerfile}"));
                }
            }
            _ => problems.push(format!("{name}: no build context and dockerfile")),
        }
    }

    // The certs job: its script, the volumes it fills.
    let certs = service("certs");
    let entrypoint = strings(seq(certs, "entrypoint"));
    let script_path = entrypoint.last().cloned().unwrap_or_default();
    let Some(script_file) = mounted_file(certs, &script_path) else {
        problems.push(format!("certs: its script {script_path} is not mounted"));
        return problems;
    };
    let script = read_deploy(&script_file);
    let certs_dir = mount_target(certs, "certs");
    let script_out = script
        .lines()
        .find_map(|l| l.strip_prefix("out=${FLASHSTOCK_CERTS_OUT:-"))
        .map(|rest| rest.trim_end_matches('}').to_string());
    if certs_dir.is_none() || certs_dir != script_out {
        problems.push(format!(
            "certs: the certs volume is mounted at {certs_dir:?}, the script writes to {script_out:?}"
        ));
    }
    let certs_dir = certs_dir.unwrap_or_default();
    for line in script
        .lines()
        .filter(|l| l.contains("invctl ") && !l.trim().starts_with('#'))
    {
        let words = shell_words(&line[line.find("invctl ").unwrap()..]);
        cli.check(&words, &mut problems);
    }
    let node_ids: Vec<String> = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("for id in "))
        .map(|l| {
            l.trim_end_matches("; do")
                .split(' ')
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let addr_template = script
        .lines()
        .find(|l| l.contains("invctl certs node"))
        .and_then(|l| {
            let words = shell_words(l);
            let i = words.iter().position(|w| w == "--addr")?;
            words.get(i + 1).cloned()
        })
        .unwrap_or_default();
    let cert_addrs: BTreeSet<String> = node_ids
        .iter()
        .map(|id| addr_template.replace("$id", id))
        .collect();

    // The nodes: each runs its own config, which the real parser accepts and which agrees
    // with the service around it.
    let mut advertised = BTreeMap::new();
    let mut members = Vec::new();
    for name in COMPOSE_NODES {
        let node = service(name);
        let command = strings(seq(node, "command"));
        cli.check(&command, &mut problems);
        let [program, flag, config_path] = command.as_slice() else {
            problems.push(format!("{name}: command is {command:?}"));
            continue;
        };
        if program != "flashstock-node" || flag != "--config" {
            problems.push(format!("{name}: command is {command:?}"));
        }
        let Some(file) = mounted_file(node, config_path) else {
            problems.push(format!("{name}: {config_path} is not mounted from deploy/"));
            continue;
        };
        let config = match NodeConfig::from_toml_str(&read_deploy(&file)) {
            Ok(config) => config,
            Err(e) => {
                problems.push(format!("{file}: {e}"));
                continue;
            }
        };
        let id: u64 = name.trim_start_matches("node").parse().unwrap();
        if config.id != id {
            problems.push(format!("{file}: id {} in service {name}", config.id));
        }
        if host_of(&config.advertise) != name {
            problems.push(format!("{file}: advertises {}", config.advertise));
        }
        let port = config.listen.port();
        if port_of(&config.advertise) != port {
            problems.push(format!(
                "{file}: listens on {port}, advertises {}",
                config.advertise
            ));
        }
        if strings(seq(node, "expose")) != [port.to_string()] {
            problems.push(format!(
                "{name}: exposes {:?}, listens on {port}",
                seq(node, "expose")
            ));
        }
        let health = strings(seq(node, "healthcheck.test")).join(" ");
        match config.metrics_addr {
            Some(metrics)
                if health.contains(&format!("/dev/tcp/127.0.0.1/{}", metrics.port()))
                    && health.contains("GET /readyz") => {}
            _ => problems.push(format!(
                "{name}: the healthcheck does not ask /readyz on its metrics_addr"
            )),
        }
        let data = mount_target(node, &format!("{name}-data"));
        if !data.is_some_and(|d| config.data_dir.starts_with(d)) {
            problems.push(format!("{name}: data_dir is not on the {name}-data volume"));
        }
        tls_paths_under(&file, &config.tls, &certs_dir, &mut problems);
        if mount_target(node, "certs").as_deref() != Some(certs_dir.as_str()) {
            problems.push(format!("{name}: certs volume not at {certs_dir}"));
        }
        if get_str(node, "depends_on.certs.condition") != "service_completed_successfully" {
            problems.push(format!("{name}: does not wait for the certs job"));
        }
        if !cert_addrs.contains(&config.advertise) {
            problems.push(format!(
                "{name}: make-certs.sh issues for {cert_addrs:?}, not {}",
                config.advertise
            ));
        }
        advertised.insert(config.id, config.advertise.clone());
        members.push(config.initial_members);
    }
    for m in &members {
        if *m != advertised {
            problems.push(format!("initial_members {m:?} differ from {advertised:?}"));
        }
    }

    // The gateway.
    let gateway = service("gateway");
    let command = strings(seq(gateway, "command"));
    cli.check(&command, &mut problems);
    let config_path = command.last().cloned().unwrap_or_default();
    match mounted_file(gateway, &config_path)
        .map(|file| (GatewayConfig::from_toml_str(&read_deploy(&file)), file))
    {
        None => problems.push(format!(
            "gateway: {config_path} is not mounted from deploy/"
        )),
        Some((Err(e), file)) => problems.push(format!("{file}: {e}")),
        Some((Ok(config), file)) => {
            let nodes: Vec<&String> = advertised.values().collect();
            if config.nodes.iter().collect::<Vec<_>>() != nodes {
                problems.push(format!("{file}: nodes {:?}, not {nodes:?}", config.nodes));
            }
            let port = config.listen.port();
            let published = strings(seq(gateway, "ports"));
            if !published.iter().any(|p| p.ends_with(&format!(":{port}"))) {
                problems.push(format!(
                    "gateway: publishes {published:?}, listens on {port}"
                ));
            }
            let health = strings(seq(gateway, "healthcheck.test")).join(" ");
            if !health.contains(&format!("/dev/tcp/127.0.0.1/{port}"))
                || !health.contains("GET /readyz")
            {
                problems.push("gateway: the healthcheck does not ask /readyz".into());
            }
            tls_paths_under(&file, &config.tls, &certs_dir, &mut problems);
        }
    }
    problems
}

fn compose() -> Value {
    let docs = yaml_documents(&read_deploy("compose.yaml"));
    assert_eq!(docs.len(), 1, "compose.yaml is one document");
    docs.into_iter().next().unwrap()
}

#[test]
fn compose_runs_three_nodes_and_a_gateway_on_configs_the_parsers_accept() {
    let cli = Cli::load();
    let compose = compose();
    let problems = check_compose(&compose, &cli);
    assert!(problems.is_empty(), "{problems:#?}");

    let mut wrong_port = compose.clone();
    wrong_port["services"]["node2"]["expose"] = Value::Sequence(vec!["7009".into()]);
    assert!(!check_compose(&wrong_port, &cli).is_empty());
    let mut no_gateway = compose.clone();
    no_gateway["services"]
        .as_mapping_mut()
        .unwrap()
        .remove("gateway");
    assert!(!check_compose(&no_gateway, &cli).is_empty());
    let mut bad_flag = compose;
    bad_flag["services"]["node1"]["command"] = Value::Sequence(vec![
        "flashstock-node".into(),
        "--conf".into(),
        "/etc/flashstock/node.toml".into(),
    ]);
    assert!(!check_compose(&bad_flag, &cli).is_empty());
}

#[test]
fn compose_node_configs_on_disk_load_with_the_real_parser() {
    for name in COMPOSE_NODES {
        let path = deploy_dir().join(format!("compose/{name}.toml"));
        let config = NodeConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.initial_members.len(), 3);
        assert!(!config.tls.insecure, "{name} must use mTLS");
    }
    let path = deploy_dir().join("compose/gateway.toml");
    let config = GatewayConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listen.port(), 8080);
}

// ---------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------

struct K8s {
    docs: Vec<Value>,
}

impl K8s {
    fn load() -> K8s {
        let dir = deploy_dir().join("k8s");
        let kustomization = yaml_documents(&read(&dir.join("kustomization.yaml")));
        let listed: BTreeSet<String> = strings(seq(&kustomization[0], "resources"))
            .into_iter()
            .collect();
        let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
            .collect();
        assert_eq!(listed, on_disk, "kustomization.yaml lists every manifest");
        let docs = on_disk
            .iter()
            .flat_map(|file| yaml_documents(&read(&dir.join(file))))
            .collect();
        K8s { docs }
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.docs
            .iter()
            .filter(|d| get(d, "kind").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.of_kind(kind)
            .into_iter()
            .find(|d| get(d, "metadata.name").and_then(Value::as_str) == Some(name))
    }
}

/// The file `key` of a ConfigMap (keys hold dots, so no dotted path).
fn config_data<'a>(config_map: &'a Value, key: &str) -> Option<&'a str> {
    get(config_map, "data")?.get(key)?.as_str()
}

/// A pod template's volume mounted at `path` in `container`, and that volume.
fn volume_at<'a>(pod: &'a Value, container: &Value, path: &str) -> Option<(&'a Value, String)> {
    seq(container, "volumeMounts")
        .iter()
        .filter(|m| {
            get(m, "mountPath")
                .and_then(Value::as_str)
                .is_some_and(|mp| Path::new(path).starts_with(mp))
        })
        .find_map(|m| {
            let name = get_str(m, "name");
            let mount = get_str(m, "mountPath").to_string();
            seq(pod, "volumes")
                .iter()
                .find(|v| get_str(v, "name") == name)
                .map(|v| (v, mount))
        })
}

fn container_port(container: &Value, name: &str) -> Option<u16> {
    seq(container, "ports")
        .iter()
        .find(|p| get(p, "name").and_then(Value::as_str) == Some(name))
        .and_then(|p| get(p, "containerPort"))
        .and_then(Value::as_u64)
        .map(|p| p as u16)
}

/// A probe's port names the container port `name` (or its number).
fn probe_port_is(probe: &Value, name: &str, number: u16) -> bool {
    match get(probe, "port") {
        Some(Value::String(s)) => s == name,
        Some(Value::Number(n)) => n.as_u64() == Some(u64::from(number)),
        _ => false,
    }
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_mapping()
        .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The command line a container runs: `command` + `args`, or the `exec ...` line of a
/// `sh -c` script with Kubernetes' `$$` escapes undone.
fn container_command(container: &Value) -> Vec<String> {
    let mut words = strings(seq(container, "command"));
    words.extend(strings(seq(container, "args")));
    if words.len() == 3 && words[0].ends_with("sh") && words[1] == "-c" {
        let script = words[2].replace("$$", "$");
        let exec = script
            .lines()
            .find_map(|l| l.trim().strip_prefix("exec "))
            .unwrap_or("");
        return shell_words(exec);
    }
    words
}

fn check_k8s(k8s: &K8s, cli: &Cli, image: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for kind in [
        "StatefulSet",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ConfigMap",
    ] {
        if k8s.of_kind(kind).is_empty() {
            problems.push(format!("no {kind}"));
        }
    }
    let Some(sts) = k8s.of_kind("StatefulSet").first().copied() else {
        return problems;
    };

    // --- the nodes
    let sts_name = get_str(sts, "metadata.name");
    let replicas = get(sts, "spec.replicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if replicas != 3 {
        problems.push(format!("StatefulSet replicas {replicas}, not 3"));
    }
    let pod_labels = get(sts, "spec.template.metadata.labels")
        .cloned()
        .unwrap_or_default();
    if !labels_match(
        get(sts, "spec.selector.matchLabels").unwrap_or(&Value::Null),
        &pod_labels,
    ) {
        problems.push("StatefulSet selector does not match its pods".into());
    }
    let claims = seq(sts, "spec.volumeClaimTemplates");
    if claims.is_empty() {
        problems.push("StatefulSet has no volumeClaimTemplates".into());
    }
    let service_name = get(sts, "spec.serviceName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let headless = k8s.named("Service", service_name);
    match headless {
        None => problems.push(format!("no Service {service_name:?} for the StatefulSet")),
        Some(svc) => {
            if get(svc, "spec.clusterIP").and_then(Value::as_str) != Some("None") {
                problems.push(format!("Service {service_name} is not headless"));
            }
            if !labels_match(
                get(svc, "spec.selector").unwrap_or(&Value::Null),
                &pod_labels,
            ) {
                problems.push(format!("Service {service_name} selects no node pod"));
            }
        }
    }
    let pod = get(sts, "spec.template.spec").cloned().unwrap_or_default();
    let Some(container) = seq(&pod, "containers").first() else {
        problems.push("StatefulSet has no container".into());
        return problems;
    };
    if get_str(container, "image") != image {
        problems.push(format!(
            "node image {}, compose builds {image}",
            get_str(container, "image")
        ));
    }
    let command = container_command(container);
    cli.check(&command, &mut problems);
    let Some(grpc) = container_port(container, "grpc") else {
        problems.push("the node container has no port named grpc".into());
        return problems;
    };
    match container_port(container, "metrics") {
        None => problems.push("the node container has no port named metrics".into()),
        Some(metrics) => {
            for (probe, path) in [
                ("startupProbe", "/healthz"),
                ("livenessProbe", "/healthz"),
                ("readinessProbe", "/readyz"),
            ] {
                match get(container, &format!("{probe}.httpGet")) {
                    Some(get_)
                        if probe_port_is(get_, "metrics", metrics)
                            && get(get_, "path").and_then(Value::as_str) == Some(path) => {}
                    _ => problems.push(format!(
                        "node {probe} is not GET {path} on the metrics port"
                    )),
                }
            }
        }
    }
    if let Some(svc) = headless {
        let ports: Vec<u64> = seq(svc, "spec.ports")
            .iter()
            .filter_map(|p| get(p, "port").and_then(Value::as_u64))
            .collect();
        if ports != [u64::from(grpc)] {
            problems.push(format!(
                "headless Service ports {ports:?}, nodes listen on {grpc}"
            ));
        }
    }
    // Configs: one per ordinal, from the ConfigMap mounted where the command looks.
    let config_arg = command
        .iter()
        .skip_while(|w| *w != "--config")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    let Some((config_volume, config_mount)) = volume_at(&pod, container, &config_arg) else {
        problems.push(format!("node config {config_arg} is on no volume"));
        return problems;
    };
    let config_map = get(config_volume, "configMap.name")
        .and_then(Value::as_str)
        .and_then(|name| k8s.named("ConfigMap", name));
    let Some(config_map) = config_map else {
        problems.push("the node config volume is no ConfigMap of these manifests".into());
        return problems;
    };
    let claim_mounts: Vec<String> = claims
        .iter()
        .filter_map(|c| get(c, "metadata.name").and_then(Value::as_str))
        .filter_map(|claim| {
            seq(container, "volumeMounts")
                .iter()
                .find(|m| get_str(m, "name") == claim)
                .map(|m| get_str(m, "mountPath").to_string())
        })
        .collect();
    if claim_mounts.is_empty() {
        problems.push("no volume claim is mounted in the node container".into());
    }
    let mut advertised = BTreeMap::new();
    let mut members = Vec::new();
    for ordinal in 0..replicas {
        let id = ordinal + 1;
        // What the command line resolves to in pod <sts>-<ordinal>.
        let file = config_arg
            .replace("${HOSTNAME##*-}", &ordinal.to_string())
            .replace(&format!("$(({ordinal} + 1))"), &id.to_string());
        let key = file
            .strip_prefix(&format!("{config_mount}/"))
            .unwrap_or(&file)
            .to_string();
        let Some(text) = config_data(config_map, &key) else {
            problems.push(format!(
                "pod {sts_name}-{ordinal}: no {key} in the ConfigMap"
            ));
            continue;
        };
        let config = match NodeConfig::from_toml_str(text) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("ConfigMap {key}: {e}"));
                continue;
            }
        };
        if config.id != id {
            problems.push(format!("{key}: id {}, pod ordinal {ordinal}", config.id));
        }
        if config.listen.port() != grpc {
            problems.push(format!(
                "{key}: listens on {}, container port {grpc}",
                config.listen
            ));
        }
        let metrics = container_port(container, "metrics");
        if config.metrics_addr.map(|a| a.port()) != metrics {
            problems.push(format!(
                "{key}: metrics_addr {:?}, container port metrics {metrics:?}: the probes ask it",
                config.metrics_addr
            ));
        }
        let expected = format!("{sts_name}-{ordinal}.{service_name}:{grpc}");
        if config.advertise != expected {
            problems.push(format!(
                "{key}: advertises {}, not {expected}",
                config.advertise
            ));
        }
        if !claim_mounts
            .iter()
            .any(|m| config.data_dir.starts_with(m) && config.data_dir != Path::new(m))
        {
            problems.push(format!(
                "{key}: data_dir {} is not a directory on the volume claim",
                config.data_dir.display()
            ));
        }
        let cert = config.tls.tls_files().map(|f| f.cert).unwrap_or_default();
        match volume_at(&pod, container, cert.to_str().unwrap_or("")) {
            Some((volume, mount)) if get(volume, "secret.secretName").is_some() => {
                tls_paths_under(&key, &config.tls, &mount, &mut problems)
            }
            _ => problems.push(format!("{key}: its certificate is not on a Secret volume")),
        }
        advertised.insert(config.id, config.advertise.clone());
        members.push(config.initial_members);
    }
    for m in &members {
        if *m != advertised {
            problems.push(format!("initial_members {m:?} differ from {advertised:?}"));
        }
    }

    // PodDisruptionBudget: one node at a time.
    let pdbs: Vec<&Value> = k8s
        .of_kind("PodDisruptionBudget")
        .into_iter()
        .filter(|p| {
            labels_match(
                get(p, "spec.selector.matchLabels").unwrap_or(&Value::Null),
                &pod_labels,
            )
        })
        .collect();
    match pdbs.as_slice() {
        [pdb] if get(pdb, "spec.maxUnavailable").and_then(Value::as_u64) == Some(1) => {}
        other => problems.push(format!(
            "want one PodDisruptionBudget with maxUnavailable 1 for the nodes, found {}",
            other.len()
        )),
    }

    // --- the gateways
    let Some(deployment) = k8s.of_kind("Deployment").first().copied() else {
        return problems;
    };
    let gw_labels = get(deployment, "spec.template.metadata.labels")
        .cloned()
        .unwrap_or_default();
    let gw_pod = get(deployment, "spec.template.spec")
        .cloned()
        .unwrap_or_default();
    let Some(gw) = seq(&gw_pod, "containers").first() else {
        problems.push("the Deployment has no container".into());
        return problems;
    };
    if get_str(gw, "image") != image {
        problems.push(format!("gateway image {}", get_str(gw, "image")));
    }
    let command = container_command(gw);
    cli.check(&command, &mut problems);
    if command.first().map(String::as_str) != Some("flashstock-gateway") {
        problems.push(format!("the Deployment runs {command:?}"));
    }
    let Some(http) = container_port(gw, "http") else {
        problems.push("the gateway container has no port named http".into());
        return problems;
    };
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        match get(gw, &format!("{probe}.httpGet")) {
            Some(get_)
                if probe_port_is(get_, "http", http)
                    && get(get_, "path").and_then(Value::as_str) == Some(path) => {}
            _ => problems.push(format!(
                "gateway {probe} is not GET {path} on the http port"
            )),
        }
    }
    let grace = get(&gw_pod, "terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(30);
    if grace <= gateway_drain_secs() {
        problems.push(format!(
            "gateway grace {grace} s leaves no time for its drain"
        ));
    }
    let services: Vec<&Value> = k8s
        .of_kind("Service")
        .into_iter()
        .filter(|s| labels_match(get(s, "spec.selector").unwrap_or(&Value::Null), &gw_labels))
        .collect();
    match services.as_slice() {
        [svc] => {
            let target = seq(svc, "spec.ports")
                .first()
                .and_then(|p| get(p, "targetPort"));
            let ok = match target {
                Some(Value::String(s)) => s == "http",
                Some(Value::Number(n)) => n.as_u64() == Some(u64::from(http)),
                _ => false,
            };
            if !ok {
                problems.push("the gateway Service does not target the http port".into());
            }
        }
        other => problems.push(format!(
            "want one Service for the gateways, found {}",
            other.len()
        )),
    }
    let config_arg = command
        .iter()
        .skip_while(|w| *w != "--config")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    let config = volume_at(&gw_pod, gw, &config_arg).and_then(|(volume, mount)| {
        let map = k8s.named("ConfigMap", get(volume, "configMap.name")?.as_str()?)?;
        let key = config_arg.strip_prefix(&format!("{mount}/"))?;
        config_data(map, key)
    });
    match config.map(GatewayConfig::from_toml_str) {
        None => problems.push(format!("gateway config {config_arg} is in no ConfigMap")),
        Some(Err(e)) => problems.push(format!("gateway ConfigMap: {e}")),
        Some(Ok(config)) => {
            if config.listen.port() != http {
                problems.push(format!(
                    "gateway listens on {}, container port {http}",
                    config.listen
                ));
            }
            let nodes: Vec<&String> = advertised.values().collect();
            if config.nodes.iter().collect::<Vec<_>>() != nodes {
                problems.push(format!("gateway nodes {:?}, not {nodes:?}", config.nodes));
            }
            let cert = config.tls.tls_files().map(|f| f.cert).unwrap_or_default();
            match volume_at(&gw_pod, gw, cert.to_str().unwrap_or("")) {
                Some((volume, mount)) if get(volume, "secret.secretName").is_some() => {
                    tls_paths_under("gateway ConfigMap", &config.tls, &mount, &mut problems)
                }
                _ => problems.push("the gateway's certificate is not on a Secret volume".into()),
            }
        }
    }
    problems
}

/// The gateway's drain after SIGTERM, in seconds, read from its source.
fn gateway_drain_secs() -> u64 {
    let source = read(&repo_root().join("gateway/src/server.rs"));
    let line = source
        .lines()
        .find(|l| l.starts_with("pub const SHUTDOWN_GRACE"))
        .expect("gateway/src/server.rs defines SHUTDOWN_GRACE");
    let secs = line
        .split("from_secs(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok());
    secs.unwrap_or_else(|| panic!("cannot read seconds from {line:?}"))
}

fn compose_image() -> String {
    get_str(&compose()["services"]["node1"], "image").to_string()
}

#[test]
fn k8s_manifests_have_the_expected_kinds_and_agree_with_the_configs() {
    let cli = Cli::load();
    let k8s = K8s::load();
    let image = compose_image();
    let problems = check_k8s(&k8s, &cli, &image);
    assert!(problems.is_empty(), "{problems:#?}");

    let mutate = |edit: &dyn Fn(&mut Value)| {
        let mut docs = K8s::load();
        for doc in &mut docs.docs {
            edit(doc);
        }
        check_k8s(&docs, &cli, &image)
    };
    let is = |doc: &Value, kind: &str| get(doc, "kind").and_then(Value::as_str) == Some(kind);
    assert!(!mutate(&|d| if is(d, "StatefulSet") {
        d["spec"]["replicas"] = 1.into();
    })
    .is_empty());
    assert!(!mutate(&|d| if is(d, "StatefulSet") {
        d["spec"]
            .as_mapping_mut()
            .unwrap()
            .remove("volumeClaimTemplates");
    })
    .is_empty());
    assert!(!mutate(&|d| if is(d, "Deployment") {
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] =
            "/healthz".into();
    })
    .is_empty());
    assert!(!mutate(&|d| if is(d, "StatefulSet") {
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] =
            "/healthz".into();
    })
    .is_empty());
    assert!(!mutate(&|d| if is(d, "StatefulSet") {
        d["spec"]["template"]["spec"]["containers"][0]["ports"][1]["containerPort"] = 9200.into();
    })
    .is_empty());
    assert!(!mutate(&|d| if is(d, "PodDisruptionBudget") {
        d["spec"]["maxUnavailable"] = 2.into();
    })
    .is_empty());
    assert!(!check_k8s(&k8s, &cli, "someone-else:latest").is_empty());
}

#[test]
fn k8s_secrets_are_documented_with_invctl_and_kubectl() {
    let k8s = K8s::load();
    let readme = read_deploy("README.md");
    let mut secrets = BTreeSet::new();
    for doc in &k8s.docs {
        for volume in seq(doc, "spec.template.spec.volumes") {
            if let Some(name) = get(volume, "secret.secretName").and_then(Value::as_str) {
                secrets.insert(name.to_string());
            }
        }
    }
    assert_eq!(secrets.len(), 2, "{secrets:?}");
    for secret in secrets {
        assert!(
            readme.contains(&format!("kubectl create secret generic {secret}")),
            "README.md does not say how to create {secret}"
        );
    }
    assert!(readme.contains("invctl certs init"));
}

// ---------------------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------------------

/// `[Section]` -> key -> values (a key may repeat).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            unit.entry(section.clone())
                .or_default()
                .entry(key.trim().to_string())
                .or_default()
                .push(value.trim().to_string());
        }
    }
    unit
}

fn check_unit(text: &str, cli: &Cli, binary: &str, min_stop_secs: u64) -> Vec<String> {
    let mut problems = Vec::new();
    let unit = parse_unit(text);
    let empty = BTreeMap::new();
    let service = unit.get("Service").unwrap_or(&empty);
    let one = |key: &str| service.get(key).and_then(|v| v.last()).map(String::as_str);
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("Restart", "on-failure"),
    ] {
        if one(key) != Some(want) {
            problems.push(format!("{key}={want} missing (have {:?})", one(key)));
        }
    }
    let dedicated = one("DynamicUser") == Some("yes")
        || one("User").is_some_and(|u| !u.is_empty() && u != "root" && u != "0");
    if !dedicated {
        problems.push("runs as root: set User= or DynamicUser=yes".into());
    }
    match one("LimitNOFILE").and_then(|n| n.parse::<u64>().ok()) {
        Some(n) if n >= 65_536 => {}
        other => problems.push(format!("LimitNOFILE {other:?} is too low for a flash sale")),
    }
    match one("TimeoutStopSec").and_then(|n| n.parse::<u64>().ok()) {
        Some(n) if n > min_stop_secs => {}
        other => problems.push(format!(
            "TimeoutStopSec {other:?} must exceed {min_stop_secs} s"
        )),
    }
    let exec: Vec<&String> = service.get("ExecStart").into_iter().flatten().collect();
    match exec.as_slice() {
        [line] => {
            let words = shell_words(line);
            if words.first().map(|w| w.rsplit('/').next().unwrap()) != Some(binary) {
                problems.push(format!("ExecStart runs {line}, not {binary}"));
            }
            if !words.iter().any(|w| w == "--config") {
                problems.push(format!("ExecStart has no --config: {line}"));
            }
        }
        other => problems.push(format!("want one ExecStart, found {other:?}")),
    }
    for line in service
        .iter()
        .filter(|(k, _)| k.starts_with("Exec"))
        .flat_map(|(_, v)| v)
    {
        cli.check(&shell_words(line), &mut problems);
    }
    if !unit.contains_key("Install") {
        problems.push("no [Install] section".into());
    }
    problems
}

fn exec_config_path(unit: &Unit) -> String {
    let words = shell_words(&unit["Service"]["ExecStart"][0]);
    let i = words.iter().position(|w| w == "--config").unwrap();
    words[i + 1].clone()
}

#[test]
fn systemd_node_unit_is_hardened_and_runs_a_real_node() {
    let cli = Cli::load();
    let text = read_deploy("systemd/flashstock-node@.service");
    let problems = check_unit(&text, &cli, "flashstock-node", 0);
    assert!(problems.is_empty(), "{problems:#?}");
    let unit = parse_unit(&text);
    let service = &unit["Service"];
    assert_eq!(exec_config_path(&unit), "/etc/flashstock/node-%i.toml");
    assert_eq!(service["StateDirectory"], ["flashstock/node-%i"]);
    assert!(service["ReadWritePaths"]
        .iter()
        .any(|p| p == "/var/lib/flashstock/node-%i"));

    // The example config is what instance 1 reads, and keeps its data where the unit may write.
    let example = NodeConfig::load(&deploy_dir().join("systemd/node-1.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(example.id, 1);
    assert_eq!(
        example.data_dir,
        Path::new("/var/lib").join(service["StateDirectory"][0].replace("%i", "1"))
    );
    let mut problems = Vec::new();
    tls_paths_under(
        "node-1.toml",
        &example.tls,
        "/etc/flashstock/certs",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");

    for (broken, why) in [
        (
            text.replace("NoNewPrivileges=yes\n", ""),
            "no NoNewPrivileges",
        ),
        (
            text.replace("ProtectSystem=strict", "ProtectSystem=full"),
            "ProtectSystem=full",
        ),
        (
            text.replace("CapabilityBoundingSet=\n", ""),
            "capabilities kept",
        ),
        (text.replace("User=flashstock\n", ""), "root"),
        (
            text.replace("LimitNOFILE=1048576", "LimitNOFILE=1024"),
            "few files",
        ),
        (
            text.replace(" --config ", " --conf "),
            "a flag node does not have",
        ),
        (
            text.replace(
                "/usr/local/bin/flashstock-node --config",
                "/usr/local/bin/nodes --config",
            ),
            "no such binary",
        ),
    ] {
        assert!(
            !check_unit(&broken, &cli, "flashstock-node", 0).is_empty(),
            "{why} passed"
        );
    }
}

#[test]
fn systemd_gateway_unit_is_hardened_and_waits_for_the_drain() {
    let cli = Cli::load();
    let text = read_deploy("systemd/flashstock-gateway.service");
    let drain = gateway_drain_secs();
    let problems = check_unit(&text, &cli, "flashstock-gateway", drain);
    assert!(problems.is_empty(), "{problems:#?}");
    let unit = parse_unit(&text);
    assert_eq!(exec_config_path(&unit), "/etc/flashstock/gateway.toml");
    let example = GatewayConfig::load(&deploy_dir().join("systemd/gateway.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(example
        .tls
        .tls_files()
        .unwrap()
        .key
        .starts_with("/etc/flashstock/certs"));

    let short_stop = text.replace("TimeoutStopSec=20", &format!("TimeoutStopSec={drain}"));
    assert!(!check_unit(&short_stop, &cli, "flashstock-gateway", drain).is_empty());
    let no_restart = text.replace("Restart=on-failure", "Restart=no");
    assert!(!check_unit(&no_restart, &cli, "flashstock-gateway", drain).is_empty());
}

// ---------------------------------------------------------------------------------------
// The helpers themselves
// ---------------------------------------------------------------------------------------

#[test]
fn flag_and_binary_discovery_finds_the_real_ones() {
    let cli = Cli::load();
    for bin in [
        "flashstock-node",
        "flashstock-gateway",
        "invctl",
        "loadgen",
        "jepsen",
    ] {
        assert!(
            cli.binaries.contains(bin),
            "{bin} missing from {:?}",
            cli.binaries
        );
    }
    assert!(cli.flags["flashstock-node"].contains("--check-config"));
    assert!(cli.flags["flashstock-gateway"].contains("--https-cert"));
    for flag in [
        "--dir", "--id", "--addr", "--host", "--name", "--ca", "--nodes",
    ] {
        assert!(cli.flags["invctl"].contains(flag), "invctl {flag}");
    }
    assert_eq!(
        cli.certs_subcommands,
        BTreeSet::from(["admin", "gateway", "init", "node"].map(String::from))
    );
    let parsed = long_flags(
        "#[arg(\n    long = \"out-dir\",\n    env = \"X\"\n)]\npub dir: PathBuf,\n\
         #[arg(short)]\nquiet: bool,\n#[arg(long)]\nid: u64,\n#[arg(long_help = \"x\")]\nn: u8,\n",
    );
    let want = ["--help", "--version", "--out-dir", "--id"].map(String::from);
    assert_eq!(parsed, BTreeSet::from(want));
    assert_eq!(shell_words(r#"a "b c"  d"#), ["a", "b c", "d"]);
}
