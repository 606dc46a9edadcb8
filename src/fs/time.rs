//! File times, exact to the nanosecond.
//!
//! A time set with `utimensat` (or `touch -d`, `cp -p`, `tar`, `rsync -t`)
//! must read back exactly: a 64-bit float of seconds holds only about a
//! quarter of a microsecond at today's dates, so times are kept as whole
//! seconds and nanoseconds, and the metadata form (`"1600000000.500000000"`)
//! is read and written as decimal digits, never through a float.
//!
//! Every time here is a sane one: between the epoch and 9999-12-31T23:59:59Z
//! (what a server says outside that range is clamped into it).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch and nanoseconds within the second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    secs: u64,
    nanos: u32,
}

const NANOS_PER_SEC: u32 = 1_000_000_000;

impl Time {
    pub const EPOCH: Time = Time { secs: 0, nanos: 0 };
    /// The latest time shown, 9999-12-31T23:59:59Z.
    pub const MAX: Time = Time { secs: 253_402_300_799, nanos: 0 };

    /// A time from its parts, clamped into the sane range (nanoseconds past
    /// a second carry into the seconds).
    pub fn new(secs: u64, nanos: u32) -> Time {
        let secs = secs.saturating_add(u64::from(nanos / NANOS_PER_SEC));
        Time { secs, nanos: nanos % NANOS_PER_SEC }.min(Time::MAX)
    }

    pub fn now() -> Time {
        Time::from_system(SystemTime::now())
    }

    /// A time from the system's (before the epoch reads as the epoch).
    pub fn from_system(t: SystemTime) -> Time {
        t.duration_since(UNIX_EPOCH).map(|d| Time::new(d.as_secs(), d.subsec_nanos())).unwrap_or(Time::EPOCH)
    }

    pub fn to_system(self) -> SystemTime {
        UNIX_EPOCH + Duration::new(self.secs, self.nanos)
    }

    /// A time given in seconds as a float (a server's Last-Modified): None
    /// when it is no number (NaN, infinite), else clamped.
    pub fn from_secs_f64(t: f64) -> Option<Time> {
        if !t.is_finite() {
            return None;
        }
        if t <= 0.0 {
            return Some(Time::EPOCH);
        }
        if t >= Time::MAX.secs as f64 {
            return Some(Time::MAX);
        }
        // In range: the cast cannot overflow, and the fraction is below 1.
        let secs = t.trunc() as u64;
        let nanos = ((t - t.trunc()) * f64::from(NANOS_PER_SEC)).round() as u32;
        Some(Time::new(secs, nanos.min(NANOS_PER_SEC - 1)))
    }

    /// A time as the metadata holds it: decimal seconds with up to nine
    /// digits after the point, read exactly (digits past the ninth are
    /// dropped). Other number forms a server may hold ("-5", "1e9") are read
    /// as floats and clamped; anything else (NaN, "inf", "x", "") is None.
    pub fn parse(s: &str) -> Option<Time> {
        let s = s.trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if !whole.is_empty() && digits(whole) && digits(frac) {
            // Seconds past u64 are past MAX anyway.
            let secs = whole.parse::<u64>().unwrap_or(u64::MAX);
            let mut nanos = 0u32;
            for (i, b) in frac.bytes().take(9).enumerate() {
                nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
            }
            return Some(Time::new(secs, nanos));
        }
        s.parse::<f64>().ok().and_then(Time::from_secs_f64)
    }

    /// Whole seconds since the epoch.
    pub fn secs(self) -> u64 {
        self.secs
    }

    pub fn nanos(self) -> u32 {
        self.nanos
    }

    /// Seconds as a float, for what needs no exactness (comparisons in
    /// tests, names of conflict copies).
    pub fn as_secs_f64(self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / f64::from(NANOS_PER_SEC)
    }
}

/// The metadata form: `"1600000000.500000000"`.
impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs, self.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_form_round_trips_exactly() {
        for s in ["1600000000.500000000", "1900000000.100000000", "0.000000001", "253402300799.000000000"] {
            assert_eq!(Time::parse(s).map(|t| t.to_string()).as_deref(), Some(s));
        }
        // what a float would lose is kept
        let t = Time::parse("1900000000.1").unwrap();
        assert_eq!((t.secs(), t.nanos()), (1_900_000_000, 100_000_000));
        assert_eq!(Time::parse("12").map(|t| (t.secs(), t.nanos())), Some((12, 0)));
        assert_eq!(Time::parse("12.").map(|t| (t.secs(), t.nanos())), Some((12, 0)));
        assert_eq!(Time::parse(" 7.25 ").map(|t| (t.secs(), t.nanos())), Some((7, 250_000_000)));
        // digits past the ninth are dropped, not rounded into the next second
        assert_eq!(Time::parse("5.9999999999").map(|t| (t.secs(), t.nanos())), Some((5, 999_999_999)));
        // system time round trip
        let t = Time::new(1_700_000_000, 123_456_789);
        assert_eq!(Time::from_system(t.to_system()), t);
    }

    #[test]
    fn what_a_server_says_is_bounded() {
        assert_eq!(Time::parse("1e300"), Some(Time::MAX));
        assert_eq!(Time::parse("99999999999999999999999999.5"), Some(Time::MAX));
        assert_eq!(Time::parse("253402300800"), Some(Time::MAX));
        assert_eq!(Time::parse("-5"), Some(Time::EPOCH));
        assert_eq!(Time::parse("-0.5"), Some(Time::EPOCH));
        assert_eq!(Time::parse("1e9").map(Time::secs), Some(1_000_000_000));
        for not_a_time in ["NaN", "inf", "-inf", "x", "", ".", ".5x", "1.2.3", "+", "1_000", "1.5e"] {
            assert_eq!(Time::parse(not_a_time), None, "{not_a_time}");
        }
        assert_eq!(Time::from_secs_f64(f64::NAN), None);
        assert_eq!(Time::from_secs_f64(f64::INFINITY), None);
        assert_eq!(Time::from_secs_f64(-1.0), Some(Time::EPOCH));
        assert_eq!(Time::from_secs_f64(f64::MAX), Some(Time::MAX));
        assert_eq!(Time::from_secs_f64(1.5).map(|t| (t.secs(), t.nanos())), Some((1, 500_000_000)));
        assert_eq!(Time::new(u64::MAX, u32::MAX), Time::MAX);
    }
}
