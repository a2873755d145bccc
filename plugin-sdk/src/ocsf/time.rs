//! Timestamps: RFC 3339 text to OCSF `timestamp_t` (epoch milliseconds) and back, without a clock.

/// Parses an RFC 3339 / ISO 8601 timestamp (`2024-01-02T03:04:05Z`, `...05.123+02:00`,
/// `...05.123456Z`, a space instead of `T`, no offset meaning UTC) into epoch milliseconds.
/// Fractions beyond milliseconds are truncated.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &b[r];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, rest @ ..] => {
            let rest = rest.strip_prefix(b":").unwrap_or(rest);
            let (hh, mm) = match rest {
                [] => (two(*h1, *h2)?, 0),
                [m1, m2] => (two(*h1, *h2)?, two(*m1, *m2)?),
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let total = hh * 60 + mm;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// A `datetime_t` value: epoch milliseconds, UTC. Rows carry the number; it becomes RFC 3339 text
/// (`2024-01-02T03:04:05.006Z`, [`format_rfc3339_ms`]) only where JSON is shown, and a UTC
/// millisecond timestamp in the lake, so a plugin never formats a date and the host never
/// parses one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Datetime(pub i64);

/// Formats epoch milliseconds as RFC 3339 in UTC with milliseconds, e.g. `2024-01-02T03:04:05.006Z`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hour, minute, second, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1_000 % 60,
        rem % 1_000,
    );
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z");
    }
    // Every record carries a few of these: digits written in place, no formatting machinery.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, value) in [
        (0, 4, y),
        (5, 2, m),
        (8, 2, d),
        (11, 2, hour),
        (14, 2, minute),
        (17, 2, second),
        (20, 3, milli),
    ] {
        let mut value = value;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    String::from_utf8(text.to_vec()).expect("ASCII digits and separators")
}

fn two(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2019-08-14T21:34:05Z"),
            Some(1_565_818_445_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2019-08-14T23:34:05.123+02:00"),
            Some(1_565_818_445_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2019-08-14T21:34:05.123456Z"),
            Some(1_565_818_445_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2019-08-14 16:34:05-0500"),
            Some(1_565_818_445_000)
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.5Z"), Some(-500));
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2019-13-01T00:00:00Z",
            "2019-02-30T00:00:00Z",
            "2019-08-14T21:34:05+25:00",
            "x019-08-14T21:34:05Z",
            "2019-08-14T21:34:05.Z",
            "2019-08-14T21:34:05Q",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(
            parse_rfc3339_ms("2019-08-14T21:34:05"),
            Some(1_565_818_445_000),
            "no offset means UTC"
        );
    }

    #[test]
    fn formats_like_the_general_formatter() {
        let general = |ms: i64| {
            let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
            let rem = ms.rem_euclid(86_400_000);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                rem / 3_600_000,
                rem / 60_000 % 60,
                rem / 1_000 % 60,
                rem % 1_000
            )
        };
        // From before year 0 to after 9999, in uneven steps that hit every field's digits.
        let mut ms = -70_000_000_000_000_i64;
        while ms < 260_000_000_000_000 {
            assert_eq!(format_rfc3339_ms(ms), general(ms), "{ms}");
            ms += 987_654_321_987;
        }
        assert_eq!(
            format_rfc3339_ms(1_714_549_264_007),
            "2024-05-01T07:41:04.007Z"
        );
    }

    #[test]
    fn formats_round_trip() {
        for ms in [0, 1_565_818_445_123, -500, 951_782_400_000] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        }
        assert_eq!(
            format_rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
