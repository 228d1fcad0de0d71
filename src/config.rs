//! Typed configuration, loaded once: TOML file → `KEYSTILE_*` environment → command-line flags.
//!
//! Secret fields (master key, admin token, database URL) are `SecretString`s. Invalid
//! configuration is an error with a clear message, never a panic. There is no global config:
//! the loaded value is passed to whoever needs it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use secrecy::SecretString;
use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Limits and timeouts of the proxy path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Largest request body forwarded upstream, in bytes.
    pub max_request_body_bytes: u64,
    /// Time to establish an upstream connection: name resolution, TCP and the TLS handshake.
    pub connect_timeout_ms: u64,
    /// Time from sending the request to the upstream's response head.
    pub first_byte_timeout_ms: u64,
    /// Longest silence allowed between two chunks of a streamed upstream body.
    pub idle_timeout_ms: u64,
    /// Largest upstream body `/v1/execute` returns (it answers with one JSON document).
    pub max_execute_response_bytes: u64,
    /// Extra PEM CA bundle trusted for upstream TLS, beside the system roots.
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            max_request_body_bytes: 10 * 1024 * 1024,
            connect_timeout_ms: 10_000,
            first_byte_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            max_execute_response_bytes: 10 * 1024 * 1024,
            extra_ca_file: None,
        }
    }
}

/// Name resolution for outbound requests (SPEC S6 `dns.nameservers`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers (`ip:port`) asked instead of the system resolver, over UDP with TCP
    /// fallback, without the hosts file. Empty: the system resolver.
    pub nameservers: Vec<SocketAddr>,
}

/// Rate limits (SPEC S3, S10). A limit of 0 disables it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Calls through a proxy surface per API key per minute.
    pub proxy_per_minute: u64,
    /// Management calls (everything else) per API key per minute.
    pub management_per_minute: u64,
    /// Failed authentications per client address per minute, after which the address gets 429
    /// until the minute is over, even with a valid key.
    pub auth_failures_per_minute: u64,
    /// Prefix of every Redis key (so that several deployments, or tests, can share a Redis).
    pub redis_prefix: String,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            proxy_per_minute: 1000,
            management_per_minute: 100,
            auth_failures_per_minute: 10,
            redis_prefix: "keystile:".to_owned(),
        }
    }
}

/// Where an audit event must be before the response it describes is released (SPEC S11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDurability {
    /// Appended to the gateway's own audit journal (a file under the data directory) and
    /// synced to disk; indexed into the database's hash chain in the background. The default
    /// on the embedded SQLite, whose file lives on the same disk.
    Journal,
    /// Committed to the database in a transaction. The default on PostgreSQL, so that a
    /// replica whose local disk is lost loses no event.
    Database,
}

/// The audit trail's durability (SPEC S11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `journal` or `database`; unset: journal on the embedded SQLite, database on PostgreSQL.
    pub durability: Option<AuditDurability>,
}

/// How clients address the gateway, for rebuilding `@target-uri`/`@authority` of signed
/// requests (SPEC S7) behind a TLS-terminating proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicAddress {
    /// The base URL clients use (`https://keystile.example.com`); when set, a signed request's
    /// scheme and authority are taken from it, never from the request.
    pub public_url: Option<url::Url>,
    /// Peers (CIDRs) whose `Forwarded` header (RFC 7239) `proto`/`host` are believed. Only the
    /// TCP peer address is checked, never a header.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL; `None` for the embedded SQLite default.
    pub database_url: Option<SecretString>,
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<PathBuf>,
    pub admin_token: Option<SecretString>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub proxy: ProxyConfig,
    pub dns: DnsConfig,
    pub limits: LimitsConfig,
    pub audit: AuditConfig,
    /// `redis://…`: share rate-limit counters with every replica through Redis.
    pub redis_url: Option<SecretString>,
    pub public: PublicAddress,
}

/// The TOML file's shape: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<SecretString>,
    master_key_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    #[serde(default)]
    proxy: Option<ProxyConfig>,
    #[serde(default)]
    dns: Option<DnsConfig>,
    #[serde(default)]
    limits: Option<LimitsConfig>,
    #[serde(default)]
    audit: Option<AuditConfig>,
    redis_url: Option<SecretString>,
    public_url: Option<String>,
    trusted_proxies: Option<Vec<String>>,
}

/// Values given as flags (highest precedence).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeFlags {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7400].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory for the embedded database and generated master key [default: ./keystile-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); the embedded SQLite is used when absent.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the base64 master key.
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Redis URL (redis://…) to share rate-limit counters between replicas.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// The base URL clients use to reach the gateway (behind a TLS-terminating proxy), e.g.
    /// https://keystile.example.com; signed requests are verified against it.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
}

impl Config {
    /// Loads the configuration from the file named by `flags.config` (or `KEYSTILE_CONFIG`),
    /// then the environment as read by `env`, then the flags.
    pub fn load(flags: &ServeFlags, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let file_path = flags
            .config
            .clone()
            .or_else(|| env("KEYSTILE_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };

        let listen_text = flags
            .listen
            .clone()
            .or_else(|| env("KEYSTILE_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:7400".to_owned());
        let listen = listen_text
            .parse()
            .with_context(|| format!("invalid listen address {listen_text:?} (expected e.g. 127.0.0.1:7400)"))?;

        let log_level = env("KEYSTILE_LOG")
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_owned());
        let log_format = match flags.log_format {
            Some(f) => f,
            None => match env("KEYSTILE_LOG_FORMAT").as_deref() {
                Some("json") => LogFormat::Json,
                Some("text") => LogFormat::Text,
                Some(other) => bail!("KEYSTILE_LOG_FORMAT must be 'text' or 'json', not {other:?}"),
                None => file.log_format.unwrap_or_default(),
            },
        };

        let mut proxy = file.proxy.unwrap_or_default();
        if let Some(v) = env("KEYSTILE_PROXY_MAX_REQUEST_BODY_BYTES") {
            proxy.max_request_body_bytes = v
                .parse()
                .context("KEYSTILE_PROXY_MAX_REQUEST_BODY_BYTES must be a number")?;
        }
        if let Some(v) = env("KEYSTILE_PROXY_EXTRA_CA_FILE") {
            proxy.extra_ca_file = Some(PathBuf::from(v));
        }

        let mut dns = file.dns.unwrap_or_default();
        if let Some(v) = env("KEYSTILE_DNS_NAMESERVERS") {
            dns.nameservers = parse_nameservers(&v)?;
        }

        let mut limits = file.limits.unwrap_or_default();
        for (var, field) in [
            ("KEYSTILE_LIMITS_PROXY_PER_MINUTE", &mut limits.proxy_per_minute),
            (
                "KEYSTILE_LIMITS_MANAGEMENT_PER_MINUTE",
                &mut limits.management_per_minute,
            ),
            (
                "KEYSTILE_LIMITS_AUTH_FAILURES_PER_MINUTE",
                &mut limits.auth_failures_per_minute,
            ),
        ] {
            if let Some(v) = env(var) {
                *field = v
                    .trim()
                    .parse()
                    .with_context(|| format!("{var} must be a whole number (0 disables the limit)"))?;
            }
        }
        if let Some(v) = env("KEYSTILE_REDIS_PREFIX") {
            limits.redis_prefix = v;
        }
        let mut audit = file.audit.unwrap_or_default();
        match env("KEYSTILE_AUDIT_DURABILITY").as_deref().map(str::trim) {
            None | Some("") => {}
            Some("journal") => audit.durability = Some(AuditDurability::Journal),
            Some("database") => audit.durability = Some(AuditDurability::Database),
            Some(other) => bail!("KEYSTILE_AUDIT_DURABILITY must be 'journal' or 'database', not {other:?}"),
        }
        let redis_url = flags
            .redis_url
            .clone()
            .map(SecretString::from)
            .or_else(|| {
                env("KEYSTILE_REDIS_URL")
                    .filter(|v| !v.is_empty())
                    .map(SecretString::from)
            })
            .or(file.redis_url);
        let public_url = flags
            .public_url
            .clone()
            .or_else(|| env("KEYSTILE_PUBLIC_URL"))
            .or(file.public_url)
            .filter(|u| !u.trim().is_empty())
            .map(|u| parse_public_url(&u))
            .transpose()?;
        let trusted_proxies = match env("KEYSTILE_TRUSTED_PROXIES") {
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(parse_cidr)
                .collect::<anyhow::Result<_>>()?,
            None => file
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .map(|s| parse_cidr(s))
                .collect::<anyhow::Result<_>>()?,
        };

        let database_url = flags
            .database_url
            .clone()
            .map(SecretString::from)
            .or_else(|| env("KEYSTILE_DATABASE_URL").map(SecretString::from))
            .or(file.database_url);

        let admin_token = env("KEYSTILE_ADMIN_TOKEN").map(SecretString::from);
        if let Some(t) = &admin_token {
            use secrecy::ExposeSecret as _;
            let t = t.expose_secret();
            if t.chars().count() < 32 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("KEYSTILE_ADMIN_TOKEN must be at least 32 characters without spaces");
            }
        }

        Ok(Self {
            listen,
            data_dir: flags
                .data_dir
                .clone()
                .or_else(|| env("KEYSTILE_DATA_DIR").map(PathBuf::from))
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("keystile-data")),
            database_url,
            master_key: env("KEYSTILE_MASTER_KEY").map(SecretString::from),
            master_key_file: flags
                .master_key_file
                .clone()
                .or_else(|| env("KEYSTILE_MASTER_KEY_FILE").map(PathBuf::from))
                .or(file.master_key_file),
            admin_token,
            log_format,
            log_level,
            proxy,
            dns,
            limits,
            audit,
            redis_url,
            public: PublicAddress {
                public_url,
                trusted_proxies,
            },
        })
    }
}

/// Parses `public_url`: http(s), a host, no user info, query or fragment.
fn parse_public_url(text: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(text.trim()).with_context(|| format!("invalid public_url {text:?}"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        bail!(
            "public_url must be an http(s) base URL without credentials, query or fragment, e.g. https://keystile.example.com"
        );
    }
    Ok(url)
}

/// Parses a trusted proxy: a CIDR, or a single address.
fn parse_cidr(text: &str) -> anyhow::Result<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .with_context(|| format!("invalid trusted proxy {text:?} (expected a CIDR such as 10.0.0.0/8)"))
}

/// Parses `KEYSTILE_DNS_NAMESERVERS`: comma-separated `ip:port` (`[v6]:port`); empty means
/// the system resolver.
fn parse_nameservers(text: &str) -> anyhow::Result<Vec<SocketAddr>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().with_context(|| {
                format!("KEYSTILE_DNS_NAMESERVERS: invalid name server {s:?} (expected e.g. 127.0.0.1:53)")
            })
        })
        .collect()
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn flags_override_env_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"/from-file\"\n[proxy]\nconnect_timeout_ms = 5\n",
        )
        .unwrap();
        let env: HashMap<&str, &str> = HashMap::from([("KEYSTILE_LISTEN", "127.0.0.1:2")]);
        let flags = ServeFlags {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.data_dir, PathBuf::from("/from-file"));
        assert_eq!(c.proxy.connect_timeout_ms, 5);
        let flags = ServeFlags {
            config: Some(file),
            listen: Some("127.0.0.1:3".into()),
            ..Default::default()
        };
        let c = Config::load(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.listen.port(), 3);
    }

    #[test]
    fn dns_nameservers_come_from_the_file_or_the_environment() {
        let c = Config::load(&ServeFlags::default(), |_| None).unwrap();
        assert!(c.dns.nameservers.is_empty(), "default: the system resolver");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "[dns]\nnameservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\n").unwrap();
        let flags = ServeFlags {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::load(&flags, |_| None).unwrap();
        assert_eq!(
            c.dns.nameservers,
            vec!["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        let c = Config::load(&flags, |k| {
            (k == "KEYSTILE_DNS_NAMESERVERS").then(|| " 127.0.0.2:53 , 127.0.0.3:5300".into())
        })
        .unwrap();
        assert_eq!(
            c.dns.nameservers,
            vec!["127.0.0.2:53".parse().unwrap(), "127.0.0.3:5300".parse().unwrap()]
        );
        let c = Config::load(&flags, |k| (k == "KEYSTILE_DNS_NAMESERVERS").then(String::new)).unwrap();
        assert!(
            c.dns.nameservers.is_empty(),
            "an empty variable selects the system resolver"
        );

        let e = Config::load(&ServeFlags::default(), |k| {
            (k == "KEYSTILE_DNS_NAMESERVERS").then(|| "127.0.0.1".into())
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("KEYSTILE_DNS_NAMESERVERS"), "{e:#}");
        std::fs::write(&file, "[dns]\nnameservers = [\"dns.example\"]\n").unwrap();
        assert!(Config::load(&flags, |_| None).is_err());
        std::fs::write(&file, "[dns]\nservers = []\n").unwrap();
        assert!(Config::load(&flags, |_| None).is_err(), "unknown keys are refused");
    }

    #[test]
    fn limits_come_from_the_file_then_the_environment_and_redis_from_anywhere() {
        let c = Config::load(&ServeFlags::default(), |_| None).unwrap();
        assert_eq!(c.limits, LimitsConfig::default());
        assert_eq!(c.limits.proxy_per_minute, 1000);
        assert_eq!(c.limits.management_per_minute, 100);
        assert_eq!(c.limits.auth_failures_per_minute, 10);
        assert!(c.redis_url.is_none());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "redis_url = \"redis://file:6379\"\n[limits]\nproxy_per_minute = 5\nmanagement_per_minute = 6\nredis_prefix = \"a:\"\n",
        )
        .unwrap();
        let flags = ServeFlags {
            config: Some(file),
            ..Default::default()
        };
        let env: HashMap<&str, &str> = HashMap::from([
            ("KEYSTILE_LIMITS_MANAGEMENT_PER_MINUTE", "7"),
            ("KEYSTILE_LIMITS_AUTH_FAILURES_PER_MINUTE", "0"),
            ("KEYSTILE_REDIS_URL", "redis://env:6379"),
        ]);
        let c = Config::load(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.limits.proxy_per_minute, 5);
        assert_eq!(c.limits.management_per_minute, 7);
        assert_eq!(c.limits.auth_failures_per_minute, 0);
        assert_eq!(c.limits.redis_prefix, "a:");
        use secrecy::ExposeSecret as _;
        assert_eq!(c.redis_url.as_ref().unwrap().expose_secret(), "redis://env:6379");
        let flags = ServeFlags {
            redis_url: Some("redis://flag:6379".into()),
            ..flags
        };
        let c = Config::load(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.redis_url.as_ref().unwrap().expose_secret(), "redis://flag:6379");

        let e = Config::load(&ServeFlags::default(), |k| {
            (k == "KEYSTILE_LIMITS_PROXY_PER_MINUTE").then(|| "lots".into())
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("KEYSTILE_LIMITS_PROXY_PER_MINUTE"), "{e:#}");
    }

    #[test]
    fn public_url_and_trusted_proxies_come_from_file_env_or_flag() {
        let c = Config::load(&ServeFlags::default(), |_| None).unwrap();
        assert_eq!(c.public, PublicAddress::default());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "public_url = \"https://ks.example.com\"\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n",
        )
        .unwrap();
        let flags = ServeFlags {
            config: Some(file),
            ..Default::default()
        };
        let c = Config::load(&flags, |_| None).unwrap();
        assert_eq!(c.public.public_url.unwrap().as_str(), "https://ks.example.com/");
        assert_eq!(c.public.trusted_proxies.len(), 2);
        let env: HashMap<&str, &str> = HashMap::from([
            ("KEYSTILE_PUBLIC_URL", "https://env.example.com"),
            ("KEYSTILE_TRUSTED_PROXIES", "192.168.0.0/16"),
        ]);
        let c = Config::load(&flags, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.public.public_url.unwrap().host_str(), Some("env.example.com"));
        assert_eq!(c.public.trusted_proxies, vec!["192.168.0.0/16".parse().unwrap()]);
        let flagged = ServeFlags {
            public_url: Some("https://flag.example.com".into()),
            ..flags
        };
        let c = Config::load(&flagged, |k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.public.public_url.unwrap().host_str(), Some("flag.example.com"));
        for bad in ["ftp://x", "https://u:p@x", "https://x/?q=1", "not a url"] {
            assert!(
                Config::load(&ServeFlags::default(), |k| (k == "KEYSTILE_PUBLIC_URL")
                    .then(|| bad.into()))
                .is_err(),
                "{bad}"
            );
        }
        assert!(
            Config::load(&ServeFlags::default(), |k| (k == "KEYSTILE_TRUSTED_PROXIES")
                .then(|| "nope".into()))
            .is_err()
        );
    }

    #[test]
    fn audit_durability_comes_from_the_file_or_the_environment() {
        let c = Config::load(&ServeFlags::default(), |_| None).unwrap();
        assert_eq!(c.audit.durability, None, "unset: chosen by the backend");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "[audit]\ndurability = \"database\"\n").unwrap();
        let flags = ServeFlags {
            config: Some(file),
            ..Default::default()
        };
        let c = Config::load(&flags, |_| None).unwrap();
        assert_eq!(c.audit.durability, Some(AuditDurability::Database));
        let c = Config::load(&flags, |k| (k == "KEYSTILE_AUDIT_DURABILITY").then(|| "journal".into())).unwrap();
        assert_eq!(c.audit.durability, Some(AuditDurability::Journal));
        let e = Config::load(&flags, |k| (k == "KEYSTILE_AUDIT_DURABILITY").then(|| "memory".into())).unwrap_err();
        assert!(e.to_string().contains("KEYSTILE_AUDIT_DURABILITY"), "{e:#}");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let flags = ServeFlags {
            listen: Some("nope".into()),
            ..Default::default()
        };
        let e = Config::load(&flags, |_| None).unwrap_err();
        assert!(format!("{e:#}").contains("invalid listen address"));
        let e = Config::load(&ServeFlags::default(), |k| {
            (k == "KEYSTILE_ADMIN_TOKEN").then(|| "short".into())
        })
        .unwrap_err();
        assert!(e.to_string().contains("32 characters"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(&file, "unknown_key = 1\n").unwrap();
        let flags = ServeFlags {
            config: Some(file),
            ..Default::default()
        };
        assert!(Config::load(&flags, |_| None).is_err());
    }
}
