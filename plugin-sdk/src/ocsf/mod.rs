//! Typed OCSF 1.1.0 builders generated from the schema, and helpers for timestamps, IPs and `unmapped`.

mod generated;
mod json;
pub mod time;
mod unmapped;

pub use generated::*;
pub use json::Json;
pub use unmapped::Unmapped;

/// An OCSF event class. Implemented by every generated class type.
pub trait Event: serde::Serialize {
    /// The OCSF `class_uid`.
    const CLASS_UID: u32;
    /// The `activity_id` of this record.
    fn activity_id(&self) -> i32;
    /// The record's `time` in epoch milliseconds.
    fn time(&self) -> Option<i64>;
}

/// A `metadata` object for this OCSF version with the product filled in.
pub fn metadata(vendor: &str, product: &str) -> Metadata {
    Metadata {
        version: Some(OCSF_VERSION.into()),
        product: Some(Product {
            vendor_name: Some(vendor.into()),
            name: Some(product.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
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
    s.trim()
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}
