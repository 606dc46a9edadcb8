//! Zero-copy copies: `copy_file_range` inside the mount (what `cp` uses)
//! takes whole blocks by their hashes. A real mount of the local cloud,
//! through a proxy that counts the bytes the server receives.

mod harness;

use harness::hostile::Hostile;
use harness::*;

/// Mounts the account at `$M` through `proxy`.
fn mount_through(env: &mut Env, proxy: &Hostile) {
    let point = env.m();
    let log = env.root.join(format!("mnt.{}.log", env.mounts.len()));
    let identity = proxy.identity();
    let envs = [("PITHOSFS_URL", identity.as_str()), ("PITHOSFS_TOKEN", TOKEN)];
    env.mounts.push(Mount::start(&point, &log, &[], &envs));
}

/// `cp` of a 256 MiB file (not a whole number of blocks) inside the mount,
/// in the same container and into another: the copies are exact, and the
/// server receives well under 1 MiB for each (the hashmap, not the data).
#[test]
fn cp_inside_the_mount_sends_no_data() {
    let mut env = Env::new();
    let proxy = Hostile::start(&env.cloud.url);
    env.cloud.create_container("other");
    let bs = env.cloud.block_size("pithos") as usize;
    let data = random_bytes(64 * bs + 12345, 31);
    env.cloud.put("pithos", "big.bin", &data);
    mount_through(&mut env, &proxy);
    let want = sha256(&data);
    for (to, container, name) in
        [("$M/pithos/copy.bin", "pithos", "copy.bin"), ("$M/other/deep/copy.bin", "other", "deep/copy.bin")]
    {
        env.sh(&format!(r#"mkdir -p "$(dirname "{to}")""#));
        let before = proxy.bytes_up();
        env.sh(&format!(r#"cp "$M/pithos/big.bin" "{to}""#));
        let sent = proxy.bytes_up() - before;
        println!("cp of {} bytes to {to}: the server received {sent} bytes", data.len());
        assert!(sent < 1 << 20, "cp to {to} sent {sent} bytes to the server\n{}", env.logs());
        assert_eq!(sha256(&env.cloud.get(container, name)), want, "{to} on the server");
        assert_eq!(env.sh(&format!(r#"sha256sum < "{to}" | cut -d' ' -f1"#)).trim(), want, "{to} read back");
    }
    // The copy is a file of its own: changing it leaves the original alone.
    env.sh(r#"printf 'changed' | dd of="$M/pithos/copy.bin" bs=1 seek=5 conv=notrunc status=none"#);
    assert_eq!(sha256(&env.cloud.get("pithos", "big.bin")), want);
    assert_eq!(&env.cloud.get("pithos", "copy.bin")[5..12], b"changed");
}

/// `copy_file_range` at unaligned offsets, over part of an existing file,
/// past its end, from a file with changes not yet committed, and within one
/// file: byte-exact against the same copies done in memory.
#[test]
fn copy_file_range_at_any_offsets_is_byte_exact() {
    let mut env = Env::new();
    let proxy = Hostile::start(&env.cloud.url);
    let bs = env.cloud.block_size("pithos") as usize;
    let src = random_bytes(5 * bs + 777, 41);
    let dst = random_bytes(3 * bs + 99, 42);
    env.cloud.put("pithos", "src.bin", &src);
    env.cloud.put("pithos", "dst.bin", &dst);
    mount_through(&mut env, &proxy);
    // (source offset, destination offset, length): unaligned both ends;
    // aligned whole blocks over the existing end; the source's partial last
    // block to past the destination's end; aligned source, unaligned
    // destination; and within the destination itself (no overlap).
    let script = format!(
        r#"python3 - "$M/pithos/src.bin" "$M/pithos/dst.bin" <<'EOF'
import os, sys
bs = {bs}
s = os.open(sys.argv[1], os.O_RDWR)
d = os.open(sys.argv[2], os.O_RDWR)
os.pwrite(s, b"uncommitted", 3 * bs + 10)
def copy(fi, oi, fo, oo, n):
    done = 0
    while done < n:
        k = os.copy_file_range(fi, fo, n - done, oi + done, oo + done)
        if k == 0:
            break
        done += k
    print(done)
copy(s, bs - 3, d, 2 * bs + 5, bs + 11)
copy(s, bs, d, 2 * bs, 3 * bs)
copy(s, 4 * bs, d, 6 * bs, 2 * bs)
copy(s, 2 * bs, d, 100, bs)
copy(d, 0, d, 9 * bs, 50)
os.close(s)
os.close(d)
EOF"#
    );
    let before = proxy.bytes_up();
    let counts: Vec<usize> = env.sh(&script).lines().map(|l| l.trim().parse().unwrap()).collect();
    // Blocks taken by hash are not sent: only the source's changed block
    // (3) and the destination's blocks written as bytes (0, 1 and 9) are,
    // where a copy through reads and writes would send eight more.
    let sent = proxy.bytes_up() - before;
    assert!(sent < (4 * bs + (1 << 20)) as u64, "the copies sent {sent} bytes\n{}", env.logs());
    let mut s = src.clone();
    s[3 * bs + 10..3 * bs + 21].copy_from_slice(b"uncommitted");
    let mut d = dst.clone();
    let mut expect = Vec::new();
    let mut copy = |from: &[u8], oi: usize, to: &mut Vec<u8>, oo: usize, n: usize| {
        let n = n.min(from.len().saturating_sub(oi));
        let piece = from[oi..oi + n].to_vec();
        if to.len() < oo + n {
            to.resize(oo + n, 0);
        }
        to[oo..oo + n].copy_from_slice(&piece);
        expect.push(n);
    };
    copy(&s, bs - 3, &mut d, 2 * bs + 5, bs + 11);
    copy(&s, bs, &mut d, 2 * bs, 3 * bs);
    copy(&s, 4 * bs, &mut d, 6 * bs, 2 * bs);
    copy(&s, 2 * bs, &mut d, 100, bs);
    let snapshot = d.clone();
    copy(&snapshot, 0, &mut d, 9 * bs, 50);
    assert_eq!(counts, expect, "bytes each copy reported");
    assert_eq!(env.cloud.get("pithos", "src.bin"), s, "the source, committed first");
    let got = env.cloud.get("pithos", "dst.bin");
    assert_eq!(got.len(), d.len());
    assert!(got == d, "the destination differs from the same copies done in memory");
    assert_eq!(env.sh(r#"sha256sum < "$M/pithos/dst.bin" | cut -d' ' -f1"#).trim(), sha256(&d));
}

/// A copy to an offset past the largest file the store holds (1 TiB on
/// Pithos), block-aligned or not, is `EFBIG` and leaves the destination as
/// it was.
#[test]
fn copy_file_range_past_the_largest_file_is_efbig() {
    let mut env = Env::new();
    let bs = env.cloud.block_size("pithos") as usize;
    env.cloud.put("pithos", "src.bin", &random_bytes(bs + 10, 51));
    env.cloud.put("pithos", "dst.bin", b"keep me");
    env.mount(&[]);
    let out = env.sh(&format!(
        r#"python3 - "$M/pithos/src.bin" "$M/pithos/dst.bin" <<'EOF'
import errno, os, sys
s = os.open(sys.argv[1], os.O_RDONLY)
d = os.open(sys.argv[2], os.O_RDWR)
for off in (1 << 50, (1 << 50) + 3, (1 << 62) + {bs}):
    try:
        os.copy_file_range(s, d, {bs} + 10, 0, off)
        print("copied")
    except OSError as e:
        print(errno.errorcode[e.errno])
os.close(d)
EOF"#
    ));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["EFBIG", "EFBIG", "EFBIG"], "{out}");
    assert_eq!(env.cloud.get("pithos", "dst.bin"), b"keep me");
    assert_eq!(env.sh(r#"stat -c %s "$M/pithos/dst.bin""#), "7\n");
}
