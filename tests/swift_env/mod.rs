//! The Swift the tests run against: `scripts/swift start` prints its auth
//! URL, which the tests read from `PITHOSFS_SWIFT_AUTH`. Without it they are
//! skipped, except under CI, where they fail. Shared by tests/swift.rs,
//! tests/swift_blocks.rs and tests/mount_swift_blocks.rs.
#![allow(dead_code)]

/// The auth URL, or None (test skipped) when there is no Swift to test against.
pub fn auth_url() -> Option<String> {
    match std::env::var("PITHOSFS_SWIFT_AUTH") {
        Ok(u) if !u.trim().is_empty() => Some(u.trim().to_string()),
        _ => {
            let ci = std::env::var("CI").unwrap_or_default();
            if !matches!(ci.as_str(), "" | "0" | "false") {
                panic!("PITHOSFS_SWIFT_AUTH is not set: CI must run the Swift tests (PITHOSFS_SWIFT_AUTH=$(scripts/swift start))");
            }
            println!("skipped: PITHOSFS_SWIFT_AUTH not set (run scripts/swift start)");
            None
        }
    }
}

/// A name of this test and this run (containers stay apart across runs).
pub fn unique(prefix: &str) -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    format!("{prefix}-{}-{ms}", std::process::id())
}
