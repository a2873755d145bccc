//! The gateway's configuration: a TOML file whose every key is documented in
//! `examples/lakegate.toml`; unknown keys are errors, so a typo never silently does nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration, after defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Prometheus metrics address (`GET /metrics`); empty string disables it.
    #[serde(deserialize_with = "optional_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// The lake root: `ext/` (data), `catalog/`, `dead-letters/` and `wal/` live under it.
    pub lake: PathBuf,
    /// Where plugin components (`<name>.wasm`) are found; default: next to the binary.
    pub plugin_dir: Option<PathBuf>,
    /// Write-ahead log.
    pub wal: WalConfig,
    /// When buffered records become Parquet files, and how much may wait in the log for that.
    pub flush: FlushConfig,
    /// Largest gRPC message accepted, e.g. "64MiB".
    #[serde(deserialize_with = "bytes")]
    pub max_message_bytes: u64,
    /// Sources by name. Empty: every plugin in `plugin_dir` becomes a source of its own name.
    pub sources: BTreeMap<String, SourceConfig>,
}

/// Write-ahead log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// A segment is closed and a new one started past this size.
    #[serde(deserialize_with = "bytes")]
    pub segment_bytes: u64,
    /// `false` skips fsync: faster, and acknowledged data can be lost on power failure (not on a
    /// process crash). For benchmarks and throwaway lakes only.
    pub fsync: bool,
}

/// Flush (file rolling) policy and caps. Buffered records wait in the write-ahead log (the lake
/// keeps only where they are) and are read back when their partition is written, so the caps
/// bound the log and the size of one write rather than memory held per record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushConfig {
    /// A partition is written once its oldest buffered record is this old ("5m").
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// A partition is written once its buffered records take this much as logged ("32MiB"):
    /// also about the most memory writing one file takes for its records (then as Arrow
    /// columns, about half that). The Parquet file is several times smaller.
    #[serde(deserialize_with = "bytes")]
    pub max_partition_bytes: u64,
    /// All partitions together may buffer this much (as logged); past it the largest is written
    /// early.
    #[serde(deserialize_with = "bytes")]
    pub max_buffered_bytes: u64,
    /// At most this many partitions are open; past it the oldest is written early.
    pub max_open_partitions: usize,
    /// Zstandard level of the Parquet files (1-22). Level 1 is the default: on CloudTrail and
    /// VPC flow files it compressed as small as level 3 (0.5-1 % smaller) for ~30 % less
    /// compression time.
    pub zstd_level: i32,
}

/// One source: a plugin and the partition values of what it sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Plugin name (a `<name>.wasm` in `plugin_dir`) or a path to a component.
    pub plugin: String,
    /// `region=` partition value unless a record's metadata sets `region`.
    #[serde(default = "default_region")]
    pub region: String,
    /// `accountId=` partition value unless a record's metadata sets `account_id`: 12 digits,
    /// `external` or `external_<tenant>`.
    #[serde(default = "default_account")]
    pub account_id: String,
    /// The custom-source name in the lake per class_uid. Default: `<source>-<class_uid>`.
    /// Security Lake takes one class per custom source.
    #[serde(default)]
    pub lake_sources: BTreeMap<u32, String>,
    /// Overrides `flush.max_age` for this source.
    #[serde(default, with = "optional_duration")]
    pub max_age: Option<Duration>,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_account() -> String {
    "external".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: ([127, 0, 0, 1], 50051).into(),
            metrics_listen: Some(([127, 0, 0, 1], 9464).into()),
            lake: PathBuf::from("lake"),
            plugin_dir: None,
            wal: WalConfig::default(),
            flush: FlushConfig::default(),
            max_message_bytes: 64 << 20,
            sources: BTreeMap::new(),
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 << 20,
            fsync: true,
        }
    }
}

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            max_age: Duration::from_secs(300),
            max_partition_bytes: 32 << 20,
            max_buffered_bytes: 256 << 20,
            max_open_partitions: 64,
            zstd_level: 1,
        }
    }
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads and checks a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and checks TOML text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        for (name, source) in &self.sources {
            check_source_name(name).map_err(|e| format!("[sources.{name}]: {e}"))?;
            check_account(&source.account_id)
                .map_err(|e| format!("[sources.{name}] account_id: {e}"))?;
            check_region(&source.region).map_err(|e| format!("[sources.{name}] region: {e}"))?;
            for lake in source.lake_sources.values() {
                check_lake_source(lake)
                    .map_err(|e| format!("[sources.{name}] lake_sources: {e}"))?;
            }
        }
        if !(1..=22).contains(&self.flush.zstd_level) {
            return Err(format!(
                "flush.zstd_level must be 1-22, found {}",
                self.flush.zstd_level
            ));
        }
        if self.flush.max_open_partitions == 0 {
            return Err("flush.max_open_partitions must be at least 1".into());
        }
        Ok(())
    }

    /// The directory plugins are loaded from: the configured one, or the first of
    /// `<binary dir>/../plugins` and `<binary dir>/plugins` that exists.
    pub fn plugin_dir(&self) -> PathBuf {
        if let Some(dir) = &self.plugin_dir {
            return dir.clone();
        }
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let candidates = [exe_dir.join("../plugins"), exe_dir.join("plugins")];
        candidates
            .iter()
            .find(|d| d.is_dir())
            .cloned()
            .unwrap_or_else(|| candidates[0].clone())
    }
}

/// A gateway source name: what clients send and what names dead letters and metrics.
pub fn check_source_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 48
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "source name `{name}` must be 1-48 characters of a-z, 0-9, `-` and `_`"
        ));
    }
    Ok(())
}

/// A Security Lake custom-source name (`^[\w\-\_\:\.]*$`, 1-64 characters).
pub fn check_lake_source(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-:.".contains(&b))
    {
        return Err(format!(
            "lake source name `{name}` must be 1-64 characters of letters, digits, `_-:.`"
        ));
    }
    Ok(())
}

/// An `accountId=` partition value: 12 digits, `external` or `external_<tenant>`.
pub fn check_account(account: &str) -> Result<(), String> {
    let tenant_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    let ok = (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
        || account == "external"
        || account.strip_prefix("external_").is_some_and(tenant_ok);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{account}` is not a 12-digit AWS account, `external` or `external_<tenant>`"
        ))
    }
}

/// A `region=` partition value such as `us-east-1`.
pub fn check_region(region: &str) -> Result<(), String> {
    if !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(())
    } else {
        Err(format!("`{region}` is not a region name such as us-east-1"))
    }
}

fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// "64MiB", "512KiB", "1GiB", "1000" (bytes).
fn bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Number(n) => Ok(n),
        Size::Text(s) => parse_bytes(&s).map_err(serde::de::Error::custom),
    }
}

/// `"64 MiB"` -> `(64, "MiB")`; `what` names the expected form in the error.
fn number_and_unit<'a>(s: &'a str, what: &str) -> Result<(u64, &'a str), String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n = number.parse().map_err(|_| format!("`{s}` is not {what}"))?;
    Ok((n, unit.trim()))
}

/// Parses a byte size such as `64MiB`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(s, "a size such as 64MiB")?;
    let scale = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB, GiB)"
            ))
        }
    };
    Ok(n * scale)
}

/// Parses a duration such as `5m`, `30s`, `500ms`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(s, "a duration such as 5m, 30s or 500ms")?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => return Err(format!("unknown duration unit `{other}` (use ms, s, m, h)")),
    })
}

mod duration {
    use super::*;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod optional_duration {
    use super::*;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_config_parses() {
        let c = parse(
            r#"
            listen = "127.0.0.1:7000"
            metrics_listen = ""
            lake = "/data/lake"
            max_message_bytes = "16MiB"
            [wal]
            segment_bytes = "8MiB"
            [flush]
            max_age = "2s"
            max_open_partitions = 8
            [sources.ct]
            plugin = "aws-cloudtrail"
            region = "eu-west-1"
            account_id = "123456789012"
            lake_sources = { 6003 = "ct_api" }
            max_age = "500ms"
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.max_message_bytes, 16 << 20);
        assert_eq!(c.wal.segment_bytes, 8 << 20);
        assert!(c.wal.fsync);
        assert_eq!(c.flush.max_age, Duration::from_secs(2));
        assert_eq!(c.flush.max_partition_bytes, 32 << 20, "the default");
        let ct = &c.sources["ct"];
        assert_eq!(ct.lake_sources[&6003], "ct_api");
        assert_eq!(ct.max_age, Some(Duration::from_millis(500)));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = parse("listen = \"127.0.0.1:1\"\nlisten_port = 5").unwrap_err();
        assert!(e.contains("unknown field `listen_port`"), "{e}");
        let e = parse("[sources.a]\nplugin = \"x\"\nacount_id = \"1\"").unwrap_err();
        assert!(e.contains("unknown field `acount_id`"), "{e}");
        let e = parse("[sources.a]\nplugin = \"x\"\naccount_id = \"1234\"").unwrap_err();
        assert!(
            e.contains("[sources.a] account_id") && e.contains("12-digit"),
            "{e}"
        );
        let e = parse("[flush]\nmax_age = \"5 minutes\"").unwrap_err();
        assert!(e.contains("unknown duration unit"), "{e}");
        let e = parse("[sources.\"Bad Name\"]\nplugin = \"x\"").unwrap_err();
        assert!(e.contains("must be 1-48 characters"), "{e}");
    }

    #[test]
    fn the_documented_example_is_the_default_plus_two_sources() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lakegate.toml");
        let c = Config::load(&path).unwrap();
        let d = Config::default();
        assert_eq!((c.listen, c.metrics_listen), (d.listen, d.metrics_listen));
        assert_eq!((c.lake, c.max_message_bytes), (d.lake, d.max_message_bytes));
        assert_eq!(c.wal.segment_bytes, d.wal.segment_bytes);
        assert_eq!(c.flush.max_age, d.flush.max_age);
        assert_eq!(c.flush.max_partition_bytes, d.flush.max_partition_bytes);
        assert_eq!(c.flush.max_buffered_bytes, d.flush.max_buffered_bytes);
        assert_eq!(c.flush.max_open_partitions, d.flush.max_open_partitions);
        assert_eq!(c.flush.zstd_level, d.flush.zstd_level);
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.sources["vpc-flow"].account_id, "external");
    }

    #[test]
    fn accounts() {
        assert!(check_account("123456789012").is_ok());
        assert!(check_account("external").is_ok());
        assert!(check_account("external_acme-1").is_ok());
        assert!(check_account("external_").is_err());
        assert!(check_account("12345678901").is_err());
    }
}
