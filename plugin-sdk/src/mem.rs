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
    if n < 8 {
        return compare_short(a, b, n);
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
    let mut at = 0;
    loop {
        // The last word ends at the last byte, overlapping the one before it: its bytes already
        // found equal stay equal, so its first unequal byte is still the first of all. Member
        // names are mostly 5-20 bytes, and a tail compared byte by byte was most of the work.
        let from = at.min(n - 8);
        if let Some(i) = first_unequal(word(a, from), word(b, from)) {
            return difference(a, b, from + i);
        }
        at += 8;
        if at >= n {
            return 0;
        }
    }
}

/// [`compare`] for fewer than eight bytes: two overlapping four-byte words, or bytes.
fn compare_short(a: &[u8], b: &[u8], n: usize) -> i32 {
    if n >= 4 {
        let word = |s: &[u8], at: usize| {
            u64::from(u32::from_le_bytes(s[at..at + 4].try_into().expect("4")))
        };
        for from in [0, n - 4] {
            if let Some(i) = first_unequal(word(a, from), word(b, from)) {
                return difference(a, b, from + i);
            }
        }
        return 0;
    }
    (0..n)
        .find(|&i| a[i] != b[i])
        .map_or(0, |i| difference(a, b, i))
}

/// The index of the first unequal byte of two little-endian words: the lowest set bit of their
/// difference lies in it.
fn first_unequal(a: u64, b: u64) -> Option<usize> {
    let diff = a ^ b;
    (diff != 0).then(|| (diff.trailing_zeros() / 8) as usize)
}

fn difference(a: &[u8], b: &[u8], i: usize) -> i32 {
    i32::from(a[i]) - i32::from(b[i])
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
        // Every length, and every position of a difference in it: within a word, in the
        // overlapping last word, in short texts; two differences, where the first decides.
        let base = b"0123456789abcdefghijklmnopq";
        for n in 0..=base.len() {
            let base = &base[..n];
            assert_eq!(compare(base, base), 0, "length {n}");
            for i in 0..n {
                let mut other = base.to_vec();
                other[i] = b'~';
                assert!(compare(base, &other) < 0, "length {n}, at {i}");
                assert!(compare(&other, base) > 0, "length {n}, at {i}");
                if let Some(last) = (i + 1..n).last() {
                    other[last] = b'!';
                    assert!(compare(base, &other) < 0, "length {n}, at {i} and {last}");
                }
            }
        }
    }
}
