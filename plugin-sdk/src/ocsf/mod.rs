//! Typed OCSF 1.1.0 builders generated from the schema, and helpers for timestamps, IPs and `unmapped`.

mod generated;
mod json;
pub mod time;
mod unmapped;
mod write;

pub use generated::*;
pub use json::{Json, RawJson};
pub use time::Datetime;
pub use unmapped::Unmapped;
pub use write::{RowObject, WriteRow};

/// An OCSF event class. Implemented by every generated class type.
pub trait Event: WriteRow {
    /// The OCSF `class_uid`.
    const CLASS_UID: u32;
    /// The `activity_id` of this record.
    fn activity_id(&self) -> i32;
    /// The record's `time` in epoch milliseconds.
    fn time(&self) -> Option<i64>;
}

/// A `metadata` object for this OCSF version with the product filled in.
pub fn metadata(vendor: &str, product: &str) -> Box<Metadata> {
    Box::new(Metadata {
        version: Some(OCSF_VERSION.into()),
        product: Some(Box::new(Product {
            vendor_name: Some(vendor.into()),
            name: Some(product.into()),
            ..Default::default()
        })),
        ..Default::default()
    })
}

/// The longest string OCSF 1.1.0 allows (`string_t`'s `max_len`).
pub const MAX_STRING_BYTES: usize = 65_535;

/// `value` cut to OCSF's string limit on a character boundary. When it is cut, the whole value
/// is kept in `unmapped` under `source_key`, so nothing is lost.
pub fn fit_string(source_key: &str, value: String, unmapped: &mut Unmapped) -> String {
    if value.len() <= MAX_STRING_BYTES {
        return value;
    }
    let mut end = MAX_STRING_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let cut = value[..end].to_string();
    unmapped.insert(source_key, value);
    cut
}

/// The IP address in `s` in canonical form, or `None` when `s` is not an IPv4 or IPv6 address.
pub fn ip(s: &str) -> Option<String> {
    let s = s.trim();
    match s.parse::<std::net::IpAddr>().ok()? {
        // The IPv4 parser takes only the dotted-decimal form without leading zeros, which is
        // already canonical: no formatting needed.
        std::net::IpAddr::V4(_) => Some(s.to_string()),
        ip => Some(ip.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::ip;

    #[test]
    fn addresses_come_out_canonical() {
        assert_eq!(ip(" 192.0.2.1 ").as_deref(), Some("192.0.2.1"));
        assert_eq!(ip("2001:DB8:0:0::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("::ffff:192.0.2.1").as_deref(), Some("::ffff:192.0.2.1"));
        // Leading zeros could mean octal: not an address, so no IPv4 text needs rewriting.
        assert_eq!(ip("010.0.0.1"), None);
        assert_eq!(ip("192.0.2"), None);
        assert_eq!(ip("cloudformation.amazonaws.com"), None);
    }
}
