//! The mount enforces POSIX permissions and no input takes it down (issue 8,
//! sections 3 and 4), through real FUSE mounts of a `pithosfs serve` child:
//!
//! - modes, owners and groups hold for every local user of an `--allow-other`
//!   mount (root mounts; the unprivileged `pithosfs-test` and a user known
//!   only by number try what they may and may not do);
//! - owners recorded on another machine do not lock the account's owner out
//!   (the unprivileged user mounts its own account);
//! - EFBIG past the largest object the server holds, a sparse file of
//!   100,000 blocks and one at the limit, with bounded memory;
//! - ENAMETOOLONG on every call for names over 255 bytes and object names
//!   over 8,192 (the local cloud's limit); a 4 KiB symlink target; 10,000 xattr calls; a folder of
//!   100,000 entries — each with the mount's peak RSS under a stated bound.
//!
//! Needs root, /dev/fuse, fuse3, attr, util-linux's setpriv and the system
//! user `pithosfs-test` (all from `scripts/setup --tests`).

mod harness;

use harness::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The user 'pithosfs-test' may not reach what root keeps to itself; a third
/// user, known only by number, may not reach pithosfs-test's.
const OTHER_UID: u32 = 64123;

fn stat_owner(env: &Env, user: Option<&User>, path: &str) -> String {
    let script = format!(r#"stat -c '%u:%g %a' "{path}""#);
    match user {
        Some(u) => env.sh_as(u, &script),
        None => env.sh(&script),
    }
    .trim()
    .to_string()
}

// ---------------------------------------------------------------------------
// who may do what
// ---------------------------------------------------------------------------

/// An `--allow-other` mount by root, used by root, by `pithosfs-test` and by
/// a third user: 0600 files and 0700 folders keep the others out of read,
/// write, create, unlink and rename; chmod/chown by a non-owner are EPERM;
/// a user's own files, a 0777 folder and group permissions work; what the
/// users create is recorded as theirs (with this machine's tag), and still
/// is after a remount.
#[test]
fn allow_other_mount_enforces_modes_owners_and_groups() {
    let b = User::unprivileged();
    let c = User::numbered(OTHER_UID);
    let mut env = Env::new();
    env.open_to_users();
    env.mount(&["--allow-other"]);

    // Root's things: a private folder, a secret, a public file, a shared
    // folder, a sticky one, files of b's group.
    env.sh(&format!(
        r#"cd "$M/pithos"
           mkdir private; chmod 700 private; echo inside > private/f
           echo secret > secret; chmod 600 secret
           echo public > public
           mkdir shared; chmod 777 shared
           mkdir sticky; chmod 1777 sticky
           echo group > grp; chgrp {g} grp; chmod 660 grp
           echo group-ro > grp-ro; chgrp {g} grp-ro; chmod 640 grp-ro"#,
        g = b.gid
    ));
    let uid0 = "0:0";
    assert_eq!(stat_owner(&env, Some(&b), "$M/pithos/secret"), format!("{uid0} 600"));
    assert_eq!(stat_owner(&env, Some(&b), "$M/pithos/grp"), format!("0:{} 660", b.gid));

    // b against root's private things: read, write, create, unlink, rename.
    let denied = "Permission denied";
    for script in [
        r#"cat "$M/pithos/secret""#,
        r#"echo x > "$M/pithos/secret""#,
        r#"echo x >> "$M/pithos/secret""#,
        r#"truncate -s 0 "$M/pithos/secret""#,
        r#"ls "$M/pithos/private""#,
        r#"cat "$M/pithos/private/f""#,
        r#"touch "$M/pithos/private/new""#,
        r#"mkdir "$M/pithos/private/new""#,
        r#"rm -f "$M/pithos/private/f""#,
        r#"mv "$M/pithos/private/f" "$M/pithos/shared/stolen""#,
        // the container folder is root's 0755: no create, unlink or rename in it
        r#"touch "$M/pithos/new""#,
        r#"rm -f "$M/pithos/public""#,
        r#"mv "$M/pithos/public" "$M/pithos/shared/public""#,
        r#"echo x >> "$M/pithos/public""#,
        r#"echo x >> "$M/pithos/grp-ro""#,
        r#"setfattr -n user.x -v y "$M/pithos/public""#,
    ] {
        env.fails_as(&b, script, denied);
    }
    // chmod/chown of what is not one's own: EPERM.
    let eperm = "Operation not permitted";
    for script in [
        r#"chmod 666 "$M/pithos/secret""#,
        r#"chmod 777 "$M/pithos/shared""#,
        r#"chown pithosfs-test "$M/pithos/public""#,
        r#"chgrp pithosfs-test "$M/pithos/public""#,
        r#"touch -c -d 2001-01-01 "$M/pithos/public""#,
    ] {
        env.fails_as(&b, script, eperm);
    }
    // What b may do: read a 0644 file, use its group's rights, work in a 0777 folder.
    assert_eq!(
        env.sh_as(&b, r#"cat "$M/pithos/public" "$M/pithos/grp" "$M/pithos/grp-ro""#),
        "public\ngroup\ngroup-ro\n"
    );
    env.sh_as(&b, r#"echo more >> "$M/pithos/grp""#);
    assert_eq!(env.cloud.get("pithos", "grp"), b"group\nmore\n");
    env.sh_as(
        &b,
        r#"cd "$M/pithos/shared"
           echo mine > mine; chmod 600 mine; cat mine >/dev/null; echo again >> mine
           mkdir bdir; chmod 700 bdir; echo private > bdir/bfile; chmod 600 bdir/bfile
           mv mine mine2; mv mine2 mine; ln -s mine link; touch -d 2001-01-01 mine
           setfattr -n user.note -v hers mine
           echo open > open; chmod 644 open
           echo s > ../sticky/bs; chmod 666 ../sticky/bs
           chgrp pithosfs-test mine"#,
    );
    let bown = format!("{}:{}", b.uid, b.gid);
    assert_eq!(stat_owner(&env, Some(&b), "$M/pithos/shared/mine"), format!("{bown} 600"));
    assert_eq!(stat_owner(&env, None, "$M/pithos/shared/bdir"), format!("{bown} 700"));
    // The server records b's numbers with this machine's tag; root's files
    // (the account owner's) carry none.
    let head = env.cloud.head("pithos", "shared/bdir/bfile");
    assert_eq!(head.header("x-object-meta-posix-uid"), Some(b.uid.to_string()));
    assert_eq!(head.header("x-object-meta-posix-gid"), Some(b.gid.to_string()));
    assert_eq!(head.header("x-object-meta-posix-host").as_deref(), Some(pithosfs::fs::owners::this_machine()));
    assert_eq!(head.header("x-object-meta-posix-mode").as_deref(), Some("600"));
    let root_head = env.cloud.head("pithos", "secret");
    assert_eq!(root_head.header("x-object-meta-posix-uid"), None, "the account owner's uid is not recorded");
    assert_eq!(root_head.header("x-object-meta-posix-host"), None);

    // b cannot give its file away or take a group it is not in.
    env.fails_as(&b, &format!(r#"chown {OTHER_UID} "$M/pithos/shared/mine""#), eperm);
    env.fails_as(&b, r#"chgrp 0 "$M/pithos/shared/mine""#, eperm);

    // c against b's private things.
    for script in [
        r#"cat "$M/pithos/shared/mine""#,
        r#"echo x > "$M/pithos/shared/mine""#,
        r#"echo x >> "$M/pithos/shared/mine""#,
        r#"ls "$M/pithos/shared/bdir""#,
        r#"cat "$M/pithos/shared/bdir/bfile""#,
        r#"touch "$M/pithos/shared/bdir/new""#,
        r#"rm -f "$M/pithos/shared/bdir/bfile""#,
        r#"mv "$M/pithos/shared/bdir/bfile" "$M/pithos/shared/stolen""#,
        r#"getfattr -n user.note "$M/pithos/shared/mine""#,
    ] {
        env.fails_as(&c, script, denied);
    }
    for script in [
        r#"chmod 666 "$M/pithos/shared/mine""#,
        r#"chmod 777 "$M/pithos/shared/bdir""#,
        &format!(r#"chown {OTHER_UID} "$M/pithos/shared/mine""#),
        // the sticky folder: nobody removes or renames another's file in it
        r#"rm -f "$M/pithos/sticky/bs""#,
        r#"mv "$M/pithos/sticky/bs" "$M/pithos/sticky/mine""#,
    ] {
        env.fails_as(&c, script, eperm);
    }
    // Group rights count for supplementary groups too: c reads b's group's
    // file only while a member of that group.
    env.fails_as(&c, r#"cat "$M/pithos/grp-ro""#, denied);
    let c_in_group = User::numbered(OTHER_UID).in_group(b.gid);
    assert_eq!(env.sh_as(&c_in_group, r#"cat "$M/pithos/grp-ro""#), "group-ro\n");
    env.fails_as(&c_in_group, r#"echo x >> "$M/pithos/grp-ro""#, denied);
    // ... and c may write a 0666 file, read a 0644 one, and work in the 0777 folder.
    env.sh_as(
        &c,
        r#"cat "$M/pithos/shared/open" >/dev/null; echo c >> "$M/pithos/sticky/bs"
           echo c > "$M/pithos/shared/cfile"; mv "$M/pithos/shared/cfile" "$M/pithos/shared/cfile2""#,
    );
    assert_eq!(stat_owner(&env, Some(&c), "$M/pithos/shared/cfile2"), format!("{OTHER_UID}:{OTHER_UID} 644"));
    assert_eq!(env.cloud.get("pithos", "shared/bdir/bfile"), b"private\n", "c's attempts changed nothing");
    assert_eq!(env.cloud.get("pithos", "shared/mine"), b"mine\nagain\n");
    // Root reads everything and alone gives files away.
    assert_eq!(env.sh(r#"cat "$M/pithos/shared/bdir/bfile""#), "private\n");
    env.sh(&format!(r#"chown {OTHER_UID}:{OTHER_UID} "$M/pithos/shared/open""#));
    assert_eq!(stat_owner(&env, None, "$M/pithos/shared/open"), format!("{OTHER_UID}:{OTHER_UID} 644"));
    env.sh_as(&c, r#"chmod 600 "$M/pithos/shared/open""#);
    env.fails_as(&b, r#"cat "$M/pithos/shared/open""#, denied);
    env.sh(r#"chown 0:0 "$M/pithos/shared/open""#);
    assert_eq!(env.cloud.head("pithos", "shared/open").header("x-object-meta-posix-uid"), None);

    // A new mount process knows them all again from the server.
    env.remount(&["--allow-other"]);
    assert_eq!(stat_owner(&env, Some(&b), "$M/pithos/shared/mine"), format!("{bown} 600"));
    assert_eq!(stat_owner(&env, None, "$M/pithos/shared/bdir/bfile"), format!("{bown} 600"));
    assert_eq!(stat_owner(&env, None, "$M/pithos/shared/open"), "0:0 600");
    env.fails_as(&c, r#"cat "$M/pithos/shared/mine""#, denied);
    env.fails_as(&b, r#"cat "$M/pithos/secret""#, denied);
    assert_eq!(env.sh_as(&b, r#"cat "$M/pithos/shared/bdir/bfile""#), "private\n");
}

/// Files whose recorded owners are numbers from elsewhere (another machine,
/// kamaki, an older mount) stay usable by the account's owner when the
/// unprivileged user mounts the account itself; numbers recorded on this
/// machine for another local user keep that user's rights, and `--owners`
/// chooses otherwise.
#[test]
fn owners_recorded_elsewhere_do_not_lock_the_account_owner_out() {
    let b = User::unprivileged();
    let mut env = Env::new();
    let foreign = |uid: &'static str, mode: &'static str, host: Option<&'static str>| {
        let mut h = vec![
            ("Content-Type", "application/octet-stream"),
            ("X-Object-Meta-Posix-Uid", uid),
            ("X-Object-Meta-Posix-Gid", uid),
            ("X-Object-Meta-Posix-Mode", mode),
        ];
        if let Some(host) = host {
            h.push(("X-Object-Meta-Posix-Host", host));
        }
        h
    };
    let put = |name: &str, headers: &[(&str, &str)], body: &[u8]| {
        let r = http("PUT", &env.cloud.object_url("pithos", name), headers, Some(body.to_vec()));
        assert_eq!(r.status, 201, "PUT {name}");
    };
    // Made through a mount by uid 1000 on another machine (tag or no tag).
    put("elsewhere.txt", &foreign("1000", "600", None), b"from elsewhere\n");
    put("tagged.txt", &foreign("1000", "600", Some("00112233aabbccdd")), b"tagged elsewhere\n");
    let mut dir = foreign("1000", "700", None);
    dir[0] = ("Content-Type", "application/directory");
    put("folder", &dir, b"");
    put("folder/inside.txt", &foreign("1000", "600", None), b"inside\n");
    // Made on this machine by another local user (an --allow-other mount).
    let here = pithosfs::fs::owners::this_machine();
    let mut theirs = foreign("64123", "600", None);
    theirs.push(("X-Object-Meta-Posix-Host", here));
    put("theirs.txt", &theirs, b"theirs\n");

    env.mount_as(&b, "bmnt", &[]);
    let bown = format!("{}:{}", b.uid, b.gid);
    for f in ["elsewhere.txt", "tagged.txt", "folder/inside.txt"] {
        assert_eq!(stat_owner(&env, Some(&b), &format!("$R/bmnt/pithos/{f}")), format!("{bown} 600"), "{f}");
    }
    assert_eq!(stat_owner(&env, Some(&b), "$R/bmnt/pithos/folder"), format!("{bown} 700"));
    assert_eq!(
        env.sh_as(&b, r#"cd "$R/bmnt/pithos"; cat elsewhere.txt tagged.txt folder/inside.txt"#),
        "from elsewhere\ntagged elsewhere\ninside\n"
    );
    env.sh_as(
        &b,
        r#"cd "$R/bmnt/pithos"; echo edited >> elsewhere.txt; echo new > folder/new.txt
           chmod 640 tagged.txt; touch -d 2001-01-01 folder/inside.txt; mv folder/inside.txt folder/moved.txt"#,
    );
    assert_eq!(env.cloud.get("pithos", "elsewhere.txt"), b"from elsewhere\nedited\n");
    assert_eq!(env.cloud.get("pithos", "folder/new.txt"), b"new\n");
    // What the other machine recorded is left for it (a write changes no owner).
    assert_eq!(env.cloud.head("pithos", "elsewhere.txt").header("x-object-meta-posix-uid").as_deref(), Some("1000"));
    // b's own new file carries no number: it is the account owner's anywhere.
    assert_eq!(env.cloud.head("pithos", "folder/new.txt").header("x-object-meta-posix-uid"), None);
    // A number recorded here means that local user, here too.
    assert_eq!(stat_owner(&env, Some(&b), "$R/bmnt/pithos/theirs.txt"), "64123:64123 600");
    env.fails_as(&b, r#"cat "$R/bmnt/pithos/theirs.txt""#, "Permission denied");
    env.unmount_at("bmnt");

    // --owners mine: every file is the mounting user's.
    env.mount_as(&b, "bmnt", &["--owners", "mine"]);
    assert_eq!(stat_owner(&env, Some(&b), "$R/bmnt/pithos/theirs.txt"), format!("{bown} 600"));
    assert_eq!(env.sh_as(&b, r#"cat "$R/bmnt/pithos/theirs.txt""#), "theirs\n");
    env.unmount_at("bmnt");
    // --owners all: every recorded number, wherever it was recorded.
    env.mount_as(&b, "bmnt", &["--owners", "all"]);
    assert_eq!(stat_owner(&env, Some(&b), "$R/bmnt/pithos/tagged.txt"), "1000:1000 640");
    env.fails_as(&b, r#"cat "$R/bmnt/pithos/tagged.txt""#, "Permission denied");
    env.unmount_at("bmnt");
}

// ---------------------------------------------------------------------------
// no input takes the mount down
// ---------------------------------------------------------------------------

/// Bytes of a file read through the mount at `offset`.
fn pread(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0u8; len];
    let n = f.read_at(&mut buf, offset).unwrap_or_else(|e| panic!("read {} at {offset}: {e}", path.display()));
    buf.truncate(n);
    buf
}

/// pwrite(2) through the mount: bytes written, or the errno.
fn pwrite(f: &std::fs::File, data: &[u8], offset: u64) -> Result<usize, i32> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid descriptor and a buffer of data.len() bytes.
    let n = unsafe { libc::pwrite(f.as_raw_fd(), data.as_ptr().cast(), data.len(), offset as libc::off_t) };
    if n < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(n as usize)
    }
}

/// The number of versions the server keeps of an object, and its hashmap length.
fn versions_and_hashes(env: &Env, name: &str) -> (usize, usize) {
    let url = env.cloud.object_url("pithos", name);
    let v = http("GET", &format!("{url}?version=list&format=json"), &[], None);
    assert_eq!(v.status, 200, "version list of {name}");
    let v: serde_json::Value = serde_json::from_slice(&v.body).unwrap();
    let h = http("GET", &format!("{url}?hashmap&format=json"), &[], None);
    assert_eq!(h.status, 200, "hashmap of {name}");
    let h: serde_json::Value = serde_json::from_slice(&h.body).unwrap();
    (v["versions"].as_array().map_or(0, Vec::len), h["hashes"].as_array().map_or(0, Vec::len))
}

/// A size or offset past what the server holds is EFBIG and the mount lives;
/// sparse files of 100,000 blocks and at the limit (1 TiB at 4 MiB blocks)
/// stat, read holes as zeros, take a write near their end and commit as one
/// hashmap, all in bounded memory.
#[test]
fn efbig_past_the_limit_and_sparse_files_in_bounded_memory() {
    let mut env = Env::new();
    env.cloud.put("pithos", "alive.txt", b"still here\n");
    env.mount(&[]);
    let bs = env.cloud.block_size("pithos");
    let limit = bs * pithosfs::blocks::MAX_BLOCKS_PER_OBJECT;
    let big = env.m().join("pithos/big");
    env.mounts[0].reset_peak_rss();

    // The size that once grew the mount until the kernel killed it.
    env.sh(r#": > "$M/pithos/big""#);
    for size in ["999999999999999".to_string(), (limit + 1).to_string(), i64::MAX.to_string()] {
        env.fails_with(&format!(r#"truncate -s {size} "$M/pithos/big""#), "File too large");
    }
    assert_eq!(env.sh(r#"cat "$M/pithos/alive.txt"; stat -c %s "$M/pithos/big""#), "still here\n0\n");

    // 100,000 blocks: stat, a hole, one block written in the middle, commit.
    let blocks = 100_000u64;
    env.sh(&format!(r#"truncate -s {} "$M/pithos/big""#, blocks * bs));
    assert_eq!(env.sh(r#"stat -c %s "$M/pithos/big""#).trim(), (blocks * bs).to_string());
    assert_eq!(pread(&big, 12_345 * bs + 77, 4096), vec![0u8; 4096], "a hole reads as zeros");
    let block = random_bytes(bs as usize, 7);
    write_file(&env.l().join("block"), &block);
    env.sh(&format!(r#"dd if="$L/block" of="$M/pithos/big" bs={bs} seek=50000 conv=notrunc status=none"#));
    assert_eq!(pread(&big, 50_000 * bs, bs as usize), block);
    assert_eq!(versions_and_hashes(&env, "big").1, blocks as usize);

    // At the limit: truncate to it, write its last 4 KiB, read a hole.
    let before = env.cloud.block_store_bytes();
    env.sh(&format!(r#"truncate -s {limit} "$M/pithos/big""#));
    let tail = random_bytes(4096, 8);
    write_file(&env.l().join("tail"), &tail);
    env.sh(&format!(
        r#"dd if="$L/tail" of="$M/pithos/big" bs=4096 seek={} conv=notrunc status=none"#,
        limit / 4096 - 1
    ));
    assert_eq!(env.sh(r#"stat -c %s "$M/pithos/big""#).trim(), limit.to_string());
    assert_eq!(pread(&big, limit - 4096, 4096), tail);
    assert_eq!(pread(&big, limit / 2, 4096), vec![0u8; 4096]);
    assert_eq!(pread(&big, 50_000 * bs, 16), block[..16].to_vec(), "the block written before is still there");
    // A write at the limit is EFBIG; one across it is cut short there.
    {
        let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        assert_eq!(pwrite(&f, b"x", limit), Err(libc::EFBIG), "a write at the limit");
        assert_eq!(pwrite(&f, &[1u8; 8192], limit - 4096), Ok(4096), "a write across the limit stops there");
        assert_eq!(pwrite(&f, b"x", limit + bs), Err(libc::EFBIG));
    }
    env.fails_with(
        &format!(r#"dd if="$L/tail" of="$M/pithos/big" bs=4096 seek={} conv=notrunc status=none"#, limit / 4096),
        "File too large",
    );
    assert_eq!(pread(&big, limit - 4096, 4096), vec![1u8; 4096]);
    // Each close was one commit (one version) of one hashmap of the whole
    // size, and only the written blocks went to the server.
    let (versions, hashes) = versions_and_hashes(&env, "big");
    assert_eq!(hashes as u64, pithosfs::blocks::MAX_BLOCKS_PER_OBJECT);
    // Versions: the empty file, the 100,000-block truncate, its write, the
    // truncate to the limit, the tail write, the pwrites — one commit each
    // (the refused truncates and the refused dd made none).
    assert_eq!(versions, 6, "one version per close that changed something");
    let grown = env.cloud.block_store_bytes() - before;
    assert!(grown <= 2 * bs, "the block store grew by {grown} bytes for two written blocks");
    assert_eq!(env.cloud.head("pithos", "big").header("content-length"), Some(limit.to_string()));

    let peak = env.mounts[0].peak_rss_mib();
    println!("peak RSS through 100,000-block and 1 TiB sparse files: {peak} MiB");
    assert!(peak < 192, "the mount's peak RSS was {peak} MiB (bound: 192 MiB)");
    assert_eq!(env.sh(r#"cat "$M/pithos/alive.txt""#), "still here\n");
    env.unmount();
}

/// Plain Swift holds at most 5 GiB in one object (its default
/// `max_file_size` is 5 GiB + 2 bytes), which is how the mount writes there:
/// past it, EFBIG before anything is sent (the mount once streamed 5 GiB of
/// zeros for a `truncate -s 5G+1`).
#[test]
fn efbig_on_plain_swift_past_its_largest_object() {
    let Ok(auth) = std::env::var("PITHOSFS_SWIFT_AUTH") else {
        let ci = std::env::var("CI").unwrap_or_default();
        assert!(matches!(ci.as_str(), "" | "0" | "false"), "PITHOSFS_SWIFT_AUTH is not set: CI must run it");
        println!("skipped: PITHOSFS_SWIFT_AUTH not set (run scripts/swift start)");
        return;
    };
    use pithosfs::clients::storage::{ObjectStorage, StorageClient};
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let container = format!("security-efbig-{}-{ms}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rt.block_on(async {
        let c = StorageClient::swift_v1_auth(&auth, "test:tester", "testing", &container).await.expect("swift auth");
        c.create_container(&[]).await.expect("create container");
        c.put_object("small", bytes::Bytes::from_static(b"small\n"), &Default::default()).await.expect("put");
        c
    });
    let mut env = Env::new();
    let point = env.root.join("sw");
    let log = env.root.join("sw.log");
    let args = ["--swift-auth", auth.as_str(), "--swift-user", "test:tester", "--container", container.as_str()];
    env.mounts.push(Mount::start(&point, &log, &args, &[("PITHOSFS_SWIFT_KEY", "testing")]));
    let five_gib: u64 = 5 << 30;
    env.fails_with(&format!(r#"truncate -s {} "$R/sw/small""#, five_gib + 1), "File too large");
    env.fails_with(
        r#"dd if=/dev/zero of="$R/sw/small" bs=1 count=1 seek=6G conv=notrunc status=none"#,
        "File too large",
    );
    assert_eq!(env.sh(r#"cat "$R/sw/small"; stat -c %s "$R/sw/small""#), "small\n6\n");
    let info = rt.block_on(client.get_object_info("small")).unwrap();
    assert_eq!(info.bytes, 6);
    env.unmount_at("sw");
    rt.block_on(async {
        client.delete_object("small").await.expect("delete");
        client.delete_container().await.expect("delete the container");
    });
}

/// ENAMETOOLONG, never ENOENT, for a name over 255 bytes on every call and
/// for an object name over 8,192 bytes (the local cloud's limit); names of
/// 255 bytes and object names of 8,192 work. A symlink target of 4 KiB (4,095 bytes) is made, read
/// back and read again after a remount.
#[test]
fn long_names_answer_enametoolong_and_4k_symlinks_work() {
    let mut env = Env::new();
    env.mount(&[]);
    let long = "n".repeat(256);
    let max = "m".repeat(255);
    env.sh(&format!(r#"cd "$M/pithos"; echo ok > ok; mkdir okdir; echo {max} > {max}; cat {max} >/dev/null"#));
    let too_long = "File name too long";
    for script in [
        format!("stat {long}"),
        format!("cat {long}"),
        format!(": > {long}"),
        format!("touch {long}"),
        format!("mkdir {long}"),
        format!("mv ok {long}"),
        format!("mv {long} ok2"),
        format!("rm {long}"),
        format!("rmdir {long}"),
        format!("ln -s ok {long}"),
        format!("ln ok {long}"),
        format!("mkfifo {long}"),
        format!("mknod {long} p"),
        format!("stat okdir/{long}"),
        format!("mv okdir {long}"),
        format!("setfattr -n user.a -v b {long}"),
    ] {
        env.fails_with(&format!(r#"cd "$M/pithos"; {script}"#), too_long);
    }
    // The system calls themselves, for the errno.
    let dir = env.m().join("pithos");
    let c_path = |name: &str| CString::new(dir.join(name).as_os_str().as_bytes()).unwrap();
    let errno = |r: i32| if r < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(0) } else { 0 };
    let (lp, ok) = (c_path(&long), c_path("ok"));
    // SAFETY: NUL-terminated paths; the calls only read them.
    unsafe {
        assert_eq!(errno(libc::access(lp.as_ptr(), libc::F_OK)), libc::ENAMETOOLONG, "lookup");
        assert_eq!(errno(libc::open(lp.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644)), libc::ENAMETOOLONG, "create");
        assert_eq!(errno(libc::mkdir(lp.as_ptr(), 0o755)), libc::ENAMETOOLONG, "mkdir");
        assert_eq!(errno(libc::unlink(lp.as_ptr())), libc::ENAMETOOLONG, "unlink");
        assert_eq!(errno(libc::rmdir(lp.as_ptr())), libc::ENAMETOOLONG, "rmdir");
        assert_eq!(errno(libc::rename(ok.as_ptr(), lp.as_ptr())), libc::ENAMETOOLONG, "rename to");
        assert_eq!(errno(libc::rename(lp.as_ptr(), ok.as_ptr())), libc::ENAMETOOLONG, "rename from");
        assert_eq!(errno(libc::symlink(ok.as_ptr(), lp.as_ptr())), libc::ENAMETOOLONG, "symlink");
        assert_eq!(errno(libc::link(ok.as_ptr(), lp.as_ptr())), libc::ENAMETOOLONG, "link");
        assert_eq!(errno(libc::mknod(lp.as_ptr(), libc::S_IFREG | 0o644, 0)), libc::ENAMETOOLONG, "mknod");
        // mknod of a regular file makes an empty one, as creat(2) would.
        assert_eq!(errno(libc::mknod(c_path("by-mknod").as_ptr(), libc::S_IFREG | 0o640, 0)), 0, "mknod S_IFREG");
    }
    assert_eq!(env.cloud.get("pithos", "by-mknod"), b"");
    assert_eq!(env.sh(r#"stat -c '%s %a' "$M/pithos/by-mknod""#), "0 640\n");
    // Object names: 40 folders of 200 bytes and their slashes make 8,040
    // bytes (made a folder at a time: the whole path is past PATH_MAX); a
    // name of 152 more makes 8,192 (the limit, fits), of 153 makes 8,193.
    let seg = "d".repeat(200);
    let deep = vec![seg.as_str(); 40].join("/");
    let fits = "f".repeat(152);
    let go_deep = format!(r#"cd "$M/pithos"; for i in $(seq 40); do mkdir -p {seg}; cd {seg}; done"#);
    env.sh(&format!("{go_deep}; echo fits > {fits}; cat {fits}"));
    assert_eq!(env.cloud.get("pithos", &format!("{deep}/{fits}")), b"fits\n");
    let over = "g".repeat(153);
    for script in [
        format!("stat {over}"),
        format!(": > {over}"),
        format!("mkdir {over}"),
        format!("ln -s ok {over}"),
        format!("mv {fits} {over}"),
        format!("mkfifo {over}"),
    ] {
        env.fails_with(&format!("{go_deep}; {script}"), too_long);
    }
    // A folder moved where its own name would be too long.
    env.fails_with(&format!(r#"{go_deep}; mv "$M/pithos/okdir" {over}"#), too_long);
    // A hard link to a name too long, and (the names fine) both work.
    env.fails_with(&format!(r#"{go_deep}; ln "$M/pithos/ok" {over}"#), too_long);
    env.sh(r#"cd "$M/pithos"; mkfifo fifo; ln ok hard; test -p fifo; test "$(stat -c %h ok)" = 2"#);
    assert_eq!(env.sh(r#"cd "$M/pithos"; cat ok; ls okdir | wc -l"#), "ok\n0\n");

    // A symlink target of 4,095 bytes (PATH_MAX with its NUL).
    let target: String = (0..4095).map(|i| if i % 100 == 99 { '/' } else { 't' }).collect();
    env.mounts[0].reset_peak_rss();
    env.sh(&format!(r#"cd "$M/pithos"; ln -s '{target}' link4k; test "$(readlink link4k)" = '{target}'"#));
    assert_eq!(env.cloud.get("pithos", "link4k"), target.as_bytes());
    env.fails_with(&format!(r#"cd "$M/pithos"; ln -s '{target}x' link4k1"#), too_long);
    let made = env.mounts[0].peak_rss_mib();
    env.remount(&[]);
    assert_eq!(env.sh(r#"cd "$M/pithos"; readlink link4k"#).trim_end(), target);
    assert_eq!(env.sh(r#"cd "$M/pithos"; stat -c %s link4k"#).trim(), "4095");
    let ls = env.sh(r#"ls -l "$M/pithos/link4k""#);
    assert!(ls.starts_with('l') && ls.trim_end().ends_with(&target), "{ls}");
    let read = env.mounts[0].peak_rss_mib();
    println!("peak RSS with a 4 KiB symlink: {made} MiB making it, {read} MiB reading it after a remount");
    for peak in [made, read] {
        assert!(peak < 64, "the mount's peak RSS was {peak} MiB (bound: 64 MiB)");
    }
}

/// 10,000 xattr calls in a row (set, get, list, remove) on one file work and
/// hold bounded memory; a file takes at most 27 names (ENOSPC past them);
/// no name reaches the owner or mode keys (`user.posix_uid` would chown).
#[test]
fn ten_thousand_xattr_calls_in_bounded_memory() {
    let mut env = Env::new();
    env.mount(&[]);
    env.sh(r#"echo x > "$M/pithos/f""#);
    let path = CString::new(env.m().join("pithos/f").as_os_str().as_bytes()).unwrap();
    let set = |name: &str, value: &[u8]| -> i32 {
        let n = CString::new(name).unwrap();
        // SAFETY: NUL-terminated strings and a buffer of value.len() bytes.
        let r = unsafe { libc::setxattr(path.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        }
    };
    let get = |name: &str| -> Result<Vec<u8>, i32> {
        let n = CString::new(name).unwrap();
        let mut buf = vec![0u8; 512];
        // SAFETY: NUL-terminated strings and a buffer of buf.len() bytes.
        let r = unsafe { libc::getxattr(path.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r < 0 {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1));
        }
        buf.truncate(r as usize);
        Ok(buf)
    };
    env.mounts[0].reset_peak_rss();
    let started = std::time::Instant::now();
    let mut calls = 0;
    for i in 0..2_500 {
        let name = format!("user.k{}", i % 8);
        let value = format!("value-{i}-{}", "v".repeat(i % 200));
        assert_eq!(set(&name, value.as_bytes()), 0, "setxattr #{i}");
        for _ in 0..3 {
            assert_eq!(get(&name).as_deref(), Ok(value.as_bytes()), "getxattr after set #{i}");
        }
        calls += 4;
    }
    println!("{calls} xattr calls in {:.1} s", started.elapsed().as_secs_f64());
    let peak = env.mounts[0].peak_rss_mib();
    println!("peak RSS over {calls} xattr calls: {peak} MiB");
    assert!(peak < 64, "the mount's peak RSS was {peak} MiB (bound: 64 MiB)");
    let listed = env.sh(r#"getfattr -d "$M/pithos/f" | grep -c '^user\.k'"#);
    assert_eq!(listed.trim(), "8");
    // At most 27 names on one file (Pithos keeps 32 keys, the POSIX attributes take 5).
    for i in 8..pithosfs::fs::xattr::MAX_XATTRS {
        assert_eq!(set(&format!("user.more{i}"), b"1"), 0, "name #{i}\n{}", env.logs());
    }
    assert_eq!(set("user.one-too-many", b"1"), libc::ENOSPC);
    assert_eq!(set("user.k0", b"replacing is fine"), 0);
    // The owner and mode keys cannot be reached, however the name is spelled.
    for name in ["user.posix_uid", "user.POSIX-UID", "user.posix-mode", "user.Posix_Host", "user.pithos.hash"] {
        assert_eq!(set(name, b"0"), libc::EPERM, "{name}");
    }
    assert_eq!(env.cloud.head("pithos", "f").header("x-object-meta-posix-uid"), None);
    assert_eq!(env.sh(r#"cat "$M/pithos/f""#), "x\n");
}

/// A folder of 100,000 entries: `ls -l`, `find` and a lookup work, with the
/// mount's peak RSS under a stated bound. The objects are written straight
/// into the server's database as setup (through HTTP one by one would take
/// minutes); everything under test goes through the mount.
#[test]
fn a_folder_of_100000_entries_in_bounded_memory() {
    use pithosfs::cloud::db::Db;
    use pithosfs::cloud::pithos::model;
    const N: usize = 100_000;
    let mut env = Env::new();
    env.cloud.put("pithos", "many/first", b"first\n");
    let db = Db::open(&env.cloud.data.join("meta.sqlite")).expect("open the server's database");
    let account = env.cloud.account.clone();
    db.write_blocking(move |tx| {
        let c = model::container(tx, &account, "pithos")?.expect("container pithos");
        let mut meta = model::Meta::new();
        meta.insert("X-Object-Meta-Posix-Mode".into(), "640".into());
        for i in 0..N - 1 {
            let new = model::NewVersion {
                uuid: format!("many-{i}"),
                bytes: (i % 1000) as u64,
                hashmap: Vec::new(),
                content_type: "application/octet-stream".into(),
                checksum: String::new(),
                meta: meta.clone(),
                modified_by: account.clone(),
            };
            model::put_version(tx, &c, &format!("many/file-{i:06}"), new, 0, 1_600_000_000.0)?;
        }
        Ok(())
    })
    .expect("write 100,000 objects");
    drop(db);
    env.mount(&[]);
    env.mounts[0].reset_peak_rss();
    let started = std::time::Instant::now();
    assert_eq!(env.sh(r#"ls -l "$M/pithos/many" | tail -n +2 | wc -l"#).trim(), N.to_string());
    let ls = started.elapsed();
    assert_eq!(env.sh(r#"find "$M/pithos/many" -type f | wc -l"#).trim(), N.to_string());
    assert_eq!(env.sh(r#"ls -l "$M/pithos/many" | grep -c '^-rw-r-----'"#).trim(), (N - 1).to_string());
    assert_eq!(env.sh(r#"stat -c '%s %a' "$M/pithos/many/file-054321""#), "321 640\n");
    assert_eq!(env.sh(r#"cat "$M/pithos/many/first""#), "first\n");
    println!(
        "ls -l of {N} entries: {:.1} s; ls, find and ls again: {:.1} s",
        ls.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let peak = env.mounts[0].peak_rss_mib();
    println!("peak RSS over a folder of {N} entries: {peak} MiB");
    assert!(peak < 400, "the mount's peak RSS was {peak} MiB (bound: 400 MiB)");
}
