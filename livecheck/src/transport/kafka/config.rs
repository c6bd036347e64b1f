//! The librdkafka settings: from a `kafka://` URL and `LIVECHECK_KAFKA_*` environment variables.

use rdkafka::ClientConfig;

use crate::{Error, Result};

/// The librdkafka settings a `kafka://` URL and the environment name.
pub(super) fn client_config(url: &str) -> Result<ClientConfig> {
    let rest = url.strip_prefix("kafka://").ok_or_else(|| Error::Config(format!("not a kafka:// URL: `{url}`")))?;
    let (brokers, query) = rest.split_once('?').unwrap_or((rest, ""));
    let brokers = brokers.trim_end_matches('/');
    if brokers.is_empty() {
        return Err(Error::Config(format!("no broker in `{url}` (kafka://host:port[,host:port])")));
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (name, value) in std::env::vars() {
        if let Some(setting) = name.strip_prefix("LIVECHECK_KAFKA_") {
            config.set(setting.to_lowercase().replace('_', "."), value);
        }
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("`{pair}` in `{url}` is not a name=value setting")))?;
        config.set(name, value);
    }
    Ok(config)
}

/// Sets `name` unless the URL or the environment did.
pub(super) fn set_if_absent(config: &mut ClientConfig, name: &str, value: &str) {
    if config.get(name).is_none() {
        config.set(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_brokers_and_passes_settings_through() {
        let config = client_config("kafka://a:9092,b:9093?security.protocol=SASL_SSL&sasl.mechanism=PLAIN").unwrap();
        assert_eq!(config.get("bootstrap.servers"), Some("a:9092,b:9093"));
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("sasl.mechanism"), Some("PLAIN"));
        assert!(client_config("kafka://").is_err());
        assert!(client_config("kafka://a:1?oops").is_err());
    }
}
