//! The dead-letter area: every input record the gateway could not turn into OCSF, with its raw
//! bytes, source, plugin version, stage and reason, as JSON lines in
//! `dead-letters/<source>/<YYYYMMDD>/<gateway run>.jsonl` (the day the gateway received it).
//! Made durable with the write-ahead log, before the acknowledgement that counts them.
//! `lakegate dead-letters replay` sends them through the source's (fixed) plugin again and
//! lists their ids in `dead-letters/<source>/replayed.txt`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use lakegate_plugin_sdk::Manifest;
use serde::{Deserialize, Serialize};

use crate::host::PluginInfo;

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Unique id (UUIDv7).
    pub id: String,
    /// When the gateway received the record, Unix milliseconds.
    pub received_ms: i64,
    pub source: String,
    pub plugin: String,
    pub plugin_version: String,
    pub plugin_sha256: String,
    /// The framing the record was cut with.
    pub framing: String,
    /// `framing`, `translation`, `validation`, `plugin` or `lake`.
    pub stage: String,
    /// 0-based Record index in its stream, and 1-based log record inside it.
    pub record: u64,
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub reason: String,
    /// The raw bytes when they are UTF-8 ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// ... and base64 otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    /// The record's metadata, as the client sent it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The records of the same stream it may depend on (e.g. the header line naming its
    /// fields), oldest first; replay sends them ahead of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<Raw>,
}

/// Bytes kept exactly: a string when they are UTF-8, `{"base64": "..."}` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Raw {
    Text(String),
    Base64 { base64: String },
}

impl Raw {
    pub fn new(bytes: &[u8]) -> Raw {
        match std::str::from_utf8(bytes) {
            Ok(text) => Raw::Text(text.to_string()),
            Err(_) => Raw::Base64 {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Raw::Text(text) => text.as_bytes().to_vec(),
            Raw::Base64 { base64 } => decode_base64(base64),
        }
    }
}

/// Base64 text as bytes; empty if it was edited into something invalid.
fn decode_base64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

impl DeadLetter {
    /// A letter with a fresh id and time, naming the plugin of `source` when there is one, with
    /// its raw bytes; framing, position and metadata are left empty for the caller to set.
    pub fn new(
        source: &str,
        plugin: Option<(&Manifest, &PluginInfo)>,
        stage: &str,
        reason: String,
        raw: &[u8],
    ) -> DeadLetter {
        let mut letter = DeadLetter {
            id: uuid::Uuid::now_v7().to_string(),
            received_ms: crate::pipeline::now_ms(),
            source: source.to_string(),
            plugin: plugin.map(|(m, _)| m.name.clone()).unwrap_or_default(),
            plugin_version: plugin.map(|(m, _)| m.version.clone()).unwrap_or_default(),
            plugin_sha256: plugin.map(|(_, i)| i.sha256.clone()).unwrap_or_default(),
            framing: String::new(),
            stage: stage.to_string(),
            record: 0,
            line: 0,
            path: None,
            reason,
            raw: None,
            raw_base64: None,
            metadata: BTreeMap::new(),
            context: Vec::new(),
        };
        letter.set_raw(raw);
        letter
    }

    /// Stores `raw` in whichever field keeps it exactly.
    pub fn set_raw(&mut self, raw: &[u8]) {
        match Raw::new(raw) {
            Raw::Text(text) => self.raw = Some(text),
            Raw::Base64 { base64 } => self.raw_base64 = Some(base64),
        }
    }

    /// The raw bytes.
    pub fn raw_bytes(&self) -> Vec<u8> {
        match (&self.raw, &self.raw_base64) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(base64)) => decode_base64(base64),
            (None, None) => Vec::new(),
        }
    }
}

/// Appends dead letters for one gateway run.
pub struct DeadLetterWriter {
    root: PathBuf,
    run: String,
    files: HashMap<(String, String), File>,
    unsynced: HashSet<(String, String)>,
}

impl DeadLetterWriter {
    /// Writes under `lake/dead-letters/`; `run` names this run's files.
    pub fn new(lake: &Path, run: &str) -> DeadLetterWriter {
        DeadLetterWriter {
            root: lake.join("dead-letters"),
            run: run.to_string(),
            files: HashMap::new(),
            unsynced: HashSet::new(),
        }
    }

    /// Appends letters (durable after [`DeadLetterWriter::sync`]).
    pub fn append(&mut self, letters: &[DeadLetter]) -> std::io::Result<()> {
        for letter in letters {
            let day = crate::lake::day_string(letter.received_ms.div_euclid(86_400_000));
            let key = (letter.source.clone(), day);
            if !self.files.contains_key(&key) {
                let dir = self.root.join(&key.0).join(&key.1);
                std::fs::create_dir_all(&dir)?;
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("{}.jsonl", self.run)))?;
                self.files.insert(key.clone(), file);
            }
            let mut line = serde_json::to_vec(letter).map_err(std::io::Error::other)?;
            line.push(b'\n');
            (&self.files[&key]).write_all(&line)?;
            self.unsynced.insert(key);
        }
        Ok(())
    }

    /// fsyncs every file appended to since the last call.
    pub fn sync(&mut self) -> std::io::Result<()> {
        for key in self.unsynced.drain() {
            self.files[&key].sync_data()?;
        }
        Ok(())
    }
}

/// Dead letters in a lake not yet replayed, oldest file first; `source` narrows to one source.
pub fn read(lake: &Path, source: Option<&str>) -> std::io::Result<Vec<DeadLetter>> {
    let root = lake.join("dead-letters");
    let mut letters = Vec::new();
    let Ok(sources) = std::fs::read_dir(&root) else {
        return Ok(letters);
    };
    let mut sources: Vec<PathBuf> = sources.filter_map(|e| e.ok().map(|e| e.path())).collect();
    sources.sort();
    for dir in sources {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !dir.is_dir() || source.is_some_and(|s| s != name) {
            continue;
        }
        let replayed = replayed_ids(&dir)?;
        let mut files = Vec::new();
        for day in std::fs::read_dir(&dir)? {
            let day = day?.path();
            if day.is_dir() {
                for f in std::fs::read_dir(&day)? {
                    files.push(f?.path());
                }
            }
        }
        files.sort();
        for file in files {
            for line in std::io::BufReader::new(File::open(&file)?).lines() {
                let line = line?;
                // A line cut by a crash was never acknowledged: skip it.
                if let Ok(letter) = serde_json::from_str::<DeadLetter>(&line) {
                    if !replayed.contains(&letter.id) {
                        letters.push(letter);
                    }
                }
            }
        }
    }
    Ok(letters)
}

fn replayed_ids(source_dir: &Path) -> std::io::Result<HashSet<String>> {
    match std::fs::read_to_string(source_dir.join("replayed.txt")) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

/// Records that these letters of `source` were replayed, so they are not listed again.
pub fn mark_replayed<'a>(
    lake: &Path,
    source: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> std::io::Result<()> {
    let dir = lake.join("dead-letters").join(source);
    std::fs::create_dir_all(&dir)?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("replayed.txt"))?;
    let mut text = String::new();
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(id: &str, raw: &[u8]) -> DeadLetter {
        DeadLetter {
            id: id.into(),
            received_ms: 1_714_521_600_000,
            framing: "json-lines".into(),
            line: 1,
            ..DeadLetter::new("s", None, "framing", "bad".into(), raw)
        }
    }

    #[test]
    fn letters_keep_raw_bytes_exactly_and_replayed_ones_are_hidden() {
        let lake = std::env::temp_dir().join(format!("lakegate-dl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&lake);
        let mut w = DeadLetterWriter::new(&lake, "run1");
        let mut b = letter("b", b"\xff\xfe");
        b.context = vec![Raw::new(b"version srcaddr"), Raw::new(b"\x00\xff")];
        w.append(&[letter("a", b"text"), b]).unwrap();
        w.sync().unwrap();
        let read_back = read(&lake, None).unwrap();
        assert_eq!(read_back.len(), 2);
        assert_eq!(read_back[0].raw.as_deref(), Some("text"));
        assert_eq!(read_back[1].raw_bytes(), b"\xff\xfe");
        assert!(read_back[0].context.is_empty());
        let context: Vec<Vec<u8>> = read_back[1].context.iter().map(Raw::bytes).collect();
        assert_eq!(context, [&b"version srcaddr"[..], b"\x00\xff"]);
        assert!(lake.join("dead-letters/s/20240501/run1.jsonl").is_file());
        mark_replayed(&lake, "s", ["a"]).unwrap();
        let left = read(&lake, Some("s")).unwrap();
        assert_eq!(
            left.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert!(read(&lake, Some("other")).unwrap().is_empty());
        std::fs::remove_dir_all(&lake).unwrap();
    }
}
