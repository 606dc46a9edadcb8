//! The mount over a local cloud whose blocks are in a real Swift (`serve
//! --blocks swift:…`, issue 14): files written, copied (by hash), edited,
//! renamed and read cold after a remount are byte-exact. Swift from
//! `scripts/swift start` (`PITHOSFS_SWIFT_AUTH`), as tests/swift.rs.

mod harness;
mod swift_env;

use harness::*;

/// An environment whose local cloud keeps its blocks in Swift, or None
/// (test skipped) when there is no Swift to test against.
fn over_swift() -> Option<Env> {
    let auth = swift_env::auth_url()?;
    let container = swift_env::unique("pithosfs-blocks-mount");
    let args = ["--blocks", &format!("swift:{auth}"), "--blocks-swift-user", "test:tester"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--blocks-swift-container".to_string(), container])
        .collect();
    let envs = vec![("PITHOSFS_BLOCKS_SWIFT_KEY".to_string(), "testing".to_string())];
    Some(Env::serving(Serve { args, envs }))
}

#[test]
fn the_mount_works_over_swift_blocks() {
    let Some(mut env) = over_swift() else { return };
    env.mount(&[]);
    let bs = env.cloud.block_size("pithos") as usize;
    let data = random_bytes(3 * bs + 777, 3);
    std::fs::write(env.l().join("src.bin"), &data).unwrap();
    env.sh(r#"cp "$L/src.bin" "$M/pithos/a.bin" && cp "$M/pithos/a.bin" "$M/pithos/b.bin""#);
    let want = sha256(&data);
    assert_eq!(sha256(&env.cloud.get("pithos", "a.bin")), want);
    assert_eq!(sha256(&env.cloud.get("pithos", "b.bin")), want, "the copy by hash");
    // A 4 KiB edit across a block boundary, then a rename into a folder.
    env.sh(&format!(
        r#"head -c 4096 /dev/zero | tr '\0' 'e' | dd of="$M/pithos/b.bin" bs=1 seek={} conv=notrunc status=none
           mkdir "$M/pithos/dir" && mv "$M/pithos/b.bin" "$M/pithos/dir/c.bin""#,
        bs - 2048
    ));
    let mut edited = data.clone();
    edited[bs - 2048..bs + 2048].fill(b'e');
    assert_eq!(sha256(&env.cloud.get("pithos", "dir/c.bin")), sha256(&edited));
    // Read cold after a remount: every block comes back from Swift.
    env.remount(&[]);
    assert_eq!(env.sh(r#"sha256sum < "$M/pithos/a.bin" | cut -d' ' -f1"#).trim(), want);
    assert_eq!(env.sh(r#"sha256sum < "$M/pithos/dir/c.bin" | cut -d' ' -f1"#).trim(), sha256(&edited));
    assert_eq!(sha256(&data), want, "the original unchanged");
}
