//! Sample configs, embedded so binaries can write them out on request.

/// `(file name, contents)` of a three-node cluster on 127.0.0.1:7001..7003.
pub fn sample_three_node() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "node1.toml",
            include_str!("../samples/three-node/node1.toml"),
        ),
        (
            "node2.toml",
            include_str!("../samples/three-node/node2.toml"),
        ),
        (
            "node3.toml",
            include_str!("../samples/three-node/node3.toml"),
        ),
    ]
}

/// `(file name, contents)` of a five-node cluster on 127.0.0.1:7101..7105.
pub fn sample_five_node() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "node1.toml",
            include_str!("../samples/five-node/node1.toml"),
        ),
        (
            "node2.toml",
            include_str!("../samples/five-node/node2.toml"),
        ),
        (
            "node3.toml",
            include_str!("../samples/five-node/node3.toml"),
        ),
        (
            "node4.toml",
            include_str!("../samples/five-node/node4.toml"),
        ),
        (
            "node5.toml",
            include_str!("../samples/five-node/node5.toml"),
        ),
    ]
}

/// `(file name, contents)` of a gateway in front of the three-node sample.
pub fn sample_gateway() -> Vec<(&'static str, &'static str)> {
    vec![("gateway.toml", include_str!("../samples/gateway.toml"))]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{local_cluster, GatewayConfig, NodeConfig, TlsSettings};

    fn check_cluster(
        files: Vec<(&str, &str)>,
        base_port: u16,
        data_root: &str,
        metrics_base_port: u16,
    ) {
        let parsed: Vec<NodeConfig> = files
            .iter()
            .map(|(name, text)| {
                NodeConfig::from_toml_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
            })
            .collect();
        // The samples must describe the same cluster local_cluster builds.
        let mut expected = local_cluster(files.len(), base_port, Path::new(data_root));
        for c in &mut expected {
            c.metrics_addr = Some(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                metrics_base_port + c.id as u16 - 1,
            )));
            c.tls = TlsSettings::files(crate::TlsFiles {
                ca: "certs/ca.pem".into(),
                cert: format!("certs/node-{}.pem", c.id).into(),
                key: format!("certs/node-{}.key", c.id).into(),
            });
        }
        assert_eq!(parsed, expected);
        for ((name, _), c) in files.iter().zip(&parsed) {
            assert_eq!(*name, format!("node{}.toml", c.id));
        }
        let initialisers = parsed.iter().filter(|c| c.is_initialiser()).count();
        assert_eq!(initialisers, 1);
    }

    #[test]
    fn three_node_samples_valid() {
        check_cluster(sample_three_node(), 7001, "data", 9101);
    }

    #[test]
    fn five_node_samples_valid() {
        check_cluster(sample_five_node(), 7101, "data/five-node", 9111);
    }

    #[test]
    fn gateway_sample_valid_and_points_at_three_node_sample() {
        let files = sample_gateway();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "gateway.toml");
        let g = GatewayConfig::from_toml_str(files[0].1).unwrap();
        let advertised: Vec<String> = sample_three_node()
            .iter()
            .map(|(_, text)| NodeConfig::from_toml_str(text).unwrap().advertise)
            .collect();
        assert_eq!(g.nodes, advertised);
    }

    #[test]
    fn commented_out_rate_limit_is_valid_when_enabled() {
        let text = sample_gateway()[0].1.replace("# rate_limit", "rate_limit");
        let g = GatewayConfig::from_toml_str(&text).unwrap();
        assert!(g.rate_limit_per_sec.is_some() && g.rate_limit_burst.is_some());
    }

    #[test]
    fn commented_out_https_is_valid_when_enabled() {
        let text = sample_gateway()[0]
            .1
            .replace("# [https]", "[https]")
            .replace("# cert =", "cert =")
            .replace("# key =", "key =");
        let g = GatewayConfig::from_toml_str(&text).unwrap();
        assert_eq!(
            g.https.unwrap().cert,
            std::path::PathBuf::from("certs/gateway.pem")
        );
    }
}
