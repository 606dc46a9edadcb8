//! Sizes and durations as people write them on a command line or in fstab:
//! `512M`, `1G`, `1.5G`, `30s`, `5m`, `1h`, `250ms`. A bare number keeps the
//! meaning the options always had: MiB for sizes, seconds for durations.
//!
//! Written here rather than taken from a crate: the crates that parse sizes
//! read `1G` as 10⁹ bytes and the duration crates refuse fractions (`1.5`,
//! `0.5s`) and bare numbers, which the mount's options have always accepted.

use std::time::Duration;

/// Bytes from a size: a number (MiB) or a number and a binary unit
/// (`K`, `M`, `G`, `T`, optionally followed by `iB` or `B`: all powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size: write MiB as a number, or with a unit: 512M, 1G, 1.5G, 64K");
    let (number, unit) = split_number(s.trim()).ok_or_else(bad)?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 20,
        "b" => 0,
        "k" | "kb" | "kib" => 10,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let bytes = number * (1u64 << shift) as f64;
    // u64::MAX as f64 rounds up to 2^64: `<` keeps the cast exact.
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large a size"));
    }
    Ok(bytes.round() as u64)
}

/// A duration: a number (seconds) or a number and a unit (`ms`, `s`, `m`, `h`, `d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: write seconds as a number, or with a unit: 30s, 5m, 1h, 250ms");
    let (number, unit) = split_number(s.trim()).ok_or_else(bad)?;
    let seconds = match unit {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(number * seconds).map_err(|_| format!("{s:?} is too long a duration"))
}

/// A non-negative decimal number and what follows it (the unit, spaces before it allowed).
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (digits, unit) = s.split_at(end);
    // `f64::from_str` takes "inf", "1e9" and signs: only digits with one optional point here.
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return None;
    }
    let number: f64 = digits.parse().ok()?;
    Some((number, unit.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512 << 20);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("4 GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("64K").unwrap(), 64 << 10);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("100B").unwrap(), 100);
    }

    #[test]
    fn bad_sizes() {
        for s in ["", "G", "-1G", "1X", "1.2.3G", "inf", "1e9", ".", "1GG", "99999999999999999999T"] {
            assert!(parse_size(s).is_err(), "{s:?} was taken");
        }
        assert!(parse_size("1Q").unwrap_err().contains("512M"), "the error shows how to write one");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_durations() {
        for s in ["", "s", "-5s", "5x", "5M", "1.2.3s", "nan", "1e3", "99999999999999999999999d"] {
            assert!(parse_duration(s).is_err(), "{s:?} was taken");
        }
        assert!(parse_duration("5 parsecs").unwrap_err().contains("5m"));
    }
}
