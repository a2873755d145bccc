//! `memcmp` for plugin components, eight bytes at a time.
//!
//! `wasm32-unknown-unknown` has no C library: the `memcmp` behind every string comparison (`==`
//! on strings of equal length, `match` on text, ordered keys) comes from Rust's
//! `compiler_builtins`, a loop over single bytes. In a component every turn of that loop also
//! pays the sandbox's deadline check, and comparing member names and event names made it 4 % of
//! the gateway's CPU time on CloudTrail (perf, component symbols via wasmtime's perf map). This
//! one compares words and falls back to bytes only to order the first difference. Its symbol
//! takes the place of `compiler_builtins`' weak one when the component is linked.

/// How `a` and `b` compare: the difference of their first unequal bytes, or 0.
pub fn compare(a: &[u8], b: &[u8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
    let mut at = 0;
    while at + 8 <= n {
        let diff = word(a, at) ^ word(b, at);
        if diff != 0 {
            // Little-endian: the lowest set bit lies in the first unequal byte.
            let i = at + (diff.trailing_zeros() / 8) as usize;
            return i32::from(a[i]) - i32::from(b[i]);
        }
        at += 8;
    }
    // Fewer than eight bytes left: one at a time.
    for i in at..n {
        if a[i] != b[i] {
            return i32::from(a[i]) - i32::from(b[i]);
        }
    }
    0
}

/// The C `memcmp` of the component, over [`compare`].
///
/// # Safety
/// `a` and `b` point to `n` readable bytes each (the C contract).
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n == 0 {
        return 0;
    }
    // SAFETY: the caller guarantees `n` readable bytes behind each pointer.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, n),
            std::slice::from_raw_parts(b, n),
        )
    };
    compare(a, b)
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn orders_like_the_bytes_themselves() {
        let texts: [&[u8]; 10] = [
            b"",
            b"a",
            b"b",
            b"eventName",
            b"eventNamf",
            b"userIdentity.arn",
            b"userIdentity.arm",
            b"requestParameters",
            b"requestParametert",
            b"\xff\x00abcdefgh",
        ];
        for a in texts {
            for b in texts {
                let n = a.len().min(b.len());
                let (a, b) = (&a[..n], &b[..n]);
                assert_eq!(
                    compare(a, b).signum(),
                    a.cmp(b) as i32,
                    "{:?} {:?}",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b)
                );
            }
        }
        // Every position of a difference, within a word and in the tail.
        let base = b"0123456789abcdefghijklmnopq".to_vec();
        for i in 0..base.len() {
            let mut other = base.clone();
            other[i] = b'~';
            assert!(compare(&base, &other) < 0, "at {i}");
            assert!(compare(&other, &base) > 0, "at {i}");
            assert_eq!(compare(&other, &other), 0);
        }
    }
}
