//! `load` against real files: samples on disk, missing files, broken files.

use std::path::{Path, PathBuf};

use cluster_config::{sample_five_node, sample_three_node, ConfigError, GatewayConfig, NodeConfig};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

#[test]
fn sample_files_on_disk_load_and_match_embedded_copies() {
    for (dir, embedded) in [
        ("three-node", sample_three_node()),
        ("five-node", sample_five_node()),
    ] {
        for (name, text) in embedded {
            let path = samples_dir().join(dir).join(name);
            let loaded = NodeConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(loaded, NodeConfig::from_toml_str(text).unwrap());
        }
    }
    GatewayConfig::load(&samples_dir().join("gateway.toml")).unwrap();
}

#[test]
fn written_config_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    for c in cluster_config::local_cluster(3, 7201, &dir.path().join("data")) {
        let path = dir.path().join(format!("node{}.toml", c.id));
        std::fs::write(&path, c.to_toml_string()).unwrap();
        assert_eq!(NodeConfig::load(&path).unwrap(), c);
    }
}

#[test]
fn missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let err = NodeConfig::load(&path).unwrap_err();
    assert!(matches!(&err, ConfigError::Io { path: p, .. } if *p == path));
    assert!(err.to_string().contains("absent.toml"), "{err}");
    let err = GatewayConfig::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
}

#[test]
fn parse_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "id = 1\nlisten = \"127.0.0.1:7001\"\ndata_dir = \n").unwrap();
    let err = NodeConfig::load(&path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConfigError::Parse { path: Some(_), .. }));
    assert!(
        text.contains("broken.toml") && text.contains("line 3"),
        "{text}"
    );
}

#[test]
fn invalid_value_in_file_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        "nodes = [\"127.0.0.1:7001\"]\nbackoff_initial_ms = 900\n",
    )
    .unwrap();
    let err = GatewayConfig::load(&path).unwrap_err();
    assert_eq!(err.field(), Some("backoff_initial_ms"));
}

#[test]
fn the_joining_sample_waits_to_be_added() {
    let config = NodeConfig::load(&samples_dir().join("join").join("node4.toml")).unwrap();
    assert_eq!(config.id, 4);
    assert!(config.initial_members.is_empty());
    assert!(!config.is_initialiser());
}
