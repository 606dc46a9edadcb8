//! Sizes and durations as people write them on a command line or in fstab:
//! `512M`, `1G`, `1.5G`, `30s`, `5m`, `1h`, `250ms`. A bare number keeps the
//! meaning the options always had: MiB for sizes, seconds for durations.
//!
//! Written here rather than taken from a crate: the crates that parse sizes
//! read `1G` as 10⁹ bytes and the duration crates refuse fractions (`1.5`,
//! `0.5s`) and bare numbers, which the mount's options have always accepted.

use std::time::Duration;

/// Bytes from a size: a number (MiB) or a number and a binary unit
/// (`K`, `M`, `G`, `T`, `P`, optionally followed by `iB` or `B`: all powers
/// of 1024). The mount's sizes, which were always MiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_size_with(s, 20, "write MiB as a number, or with a unit: 512M, 1G, 1.5G, 64K")
}

/// [`parse_size`] where a bare number is bytes (`4096`): quotas, as Pithos
/// counts them.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size_with(s, 0, "write bytes as a number, or with a unit: 512M, 10G, 1.5T")
}

fn parse_size_with(s: &str, bare_shift: u32, hint: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a size: {hint}");
    let (digits, unit) = split_number(s.trim()).ok_or_else(bad)?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" => bare_shift,
        "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => return Err(bad()),
    };
    let too_large = || format!("{s:?} is too large a size");
    // Whole numbers exactly; fractions through f64.
    if let Ok(n) = digits.parse::<u64>() {
        return n.checked_mul(1u64 << shift).ok_or_else(too_large);
    }
    let number: f64 = digits.parse().map_err(|_| bad())?;
    let bytes = number * (1u64 << shift) as f64;
    // u64::MAX as f64 rounds up to 2^64: `<` keeps the cast exact.
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(too_large());
    }
    Ok(bytes.round() as u64)
}

/// `1536` → `1.5 KiB`: binary units, as `ls -h` and kamaki show them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    // 1023.99 TiB prints as 1.0 PiB, not 1024 TiB.
    while value.round() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A duration: a number (seconds) or a number and a unit (`ms`, `s`, `m`, `h`, `d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: write seconds as a number, or with a unit: 30s, 5m, 1h, 250ms");
    let (digits, unit) = split_number(s.trim()).ok_or_else(bad)?;
    let number: f64 = digits.parse().map_err(|_| bad())?;
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

/// A non-negative decimal number (its digits) and what follows it (the unit,
/// spaces before it allowed).
fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (digits, unit) = s.split_at(end);
    // `f64::from_str` takes "inf", "1e9" and signs: only digits with one optional point here.
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return None;
    }
    Some((digits, unit.trim_start()))
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

    #[test]
    fn quota_sizes_are_bytes_and_print_in_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("10GiB"), Ok(10 << 30));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("20000P").is_err());
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("1.2.3G").is_err());
        assert!(parse_bytes("-1G").is_err());
        assert!(parse_bytes("").is_err());
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300 << 20), "300 MiB");
        assert_eq!(human_bytes(u64::MAX), "16 EiB");
        assert_eq!(human_bytes((1 << 50) - 56), "1.0 PiB");
    }
}
