//! Splits a raw input stream into records, per [`Framing`], before any plugin code runs.

use serde_json::value::RawValue;

use crate::Framing;

/// The default limit on one record's size: larger records are rejected at framing.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// One record cut from the input, or the reason it could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    /// 1-based record number in the input: the line for line framings, the array element
    /// for `json-records`.
    pub number: u64,
    /// The record's bytes, or why framing refused it.
    pub record: Result<&'a [u8], FramingError>,
    /// The bytes framing looked at: the record, or what it refused (for the dead-letter area).
    pub raw: &'a [u8],
}

/// Why the host refused input before it reached a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A record over the size limit.
    #[error("record of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// A line framing got bytes that are not UTF-8.
    #[error("record is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 { offset: usize },
    /// A `json-records` input that is not a JSON array or `{"Records": [...]}` object.
    #[error("input is not a JSON array or an object with a `Records` array: {reason}")]
    NotRecords { reason: String },
}

/// Splits `input` into records. Never fails as a whole: every problem is one [`Framed`] error
/// that carries its record number, so the rest of the input still flows.
pub fn split(input: &[u8], framing: Framing, max_record_bytes: usize) -> Vec<Framed<'_>> {
    match framing {
        Framing::JsonLines | Framing::TextLines | Framing::Syslog => lines(input, max_record_bytes),
        Framing::JsonRecords => json_records(input, max_record_bytes),
    }
}

/// The pieces of `data` between `\n` bytes, as `data.split(|&b| b == b'\n')` gives them (an
/// empty last piece after a final newline included), found with SIMD rather than byte by byte:
/// every input line and every line of plugin output goes through here.
pub(super) fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', data)
        .chain(std::iter::once(data.len()))
        .map(move |end| {
            let line = &data[start..end];
            start = end + 1;
            line
        })
}

fn lines(input: &[u8], max: usize) -> Vec<Framed<'_>> {
    let mut out = Vec::new();
    for (i, line) in split_lines(input).enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = if line.len() > max {
            Err(FramingError::TooLarge {
                size: line.len(),
                limit: max,
            })
        } else {
            std::str::from_utf8(line)
                .map(str::as_bytes)
                .map_err(|e| FramingError::InvalidUtf8 {
                    offset: e.valid_up_to(),
                })
        };
        out.push(Framed {
            number: i as u64 + 1,
            record,
            raw: line,
        });
    }
    out
}

#[derive(serde::Deserialize)]
struct RecordsObject<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

fn json_records(input: &[u8], max: usize) -> Vec<Framed<'_>> {
    let parsed: Result<Vec<&RawValue>, String> = match input
        .iter()
        .find(|b| !b.is_ascii_whitespace())
    {
        Some(b'[') => serde_json::from_slice::<Vec<&RawValue>>(input).map_err(|e| e.to_string()),
        Some(b'{') => serde_json::from_slice::<RecordsObject<'_>>(input)
            .map(|o| o.records)
            .map_err(|e| e.to_string()),
        Some(_) => Err("it starts with neither `[` nor `{`".into()),
        None => Ok(Vec::new()),
    };
    match parsed {
        Ok(records) => records
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let bytes = raw.get().as_bytes();
                let record = if bytes.len() > max {
                    Err(FramingError::TooLarge {
                        size: bytes.len(),
                        limit: max,
                    })
                } else {
                    Ok(bytes)
                };
                Framed {
                    number: i as u64 + 1,
                    record,
                    raw: bytes,
                }
            })
            .collect(),
        Err(reason) => vec![Framed {
            number: 1,
            record: Err(FramingError::NotRecords { reason }),
            raw: input,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(framed: &[Framed<'_>]) -> Vec<(u64, String)> {
        framed
            .iter()
            .filter_map(|f| {
                f.record
                    .as_ref()
                    .ok()
                    .map(|r| (f.number, String::from_utf8_lossy(r).into_owned()))
            })
            .collect()
    }

    #[test]
    fn lines_are_cut_exactly_as_slice_split_cuts_them() {
        let long = "x".repeat(100) + "\n" + &"y".repeat(70);
        for input in [
            "",
            "\n",
            "a",
            "a\n",
            "\n\na\r\n\nb",
            "a\nb\n\n",
            long.as_str(),
        ] {
            let ours: Vec<&[u8]> = split_lines(input.as_bytes()).collect();
            let std: Vec<&[u8]> = input.as_bytes().split(|&b| b == b'\n').collect();
            assert_eq!(ours, std, "{input:?}");
        }
    }

    #[test]
    fn lines_keep_their_numbers_and_skip_blanks() {
        let framed = split(b"a\r\n\n  \nb\nc", Framing::TextLines, 10);
        assert_eq!(
            ok(&framed),
            vec![(1, "a".into()), (4, "b".into()), (5, "c".into())]
        );
    }

    #[test]
    fn bad_lines_are_errors_that_do_not_stop_the_rest() {
        let framed = split(b"ok\n\xff\xfe\n0123456789abc\nlast", Framing::JsonLines, 10);
        assert_eq!(
            framed[1].record,
            Err(FramingError::InvalidUtf8 { offset: 0 })
        );
        assert_eq!(
            framed[2].record,
            Err(FramingError::TooLarge {
                size: 13,
                limit: 10
            })
        );
        assert_eq!(ok(&framed), vec![(1, "ok".into()), (4, "last".into())]);
    }

    #[test]
    fn json_records_accepts_both_shapes() {
        assert_eq!(
            ok(&split(
                br#"{"Records": [{"a":1}, {"b":2}]}"#,
                Framing::JsonRecords,
                100
            )),
            vec![(1, r#"{"a":1}"#.into()), (2, r#"{"b":2}"#.into())]
        );
        assert_eq!(
            ok(&split(br#" [ {"a":1} ]"#, Framing::JsonRecords, 100)),
            vec![(1, r#"{"a":1}"#.into())]
        );
    }

    #[test]
    fn malformed_json_records_is_one_error() {
        let framed = split(br#"{"Records": [{"a":1}"#, Framing::JsonRecords, 100);
        assert_eq!(framed.len(), 1);
        assert!(
            matches!(&framed[0].record, Err(FramingError::NotRecords { reason }) if reason.contains("EOF"))
        );
        assert!(matches!(
            &split(b"hello", Framing::JsonRecords, 100)[0].record,
            Err(FramingError::NotRecords { .. })
        ));
    }
}
