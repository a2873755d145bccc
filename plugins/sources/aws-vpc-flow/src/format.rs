//! Flow log formats: the fields a line holds, in order, from a header line or the default.

use std::cell::RefCell;

/// A flow log field of versions 2 to 8, or one this plugin does not know (kept in `unmapped`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Version,
    AccountId,
    InterfaceId,
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Packets,
    Bytes,
    Start,
    End,
    Action,
    LogStatus,
    VpcId,
    SubnetId,
    InstanceId,
    TcpFlags,
    Type,
    PktSrcAddr,
    PktDstAddr,
    Region,
    AzId,
    PktSrcAwsService,
    PktDstAwsService,
    FlowDirection,
    TrafficPath,
    RejectReason,
    Other(String),
}

const KNOWN: &[(&str, Field)] = &[
    ("version", Field::Version),
    ("account-id", Field::AccountId),
    ("interface-id", Field::InterfaceId),
    ("srcaddr", Field::SrcAddr),
    ("dstaddr", Field::DstAddr),
    ("srcport", Field::SrcPort),
    ("dstport", Field::DstPort),
    ("protocol", Field::Protocol),
    ("packets", Field::Packets),
    ("bytes", Field::Bytes),
    ("start", Field::Start),
    ("end", Field::End),
    ("action", Field::Action),
    ("log-status", Field::LogStatus),
    ("vpc-id", Field::VpcId),
    ("subnet-id", Field::SubnetId),
    ("instance-id", Field::InstanceId),
    ("tcp-flags", Field::TcpFlags),
    ("type", Field::Type),
    ("pkt-srcaddr", Field::PktSrcAddr),
    ("pkt-dstaddr", Field::PktDstAddr),
    ("region", Field::Region),
    ("az-id", Field::AzId),
    ("pkt-src-aws-service", Field::PktSrcAwsService),
    ("pkt-dst-aws-service", Field::PktDstAwsService),
    ("flow-direction", Field::FlowDirection),
    ("traffic-path", Field::TrafficPath),
    ("reject-reason", Field::RejectReason),
];

/// Fields of versions 7 and 8 with no OCSF 1.1.0 home, accepted in headers and kept unmapped.
const UNMAPPED: &[&str] = &[
    "sublocation-type",
    "sublocation-id",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
];

impl Field {
    /// The field a header token names (`_` and `-` spellings, Parquet's and text's, alike),
    /// without allocating for the tokens of data lines, which every line's first token is
    /// checked as.
    fn from_name(token: &str) -> Option<Field> {
        let named = |name: &str| {
            name.len() == token.len()
                && name
                    .bytes()
                    .zip(token.bytes())
                    .all(|(n, t)| n == t || (n == b'-' && t == b'_'))
        };
        if let Some((_, f)) = KNOWN.iter().find(|(n, _)| named(n)) {
            return Some(f.clone());
        }
        UNMAPPED
            .iter()
            .find(|n| named(n))
            .map(|name| Field::Other(name.to_string()))
    }

    /// The field's flow-log name, for messages.
    pub(crate) fn name(&self) -> &str {
        match self {
            Field::Other(name) => name,
            known => KNOWN
                .iter()
                .find(|(_, f)| f == known)
                .map_or("?", |(n, _)| n),
        }
    }
}

/// The fields of each line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format {
    pub(crate) fields: Vec<Field>,
}

impl Format {
    /// The default (version 2) format.
    fn default_v2() -> Format {
        Format {
            fields: KNOWN[..14].iter().map(|(_, f)| f.clone()).collect(),
        }
    }

    /// `Some` when `line` is a header line: its first token is a field name rather than data.
    /// The result says whether every token is a known field.
    pub(crate) fn parse_header(line: &str) -> Option<Result<Format, String>> {
        let first = values(line).next()?;
        // Every field name starts with a lowercase letter; a data line mostly starts with its
        // version number, which spares looking it up among the names.
        if !first.starts_with(|c: char| c.is_ascii_lowercase()) {
            return None;
        }
        Field::from_name(first)?;
        let mut fields = Vec::new();
        for token in values(line) {
            match Field::from_name(token) {
                Some(f) => fields.push(f),
                None => {
                    return Some(Err(format!(
                        "header line names an unknown flow log field `{token}`"
                    )))
                }
            }
        }
        if fields.len() > MAX_FIELDS {
            return Some(Err(format!(
                "header line names {} fields, more than the {MAX_FIELDS} a line may hold",
                fields.len()
            )));
        }
        Some(Ok(Format { fields }))
    }

    /// The field names, for messages.
    pub(crate) fn describe(&self) -> String {
        self.fields
            .iter()
            .map(Field::name)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

thread_local! {
    /// The last header seen and its parsed format, so each line does not re-parse it.
    static CACHE: RefCell<Option<(Vec<u8>, Format)>> = const { RefCell::new(None) };
}

/// Runs `f` with the format named by the stream's carried header, or the default format.
pub(crate) fn with_format<T>(carry: Option<&[u8]>, f: impl FnOnce(&Format) -> T) -> T {
    let Some(header) = carry else {
        return f(&Format::default_v2());
    };
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.as_ref().is_none_or(|(h, _)| h != header) {
            let format = std::str::from_utf8(header)
                .ok()
                .and_then(Format::parse_header)
                .and_then(Result::ok)
                .unwrap_or_else(Format::default_v2);
            *cache = Some((header.to_vec(), format));
        }
        f(&cache.as_ref().expect("cache was just filled").1)
    })
}

/// The most fields a format may have (every known field is 40).
const MAX_FIELDS: usize = 64;

/// The values of a line, separated by ASCII whitespace (`split_ascii_whitespace` was a fifth
/// of the plugin's instructions).
pub(crate) fn values(line: &str) -> impl Iterator<Item = &str> {
    let bytes = line.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        let start = at;
        at = value_end(bytes, at);
        (at > start).then(|| &line[start..at])
    })
}

/// Where the value from `at` ends: at the next ASCII whitespace, or the end of the line. Eight
/// bytes at a time while it can: every whitespace byte is at most 0x20, so a word without such
/// a byte is passed over whole (a byte loop was a third of the plugin's instructions).
fn value_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(chunk) = bytes.get(at..at + 8) {
        let low = at_most_space(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        if low == 0 {
            at += 8;
            continue;
        }
        // The lowest flag is exact: a false one only ever follows a true one.
        at += (low.trailing_zeros() / 8) as usize;
        if bytes[at].is_ascii_whitespace() {
            return at;
        }
        // A control character, part of the value.
        at += 1;
    }
    while bytes.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// The high bit of each of the eight bytes in `word` (little-endian) that is at most 0x20, by
/// the classic "has a byte below n" test; bytes after the first flagged one may be flagged
/// falsely.
const fn at_most_space(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    word.wrapping_sub(ONES * 0x21) & !word & (ONES * 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_split_at_any_ascii_whitespace() {
        for line in [
            "",
            " ",
            "a",
            " a\tb  c\r\n",
            "2 eni-1 - 10.0.0.1\x0c443",
            // Values longer than a word, a control byte inside one, a multi-byte character.
            "123456789012345678 eni-0123456789abcdef0\t\t10.0.0.1\x01x 7é9abcdefgh  ",
            "abcdefg\x0bhijklmnop\x1fqrstuvwx yz",
        ] {
            assert_eq!(
                values(line).collect::<Vec<_>>(),
                line.split_ascii_whitespace().collect::<Vec<_>>(),
                "{line:?}"
            );
        }
    }

    #[test]
    fn headers_are_recognised_by_their_first_token() {
        let header = Format::parse_header("version vpc-id subnet-id tcp-flags pkt_srcaddr")
            .unwrap()
            .unwrap();
        assert_eq!(
            header.fields,
            vec![
                Field::Version,
                Field::VpcId,
                Field::SubnetId,
                Field::TcpFlags,
                Field::PktSrcAddr
            ]
        );
        assert!(Format::parse_header("2 123456789010 eni-1235b8ca").is_none());
        assert_eq!(
            Format::parse_header("version bogus").unwrap().unwrap_err(),
            "header line names an unknown flow log field `bogus`"
        );
    }

    #[test]
    fn the_default_is_the_fourteen_v2_fields() {
        let d = Format::default_v2();
        assert_eq!(d.fields.len(), 14);
        assert_eq!(d.fields.last(), Some(&Field::LogStatus));
    }
}
