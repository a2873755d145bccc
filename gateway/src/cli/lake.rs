//! `lakegate lake summary`: what a lake holds, read from the files themselves (Parquet footers,
//! the dead-letter area, the catalog).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::json;

use crate::lake::{catalog, dead_letter};

#[derive(Default)]
struct Table {
    files: u64,
    rows: u64,
    bytes: u64,
    partitions: BTreeSet<PathBuf>,
}

pub(super) fn summary(lake: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    let ext = lake.join("ext");
    let mut stack = vec![ext.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let source = path
                .strip_prefix(&ext)
                .ok()
                .and_then(|p| p.iter().next())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = std::fs::File::open(&path)?;
            let bytes = file.metadata()?.len();
            let reader = SerializedFileReader::new(file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let t = tables.entry(source).or_default();
            t.files += 1;
            t.rows += reader.metadata().file_metadata().num_rows() as u64;
            t.bytes += bytes;
            t.partitions.insert(dir.clone());
        }
    }
    let letters = dead_letter::read(lake, None)?;
    let mut dead: BTreeMap<(String, String), u64> = BTreeMap::new();
    for l in &letters {
        *dead.entry((l.source.clone(), l.stage.clone())).or_default() += 1;
    }
    let catalog = catalog::Catalog::open(lake)?;
    if as_json {
        let doc = json!({
            "lake": lake.display().to_string(),
            "tables": tables.iter().map(|(name, t)| json!({
                "lake_source": name,
                "glue_table": catalog::table_name(name),
                "files": t.files,
                "partitions": t.partitions.len(),
                "rows": t.rows,
                "bytes": t.bytes,
                "catalog_partitions": catalog.table(name).map_or(0, |d| d.partitions.len()),
            })).collect::<Vec<_>>(),
            "dead_letters": dead.iter().map(|((s, st), n)| json!({"source": s, "stage": st, "count": n})).collect::<Vec<_>>(),
        });
        println!("{doc}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("lake {}", lake.display());
    println!(
        "  {:<28} {:<34} {:>6} {:>10} {:>9} {:>10}",
        "custom source (ext/...)", "catalog table", "files", "partitions", "rows", "bytes"
    );
    for (name, t) in &tables {
        println!(
            "  {:<28} {:<34} {:>6} {:>10} {:>9} {:>10}",
            name,
            format!("{}.{}", catalog::DATABASE, catalog::table_name(name)),
            t.files,
            t.partitions.len(),
            t.rows,
            t.bytes
        );
    }
    let total: u64 = tables.values().map(|t| t.rows).sum();
    println!("  total rows: {total}");
    println!("dead letters not yet replayed: {}", letters.len());
    for ((source, stage), n) in &dead {
        println!("  {source:<28} {stage:<12} {n}");
    }
    Ok(ExitCode::SUCCESS)
}
