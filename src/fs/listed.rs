//! What a folder's listing keeps of each entry, compactly: a folder of a
//! million objects keeps a million of these, so every byte counts.
//!
//! The numbers and times are kept as they are; the three tokens a server
//! gives every object (its content hash, version and UUID) are kept in
//! binary when they have their usual form (64 hex digits, a decimal number,
//! a hyphenated UUID), as text otherwise; the rare parts (owner's host, link
//! group, user metadata) are boxed, one pointer when absent. What comes out
//! ([`ListedAttr::attr`]) is exactly the [`Attr`] that went in.

use super::attr::{Attr, Kind, Time};
use std::collections::BTreeMap;

/// A content hash, a version or a UUID as the server gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    None,
    /// A decimal number without leading zeros.
    Number(u64),
    /// 64 lower-case hex digits.
    Hex32([u8; 32]),
    /// A lower-case hyphenated UUID.
    Uuid([u8; 16]),
    Text(Box<str>),
}

impl Token {
    fn of(s: &Option<String>) -> Token {
        let Some(s) = s else { return Token::None };
        if let Ok(n) = s.parse::<u64>() {
            if n.to_string() == *s {
                return Token::Number(n);
            }
        }
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            let mut out = [0u8; 32];
            if hex::decode_to_slice(s, &mut out).is_ok() {
                return Token::Hex32(out);
            }
        }
        if s.len() == 36 {
            if let Ok(u) = uuid::Uuid::parse_str(s) {
                if u.hyphenated().to_string() == *s {
                    return Token::Uuid(*u.as_bytes());
                }
            }
        }
        Token::Text(s.as_str().into())
    }

    fn text(&self) -> Option<String> {
        match self {
            Token::None => None,
            Token::Number(n) => Some(n.to_string()),
            Token::Hex32(b) => Some(hex::encode(b)),
            Token::Uuid(b) => Some(uuid::Uuid::from_bytes(*b).hyphenated().to_string()),
            Token::Text(t) => Some(t.to_string()),
        }
    }
}

/// A version or a UUID: as a `Token`, in 24 bytes where a `Token` takes 40
/// (the rare 32-byte hash among them is boxed).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ShortToken {
    None,
    Number(u64),
    Uuid([u8; 16]),
    Text(Box<str>),
    Long(Box<Token>),
}

impl ShortToken {
    fn of(s: &Option<String>) -> ShortToken {
        match Token::of(s) {
            Token::None => ShortToken::None,
            Token::Number(n) => ShortToken::Number(n),
            Token::Uuid(u) => ShortToken::Uuid(u),
            Token::Text(t) => ShortToken::Text(t),
            long => ShortToken::Long(Box::new(long)),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            ShortToken::None => None,
            ShortToken::Number(n) => Token::Number(*n).text(),
            ShortToken::Uuid(u) => Token::Uuid(*u).text(),
            ShortToken::Text(t) => Some(t.to_string()),
            ShortToken::Long(t) => t.text(),
        }
    }
}

const HAS_ATIME: u8 = 1;
const HAS_MODE: u8 = 2;
const HAS_UID: u8 = 4;
const HAS_GID: u8 = 8;
/// Where each time is in `secs` and `nanos`.
const MTIME: usize = 0;
const CTIME: usize = 1;
const ATIME: usize = 2;

/// The parts few entries have.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rare {
    link: Option<String>,
    host: Option<String>,
    meta: BTreeMap<String, String>,
}

/// The attributes of one listing entry (see the module's comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAttr {
    pub kind: Kind,
    stored: bool,
    nlink: u32,
    rdev: u32,
    pub size: u64,
    /// Which of `atime`, `mode`, `uid`, `gid` are there (bits `HAS_*`).
    has: u8,
    /// Times as seconds and nanoseconds apart: two `Time`s and an optional
    /// third take 56 bytes, these 36.
    secs: [u64; 3],
    nanos: [u32; 3],
    mode: u32,
    uid: u32,
    gid: u32,
    hash: Token,
    version: ShortToken,
    uuid: ShortToken,
    rare: Option<Box<Rare>>,
}

impl ListedAttr {
    pub fn new(a: &Attr) -> ListedAttr {
        let rare = (a.link.is_some() || a.host.is_some() || !a.meta.is_empty())
            .then(|| Box::new(Rare { link: a.link.clone(), host: a.host.clone(), meta: a.meta.clone() }));
        ListedAttr {
            kind: a.kind,
            stored: a.stored,
            nlink: a.nlink,
            rdev: a.rdev,
            size: a.size,
            has: [a.atime.is_some(), a.mode.is_some(), a.uid.is_some(), a.gid.is_some()]
                .iter()
                .zip([HAS_ATIME, HAS_MODE, HAS_UID, HAS_GID])
                .filter(|(there, _)| **there)
                .fold(0, |has, (_, bit)| has | bit),
            secs: [a.mtime.secs(), a.ctime.secs(), a.atime.map_or(0, Time::secs)],
            nanos: [a.mtime.nanos(), a.ctime.nanos(), a.atime.map_or(0, Time::nanos)],
            mode: a.mode.unwrap_or(0),
            uid: a.uid.unwrap_or(0),
            gid: a.gid.unwrap_or(0),
            hash: Token::of(&a.hash),
            version: ShortToken::of(&a.version),
            uuid: ShortToken::of(&a.uuid),
            rare,
        }
    }

    /// The attributes that went in.
    pub fn attr(&self) -> Attr {
        let (link, host, meta) = match &self.rare {
            Some(r) => (r.link.clone(), r.host.clone(), r.meta.clone()),
            None => (None, None, BTreeMap::new()),
        };
        Attr {
            kind: self.kind,
            size: self.size,
            mtime: self.time(MTIME),
            ctime: self.time(CTIME),
            atime: self.there(HAS_ATIME, self.time(ATIME)),
            rdev: self.rdev,
            link,
            nlink: self.nlink,
            mode: self.there(HAS_MODE, self.mode),
            uid: self.there(HAS_UID, self.uid),
            gid: self.there(HAS_GID, self.gid),
            host,
            hash: self.hash.text(),
            version: self.version.text(),
            uuid: self.uuid.text(),
            meta,
            stored: self.stored,
        }
    }

    /// The hard-link group of the entry.
    pub fn link(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|r| r.link.as_deref())
    }

    /// Whether an object backs it (a folder may be only a prefix).
    pub fn stored(&self) -> bool {
        self.stored
    }

    /// (mtime, ctime).
    pub fn times(&self) -> (Time, Time) {
        (self.time(MTIME), self.time(CTIME))
    }

    fn time(&self, i: usize) -> Time {
        Time::new(self.secs[i], self.nanos[i])
    }

    fn set_time(&mut self, i: usize, t: Time) {
        self.secs[i] = t.secs();
        self.nanos[i] = t.nanos();
    }

    fn there<T>(&self, bit: u8, value: T) -> Option<T> {
        (self.has & bit != 0).then_some(value)
    }

    /// Whether both are the same Pithos version.
    pub fn same_version(&self, other: &ListedAttr) -> bool {
        self.version == other.version
    }

    /// Sets mtime and ctime.
    pub fn set_times(&mut self, mtime: Time, ctime: Time) {
        self.set_time(MTIME, mtime);
        self.set_time(CTIME, ctime);
    }

    pub fn set_nlink(&mut self, nlink: u32) {
        self.nlink = nlink;
    }

    /// See `Attr::changed`.
    pub fn changed(&mut self, at: Time, content: bool) {
        if content {
            self.set_time(MTIME, at);
        }
        self.set_time(CTIME, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_come_back_exactly_as_they_went_in() {
        let mut a = Attr::new_file(Time::from_secs_f64(1_700_000_000.25).unwrap());
        a.size = 12345;
        a.mode = Some(0o640);
        a.uid = Some(1000);
        for (hash, version, uuid) in [
            (
                "0f3a9c00b4e6b1ad1a7cbe1d0d6e0b1a3c5f2b7e9d8c7b6a5f4e3d2c1b0a9f8e",
                "42",
                "6a2f41a3-c54c-fce8-32d2-0324e1c32e22",
            ),
            // Not the usual forms: upper case, leading zeros, odd lengths.
            (
                "0F3A9C00B4E6B1AD1A7CBE1D0D6E0B1A3C5F2B7E9D8C7B6A5F4E3D2C1B0A9F8E",
                "042",
                "6A2F41A3-C54C-FCE8-32D2-0324E1C32E22",
            ),
            ("d41d8cd98f00b204e9800998ecf8427e", "", "x"),
        ] {
            a.hash = Some(hash.into());
            a.version = Some(version.into());
            a.uuid = Some(uuid.into());
            let back = ListedAttr::new(&a).attr();
            assert_eq!(
                (back.hash.as_deref(), back.version.as_deref(), back.uuid.as_deref()),
                (Some(hash), Some(version), Some(uuid))
            );
            assert_eq!(
                (back.size, back.mode, back.uid, back.gid, back.mtime, back.ctime, back.atime, back.kind),
                (a.size, a.mode, a.uid, a.gid, a.mtime, a.ctime, a.atime, a.kind)
            );
        }
        // Present zeros are not absent ones; every time keeps its nanoseconds.
        a.gid = Some(0);
        a.mode = Some(0);
        a.ctime = Time::new(1_800_000_000, 999_999_999);
        a.atime = Some(Time::MAX);
        a.version = Some("0f3a9c00b4e6b1ad1a7cbe1d0d6e0b1a3c5f2b7e9d8c7b6a5f4e3d2c1b0a9f8e".into());
        let back = ListedAttr::new(&a).attr();
        assert_eq!(
            (back.gid, back.mode, back.uid, back.ctime, back.atime, back.version.clone()),
            (a.gid, a.mode, a.uid, a.ctime, a.atime, a.version.clone())
        );
        a.atime = None;
        a.uid = None;
        let back = ListedAttr::new(&a).attr();
        assert_eq!((back.atime, back.uid, back.gid), (None, None, Some(0)));
        a.link = Some("ab12".into());
        a.meta.insert("color".into(), "blue".into());
        let l = ListedAttr::new(&a);
        assert_eq!(l.link(), Some("ab12"));
        let back = l.attr();
        assert_eq!((back.link, back.meta), (a.link, a.meta));
        let dir = Attr::dir(Time::EPOCH);
        let back = ListedAttr::new(&dir).attr();
        assert_eq!((back.kind, back.hash, back.stored, back.meta.len()), (Kind::Dir, None, false, 0));
    }
}
