//! Views of the store besides "now": the account as it was at a past moment
//! (`.snapshots/<moment>/…`), one version of an object by its id
//! (`.snapshots/v<ID>/PATH`), and another account's objects shared with
//! this user (`.shared/<owner name>/…`). Each node lives in one scope, told
//! by the first names of its path (`Fs::locate`); a scope other than
//! [`Scope::Now`] is reached through a store made for it
//! ([`super::store::Store::scoped`]).

use super::errno::{Errno, FsResult};

/// The folder of past moments at the mount's root: hidden from `readdir`
/// (so `find`, `du` and `rsync` of the mount stay in the present), reached
/// by name, as ZFS's `.zfs` with `snapdir=hidden`.
pub const SNAPSHOTS: &str = ".snapshots";

/// The folder of other accounts' shared objects at the mount's root (hidden
/// from `readdir` as `.snapshots` is: a walk of the mount is a walk of one's
/// own files).
pub const SHARED: &str = ".shared";

/// The latest moment taken (9999-12-31T23:59:59Z).
const MAX_MOMENT: i64 = 253_402_300_799;

/// Which view of the store a node is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The account as it is now.
    Now,
    /// The account as it was at this moment (seconds since the epoch):
    /// `until` listings and version-pinned reads. Read-only.
    AsOf(i64),
    /// Any object as it was in this version (its id): names are looked up,
    /// not listed. Read-only.
    Version(String),
    /// Another account (its UUID), as far as it shares with this user.
    Shared(String),
    /// The `.snapshots` folder itself: its entries are moments.
    Snapshots,
    /// The `.shared` folder itself: its entries are owners' names.
    Sharers,
}

impl Scope {
    /// Whether nothing in this scope can change through the mount.
    pub fn read_only(&self) -> bool {
        !matches!(self, Scope::Now | Scope::Shared(_))
    }

    /// Whether this is one of the mount's own folders of views (no store
    /// behind it).
    pub fn is_folder_of_views(&self) -> bool {
        matches!(self, Scope::Snapshots | Scope::Sharers)
    }

    /// The scope a name under `.snapshots` opens: `v<ID>` a version, else a
    /// moment (`ENOENT` for anything else: no such snapshot).
    pub fn of_snapshot_name(name: &str) -> FsResult<Scope> {
        if let Some(id) = name.strip_prefix('v') {
            if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(Scope::Version(id.to_string()));
            }
            return Err(Errno::NOENT);
        }
        parse_moment(name).map(Scope::AsOf).ok_or(Errno::NOENT)
    }
}

/// A moment as a user writes it: a Unix time (`1796040000`, a fraction
/// allowed), ISO 8601 (`2026-11-30T12:00:00Z`, with a fraction, or with an
/// offset such as `+02:00`; without a zone it is UTC) or a day
/// (`2026-11-30`, its midnight UTC). Whole seconds, rounded down: Pithos
/// takes `until` in seconds. None for anything else, a time before the
/// epoch or past the year 9999.
pub fn parse_moment(s: &str) -> Option<i64> {
    let secs = if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let t: f64 = s.parse().ok()?;
        t.is_finite().then(|| t.floor() as i64)?
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp()
    } else if let Ok(t) =
        chrono::NaiveDateTime::parse_from_str(s.strip_suffix('Z').unwrap_or(s), "%Y-%m-%dT%H:%M:%S%.f")
    {
        t.and_utc().timestamp()
    } else {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0)?.and_utc().timestamp()
    };
    (0..=MAX_MOMENT).contains(&secs).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_in_the_forms_users_write() {
        assert_eq!(parse_moment("1796040000"), Some(1_796_040_000));
        assert_eq!(parse_moment("1796040000.9"), Some(1_796_040_000));
        assert_eq!(parse_moment("2026-11-30T12:00:00Z"), Some(1_796_040_000));
        assert_eq!(parse_moment("2026-11-30T12:00:00.75Z"), Some(1_796_040_000));
        assert_eq!(parse_moment("2026-11-30T14:00:00+02:00"), Some(1_796_040_000));
        assert_eq!(parse_moment("2026-11-30T12:00:00"), Some(1_796_040_000));
        assert_eq!(parse_moment("2026-11-30"), Some(1_795_996_800));
        for bad in ["", ".", "..", "now", "2026-13-01", "2026-11-30T25:00:00Z", "99999999999999", "1e9", "-5"] {
            assert_eq!(parse_moment(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_under_snapshots() {
        assert_eq!(Scope::of_snapshot_name("v42"), Ok(Scope::Version("42".into())));
        assert_eq!(Scope::of_snapshot_name("0"), Ok(Scope::AsOf(0)));
        for bad in ["v", "vx", "v-1", "v123456789012345678901", "snapshot"] {
            assert_eq!(Scope::of_snapshot_name(bad), Err(Errno::NOENT), "{bad:?}");
        }
        assert!(Scope::AsOf(1).read_only() && Scope::Version("1".into()).read_only() && Scope::Snapshots.read_only());
        assert!(!Scope::Now.read_only() && !Scope::Shared("u".into()).read_only());
    }
}
