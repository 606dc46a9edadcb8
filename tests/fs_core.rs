//! The filesystem (`Fs`) driven in process, without a kernel, through the
//! `Driver` of `tests/common/fs_driver.rs` (read its top comment): over the
//! local cloud (`PithosStore` on `TestCloud`) and over the real Swift
//! (`SwiftStore`, with `PITHOSFS_SWIFT_AUTH`), with request counts asserted
//! and a few faults placed on purpose. The fault matrix is `fs_faults.rs`,
//! the model-based property test `fs_model.rs`.

mod common;

use common::blocks::random_bytes;
use common::fs_driver::*;
use common::TestCloud;
use pithosfs::clients::storage::{ListOptions, ObjectStorage, PutOptions};
use pithosfs::fs::errno::Errno;
use pithosfs::fs::store::{Fault, PithosStore, StoreError, StoreOp};
use std::time::Duration;

// ---------------------------------------------------------------------------
// over the local cloud
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_write_read_rename_unlink() {
    let tc = cloud().await;
    let d = pithos(&tc);
    let data = random_bytes(3 * BS + 123, 1);
    d.mkdir("a").await.unwrap();
    d.put("a/f.bin", &data).await.unwrap();
    assert_eq!(on_server(&tc, "a/f.bin").await.as_deref(), Some(&data[..]), "close() committed it");
    assert_eq!(d.get("a/f.bin").await.unwrap(), data);
    d.mkdir("b").await.unwrap();
    d.rename("a/f.bin", "b/g.bin").await.unwrap();
    assert_eq!(d.lookup("a/f.bin").await, Err(Errno::NOENT));
    assert_eq!(on_server(&tc, "a/f.bin").await, None);
    assert_eq!(d.get("b/g.bin").await.unwrap(), data);
    assert_eq!(d.ls("b").await.unwrap(), vec!["g.bin"]);
    assert_eq!(d.rmdir("b").await, Err(Errno::NOTEMPTY));
    d.unlink("b/g.bin").await.unwrap();
    assert_eq!(on_server(&tc, "b/g.bin").await, None);
    d.rmdir("b").await.unwrap();
    assert_eq!(d.ls("").await.unwrap(), vec!["a"]);
    // A folder moves whole, in one request.
    d.put("a/x/y.txt", b"y").await.unwrap_err(); // no folder x yet
    d.mkdir("a/x").await.unwrap();
    d.put("a/x/y.txt", b"y").await.unwrap();
    let before = d.store().counts();
    d.rename("a", "c").await.unwrap();
    assert_eq!(d.store().since(&before), vec![(StoreOp::RenameFolder, 1)]);
    assert_eq!(on_server(&tc, "c/x/y.txt").await.as_deref(), Some(&b"y"[..]));
    assert_eq!(d.get("c/x/y.txt").await.unwrap(), b"y");
}

/// `ls -l` of a folder costs one listing, whatever it holds: its entries
/// carry their attributes, and no object is asked for one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_l_of_a_folder_costs_one_listing() {
    let tc = cloud().await;
    tc.bulk_objects("pithos", "dir/f", 300).await;
    let d = pithos(&tc);
    d.lookup("dir").await.unwrap();
    let (before, requests) = (d.store().counts(), d.requests());
    let names = d.ls("dir").await.unwrap();
    assert_eq!(names.len(), 300);
    for n in &names {
        d.fs.getattr(d.lookup(&format!("dir/{n}")).await.unwrap()).await.unwrap();
    }
    assert_eq!(d.store().since(&before), vec![(StoreOp::ListPage, 1)]);
    assert_eq!(d.requests() - requests, 1, "one HTTP request");
}

/// A new small file costs one request from create to close, as the kernel
/// drives it (lookup of the new name, create, write, flush, release): no
/// empty PUT at create, no listing refresh, no block upload; the close
/// returns once the object is on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_file_costs_one_request() {
    let tc = cloud().await;
    let d = pithos(&tc);
    d.mkdir("small").await.unwrap();
    assert!(d.ls("small").await.unwrap().is_empty());
    let (before, requests) = (d.store().counts(), d.requests());
    for i in 0..20u8 {
        let name = format!("small/f{i:02}");
        assert_eq!(d.lookup(&name).await, Err(Errno::NOENT));
        let fh = d.create(&name).await.unwrap();
        d.write(fh, 0, &[i; 4096]).await.unwrap();
        d.flush(fh).await.unwrap();
        assert_eq!(on_server(&tc, &name).await.as_deref(), Some(&[i; 4096][..]), "on the server at close");
        d.release(fh).await.unwrap();
    }
    // The container's block size is asked once, by its first new file.
    assert_eq!(d.store().since(&before), vec![(StoreOp::Geometry, 1), (StoreOp::Commit, 20)]);
    assert_eq!(d.requests() - requests, 1 + 20, "the container's HEAD once, then one PUT per file");
}

/// A folder's mtime and ctime follow the entries made, moved and removed
/// in it, and no request is paid for them: a `cp -r` of many files costs
/// what the files cost. They outlive the folder being listed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_s_times_follow_its_entries_at_no_request() {
    let tc = cloud().await;
    // No TTLs: every getattr lists the folder's parent again.
    let d = Driver::new(PithosStore::new(alice(&tc)), "pithos", |o| {
        o.attr_ttl = Duration::ZERO;
        o.dir_ttl = Duration::ZERO;
    });
    d.mkdir("d").await.unwrap();
    d.mkdir("e").await.unwrap();
    d.utimes("d", 1_000_000_000.0).await.unwrap();
    let times = |ino| {
        let fs = &d.fs;
        async move {
            let a = fs.getattr(ino).await.unwrap();
            (a.mtime.as_secs_f64(), a.ctime.as_secs_f64())
        }
    };
    let (dir, other) = (d.lookup("d").await.unwrap(), d.lookup("e").await.unwrap());
    let (m0, c0) = times(dir).await;
    assert_eq!(m0, 1_000_000_000.0);
    let before = d.store().counts();
    for i in 0..3 {
        d.put(&format!("d/f{i}"), b"x").await.unwrap();
    }
    d.rename("d/f0", "e/f0").await.unwrap();
    d.unlink("d/f1").await.unwrap();
    let ops = d.store().since(&before);
    let paid = |op| ops.iter().find(|(o, _)| *o == op).map_or(0, |(_, n)| *n);
    assert_eq!(
        (paid(StoreOp::Commit), paid(StoreOp::Delete), paid(StoreOp::Rename)),
        (3, 1, 1),
        "what the files cost: {ops:?}"
    );
    for op in [StoreOp::SetMeta, StoreOp::WriteObject, StoreOp::Stat] {
        assert_eq!(paid(op), 0, "no request for the folders' times: {ops:?}");
    }
    // Each getattr lists the root again (no TTLs): the times stay.
    let (m1, c1) = times(dir).await;
    assert!(m1 > m0 && c1 > c0, "{m0} {c0} -> {m1} {c1}");
    assert!(times(other).await.0 > 1_500_000_000.0, "the folder renamed into");
    assert_eq!(times(dir).await, (m1, c1));
}

/// Reading a file cold costs its open and one read per block. A sequential
/// reader releases the blocks it has passed (the kernel's page cache holds
/// them): read again without that page cache, the file costs the open and
/// those blocks, while the two it had not passed are still in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_and_warm_reads() {
    let tc = cloud().await;
    let (data, small) = (random_bytes(5 * BS + 7, 2), random_bytes(BS, 4));
    upload(&tc, "big.bin", &data).await;
    upload(&tc, "one.bin", &small).await;
    let d = pithos(&tc);
    d.lookup("big.bin").await.unwrap();
    d.lookup("one.bin").await.unwrap();
    let before = d.store().counts();
    assert_eq!(d.get("big.bin").await.unwrap(), data);
    assert_eq!(d.store().since(&before), vec![(StoreOp::Open, 1), (StoreOp::ReadBlock, 6)]);
    let before = d.store().counts();
    assert_eq!(d.get("big.bin").await.unwrap(), data);
    // Reads of 128 KiB pieces cover two blocks each; the last starts in
    // block 4, so blocks 0 to 2 were released.
    assert_eq!(PIECE, 2 * BS);
    assert_eq!(d.store().since(&before), vec![(StoreOp::Open, 1), (StoreOp::ReadBlock, 3)]);
    // Read in one piece, nothing is passed: warm, only the open.
    assert_eq!(d.get("one.bin").await.unwrap(), small);
    let before = d.store().counts();
    assert_eq!(d.get("one.bin").await.unwrap(), small);
    assert_eq!(d.store().since(&before), vec![(StoreOp::Open, 1)]);
}

/// A sequential scan of a file twice the cache's size does not push out
/// the blocks other files use: they are still read from memory after it
/// (the scan holds at most its prefetch window, half the cache, and the
/// blocks it is reading).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_leaves_the_cache_to_others() {
    let tc = cloud().await;
    let d = Driver::new(PithosStore::new(alice(&tc)), "pithos", |o| o.cache_size = 16 * BS as u64);
    let (hot, big) = (random_bytes(BS + 10, 8), random_bytes(32 * BS, 9));
    upload(&tc, "hot.bin", &hot).await;
    upload(&tc, "big.bin", &big).await;
    assert_eq!(d.get("hot.bin").await.unwrap(), hot);
    assert_eq!(d.get("big.bin").await.unwrap(), big);
    let before = d.store().counts();
    assert_eq!(d.get("hot.bin").await.unwrap(), hot);
    assert_eq!(d.store().since(&before), vec![(StoreOp::Open, 1)], "the scan pushed out the other file's blocks");
}

/// A 4 KiB edit in the middle of a file of several blocks: the block it
/// touches is read, and it alone is uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4k_edit_uploads_one_block() {
    let tc = cloud().await;
    let mut data = random_bytes(8 * BS, 3);
    upload(&tc, "big.bin", &data).await;
    let d = pithos(&tc);
    let fh = d.open("big.bin", true).await.unwrap();
    let before = d.store().counts();
    let patch = random_bytes(4096, 4);
    let at = 3 * BS + 1000;
    d.write(fh, at as u64, &patch).await.unwrap();
    d.release(fh).await.unwrap();
    data[at..at + 4096].copy_from_slice(&patch);
    assert_eq!(
        d.store().since(&before),
        vec![(StoreOp::ReadBlock, 1), (StoreOp::Commit, 2), (StoreOp::UploadBlock, 1)],
        "hashmap PUT, the missing block, hashmap PUT"
    );
    assert_eq!(on_server(&tc, "big.bin").await.unwrap(), data);
}

/// A commit over a version someone else changed meanwhile overwrites
/// nothing: ours goes to a conflict copy, and close() says EIO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_change_meanwhile_keeps_both() {
    let tc = cloud().await;
    upload(&tc, "doc.txt", b"first\n").await;
    let d = pithos(&tc);
    let fh = d.open("doc.txt", true).await.unwrap();
    d.write(fh, 0, b"ours!!\n").await.unwrap();
    upload(&tc, "doc.txt", b"theirs\n").await;
    assert_eq!(d.release(fh).await, Err(Errno::IO));
    assert_eq!(on_server(&tc, "doc.txt").await.as_deref(), Some(&b"theirs\n"[..]));
    let conflicts = ListOptions { prefix: Some("doc.txt.conflict-".into()), ..Default::default() };
    let copies = alice(&tc).list_objects(&conflicts).await.unwrap();
    assert_eq!(copies.len(), 1, "one conflict copy");
    assert_eq!(on_server(&tc, copies[0].name()).await.as_deref(), Some(&b"ours!!\n"[..]));
}

/// After a commit (fsync) the handle reads the version it wrote, also for
/// blocks the cache no longer holds (a cache of one block here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_after_fsync_come_from_the_committed_version() {
    let tc = cloud().await;
    let d = Driver::new(PithosStore::new(alice(&tc)), "pithos", |o| o.cache_size = BS as u64);
    let data = random_bytes(4 * BS + 10, 5);
    let fh = d.create("new.bin").await.unwrap();
    d.write(fh, 0, &data).await.unwrap();
    d.flush(fh).await.unwrap();
    assert_eq!(d.read(fh, 0, data.len()).await.unwrap(), data);
    d.release(fh).await.unwrap();
    assert_eq!(on_server(&tc, "new.bin").await.unwrap(), data);
}

// ---------------------------------------------------------------------------
// faults placed on purpose (FaultyStore)
// ---------------------------------------------------------------------------

/// A block upload refused for quota fails close() with EDQUOT, and the
/// object stays the version it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_block_upload_gives_edquot_and_leaves_the_old_version() {
    let tc = cloud().await;
    let old = random_bytes(6 * BS, 6);
    upload(&tc, "big.bin", &old).await;
    let d = pithos(&tc);
    let fh = d.open("big.bin", true).await.unwrap();
    d.write(fh, BS as u64, &random_bytes(2 * BS, 7)).await.unwrap();
    d.store().inject(StoreOp::UploadBlock, 2, Fault::Fail(StoreError::Quota));
    assert_eq!(d.release(fh).await, Err(Errno::DQUOT));
    assert_eq!(d.store().calls(StoreOp::Commit), 1, "the second hashmap PUT never went");
    assert_eq!(on_server(&tc, "big.bin").await.unwrap(), old);
}

/// A commit whose reply is lost (the store wrote it): the filesystem asks
/// (one HEAD), sees its own version there and succeeds; the object is whole.
/// While the store cannot even be asked, it is EIO, and still whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_reply_is_recognised_and_the_object_is_whole() {
    let tc = cloud().await;
    let old = random_bytes(4 * BS, 8);
    upload(&tc, "big.bin", &old).await;
    let d = pithos(&tc);
    let mut new = old.clone();
    new[BS..2 * BS].copy_from_slice(&random_bytes(BS, 9));
    let fh = d.open("big.bin", true).await.unwrap();
    d.write(fh, BS as u64, &new[BS..2 * BS]).await.unwrap();
    d.store().inject(StoreOp::Commit, 2, Fault::FailAfter(StoreError::Unavailable("reply lost".into())));
    assert_eq!(d.release(fh).await, Ok(()), "its own version is on the server");
    assert_eq!(on_server(&tc, "big.bin").await.unwrap(), new, "the second hashmap PUT went through");
    // Again, with the check failing too: EIO, the object whole.
    let mut newer = new.clone();
    newer[..BS].copy_from_slice(&random_bytes(BS, 10));
    let fh = d.open("big.bin", true).await.unwrap();
    d.write(fh, 0, &newer[..BS]).await.unwrap();
    d.store().inject(StoreOp::Commit, 2, Fault::FailAfter(StoreError::Unavailable("reply lost".into())));
    d.store().inject(StoreOp::Stat, 1, Fault::Fail(StoreError::Unavailable("down".into())));
    assert_eq!(d.release(fh).await, Err(Errno::IO));
    assert_eq!(on_server(&tc, "big.bin").await.unwrap(), newer, "whole, the new version");
}

/// A listing page that fails gives EIO; nothing of it is kept, and the
/// next call lists again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_listing_page_is_eio_then_lists_again() {
    let tc = cloud().await;
    upload(&tc, "dir/a", b"a").await;
    let d = pithos(&tc);
    d.store().inject(StoreOp::ListPage, 1, Fault::Fail(StoreError::Unavailable("down".into())));
    assert_eq!(d.lookup("dir").await, Err(Errno::IO));
    assert_eq!(d.ls("dir").await.unwrap(), vec!["a"]);
}

/// A block read cut short is refused (EIO), not padded with zeros nor
/// cached: the next read gets the block whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_block_read_is_eio_and_not_cached() {
    let tc = cloud().await;
    // One block: no prefetch takes the cut read.
    let data = random_bytes(BS, 10);
    upload(&tc, "f.bin", &data).await;
    let d = pithos(&tc);
    let fh = d.open("f.bin", false).await.unwrap();
    d.store().inject(StoreOp::ReadBlock, 1, Fault::Cut(100));
    assert_eq!(d.read(fh, 0, BS).await.map(|b| b.len()), Err(Errno::IO));
    assert!(d.read(fh, 0, BS).await.unwrap() == data, "read again, whole");
    assert_eq!(d.store().calls(StoreOp::ReadBlock), 2, "the cut block was not cached");
    d.release(fh).await.unwrap();
}

/// The same store error means what the operation makes of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errno_follows_the_operation() {
    let tc = cloud().await;
    let d = pithos(&tc);
    d.mkdir("d").await.unwrap();
    let conflict = || StoreError::Conflict("409".into());
    // A folder the store will not delete holds something: ENOTEMPTY.
    d.store().inject(StoreOp::Delete, 1, Fault::Fail(conflict()));
    assert_eq!(d.rmdir("d").await, Err(Errno::NOTEMPTY));
    // A new file the store refuses as conflicting: EIO, not ENOTEMPTY.
    let fh = d.create("d/f").await.unwrap();
    d.write(fh, 0, b"x").await.unwrap();
    d.store().inject(StoreOp::Commit, 1, Fault::Fail(conflict()));
    assert_eq!(d.release(fh).await, Err(Errno::IO));
    d.store().inject(StoreOp::WriteObject, 1, Fault::Fail(StoreError::NameTooLong));
    assert_eq!(d.mkdir("d/e").await, Err(Errno::NAMETOOLONG));
    d.store().inject(StoreOp::Commit, 1, Fault::Fail(StoreError::TooLarge));
    assert_eq!(d.put("d/g", b"g").await, Err(Errno::FBIG));
    d.store().inject(StoreOp::Open, 1, Fault::Fail(StoreError::Denied));
    d.put("d/h", b"h").await.unwrap();
    assert_eq!(d.open("d/h", false).await, Err(Errno::ACCES));
}

// ---------------------------------------------------------------------------
// forget
// ---------------------------------------------------------------------------

/// The inode table holds what the kernel holds: after `ls -l` of a folder
/// and a forget of everything, only what is still needed here stays (an
/// open file, and the folders it names itself through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_nodes_leave_the_inode_table() {
    let tc = cloud().await;
    tc.bulk_objects("pithos", "many/f", 2000).await;
    upload(&tc, "keep/open.txt", b"still open").await;
    let d = pithos(&tc);
    let empty = d.fs.node_count();
    assert_eq!(d.ls("many").await.unwrap().len(), 2000);
    assert!(d.fs.node_count() >= 2000, "{} nodes after ls -l", d.fs.node_count());
    let fh = d.open("keep/open.txt", false).await.unwrap();
    d.drop_caches();
    assert_eq!(d.fs.node_count(), empty + 2, "the open file and its folder stay");
    assert_eq!(d.read(fh, 0, 100).await.unwrap(), b"still open");
    d.release(fh).await.unwrap();
    assert_eq!(d.fs.node_count(), empty, "closed and forgotten: gone");
    // A file forgotten while its folder stays comes back, at the next
    // lookup, with the number its folder's listing gave it.
    let a = d.lookup("many/f00007").await.unwrap();
    let held = d.fs.node_count();
    d.fs.forget(a, 1);
    assert_eq!(d.fs.node_count(), held - 1);
    assert_eq!(d.fs.lookup(d.lookup("many").await.unwrap(), "f00007").await.unwrap().0, a, "the same number");
    assert_eq!(d.get("many/f00007").await.unwrap(), b"");
}

// ---------------------------------------------------------------------------
// over the real Swift
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_round_trip_edit_and_conflict() {
    let Some(sw) = SwiftBox::new("rw").await else { return };
    let d = sw.driver(|_| {});
    let mut data = random_bytes(9 << 20, 11);
    d.mkdir("a").await.unwrap();
    d.put("a/big.bin", &data).await.unwrap();
    assert_eq!(sw.get("a/big.bin").await.unwrap(), data);
    // A 4 KiB edit goes up as the whole object, in one PUT.
    let fh = d.open("a/big.bin", true).await.unwrap();
    let (before, requests) = (d.store().counts(), d.requests());
    d.write(fh, 5 << 20, &[0x5a; 4096]).await.unwrap();
    d.release(fh).await.unwrap();
    data[5 << 20..(5 << 20) + 4096].fill(0x5a);
    // The block it changes is in the cache since it was written.
    assert_eq!(d.store().since(&before), vec![(StoreOp::Commit, 1)]);
    assert_eq!(d.requests() - requests, 2, "the HEAD that checks the version, the PUT");
    assert_eq!(sw.get("a/big.bin").await.unwrap(), data);
    assert_eq!(d.get("a/big.bin").await.unwrap(), data);
    // Renames copy then delete; the content follows.
    d.rename("a/big.bin", "a/moved.bin").await.unwrap();
    assert_eq!(sw.get("a/big.bin").await, None);
    d.mkdir("b").await.unwrap();
    d.rename("a", "b/a").await.unwrap();
    assert_eq!(sw.get("b/a/moved.bin").await.unwrap(), data);
    // A remote change meanwhile: a conflict copy, EIO.
    d.put("doc.txt", b"first\n").await.unwrap();
    let fh = d.open("doc.txt", true).await.unwrap();
    d.write(fh, 0, b"ours!!\n").await.unwrap();
    sw.client.put_object("doc.txt", b"theirs\n".to_vec().into(), &PutOptions::default()).await.unwrap();
    assert_eq!(d.release(fh).await, Err(Errno::IO));
    assert_eq!(sw.get("doc.txt").await.unwrap(), b"theirs\n");
    d.unlink("b/a/moved.bin").await.unwrap();
    assert_eq!(sw.get("b/a/moved.bin").await, None);
    sw.remove().await;
}

/// Swift lists no metadata: `ls -l` costs one listing and a HEAD per object
/// the first time, and one listing after that (what the HEADs said is kept
/// while an object's ETag and size stay).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_ls_l_heads_each_object_once() {
    let Some(sw) = SwiftBox::new("ls").await else { return };
    for i in 0..20 {
        let o = PutOptions { meta: vec![("posix-mode".into(), "600".into())], ..Default::default() };
        sw.client.put_object(&format!("d/f{i:02}"), vec![i as u8; 10].into(), &o).await.unwrap();
    }
    let d = sw.driver(|o| o.dir_ttl = Duration::ZERO);
    let dir = d.lookup("d").await.unwrap();
    let requests = d.requests();
    assert_eq!(d.ls_at(dir).await.unwrap().len(), 20);
    assert_eq!(d.requests() - requests, 1 + 20, "one listing, a HEAD per object");
    let (f03, attr) = d.fs.lookup(dir, "f03").await.unwrap();
    assert_eq!(attr.mode, Some(0o600), "the mode came from the HEAD");
    let requests = d.requests();
    assert_eq!(d.ls_at(dir).await.unwrap().len(), 20);
    assert_eq!(d.requests() - requests, 1, "listed again: no HEAD");
    // A chmod here keeps what is known (the ETag does not change).
    d.fs.setattr(f03, Some(0o640), None, None, None, Default::default(), None).await.unwrap();
    let requests = d.requests();
    d.ls_at(dir).await.unwrap();
    assert_eq!(d.requests() - requests, 1, "after a chmod: still no HEAD");
    assert_eq!(d.fs.lookup(dir, "f03").await.unwrap().1.mode, Some(0o640));
    sw.remove().await;
}

// ---------------------------------------------------------------------------
// special files and hard links
// ---------------------------------------------------------------------------

/// FIFOs, sockets and device nodes are objects of their own types, and a
/// folder of them lists in one request with their kinds and device numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_special_files_lists_in_one_request() {
    use pithosfs::fs::attr::Kind;
    let tc = cloud().await;
    let d = pithos(&tc);
    d.mkdir("dev").await.unwrap();
    let before = d.store().counts();
    for i in 0..40 {
        d.mknod(&format!("dev/p{i:02}"), libc::S_IFIFO | 0o640, 0).await.unwrap();
    }
    assert_eq!(d.store().since(&before), vec![(StoreOp::WriteObject, 40)], "one PUT each, no commit");
    d.mknod("dev/tty", libc::S_IFCHR | 0o600, libc::makedev(4, 1) as u32).await.unwrap();
    d.mknod("dev/loop", libc::S_IFBLK | 0o660, libc::makedev(7, 0) as u32).await.unwrap();
    d.mknod("dev/sock", libc::S_IFSOCK | 0o755, 0).await.unwrap();
    let info = alice(&tc).get_object_info("dev/tty").await.unwrap();
    assert_eq!(info.content_type, "inode/chardevice");
    assert_eq!(info.meta.get("posix-rdev").map(String::as_str), Some(&*libc::makedev(4, 1).to_string()));
    // Another mount: the listing alone tells every kind and rdev.
    let e = pithos(&tc);
    let dir = e.lookup("dev").await.unwrap();
    let before = e.store().counts();
    assert_eq!(e.ls_at(dir).await.unwrap().len(), 43);
    let kinds: Vec<(Kind, u32, Option<u32>)> = ["p07", "tty", "loop", "sock"]
        .iter()
        .map(|n| e.fs.cached_lookup(dir, n).unwrap().map(|(_, a)| (a.kind, a.rdev, a.mode)).unwrap())
        .collect();
    assert_eq!(e.store().since(&before), vec![(StoreOp::ListPage, 1)], "one listing, no request per entry");
    assert_eq!(
        kinds,
        vec![
            (Kind::Fifo, 0, Some(0o640)),
            (Kind::CharDevice, libc::makedev(4, 1) as u32, Some(0o600)),
            (Kind::BlockDevice, libc::makedev(7, 0) as u32, Some(0o660)),
            (Kind::Socket, 0, Some(0o755)),
        ]
    );
    // A special file holds no data: opening it here is refused (the kernel opens them itself).
    let p = e.lookup("dev/p00").await.unwrap();
    assert_eq!(e.fs.open(p, false, false).await.map(drop), Err(Errno(libc::ENXIO)));
    e.unlink("dev/p00").await.unwrap();
    assert!(alice(&tc).get_object_info("dev/p00").await.is_err());
}

/// `link` on Pithos is one server-side copy (no block moves) and one
/// metadata update of the first name; both names are one node; a write
/// through one reaches the other; after a remount the group is found again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_link_is_one_server_side_copy_and_stays_one_file() {
    let tc = cloud().await;
    let d = pithos(&tc);
    let data = random_bytes(3 * BS + 5, 7);
    d.mkdir("a").await.unwrap();
    d.mkdir("b").await.unwrap();
    d.put("a/f", &data).await.unwrap();
    let (requests, before) = (d.requests(), d.store().counts());
    let ino = d.link("a/f", "b/g").await.unwrap();
    assert_eq!(d.store().since(&before), vec![(StoreOp::SetMeta, 1), (StoreOp::Copy, 1)]);
    assert_eq!(d.requests() - requests, 2, "a copy and a metadata update: no block upload");
    assert_eq!(on_server(&tc, "b/g").await.as_deref(), Some(&data[..]));
    let (f, fa) = d.stat("a/f").await.unwrap();
    let (g, ga) = d.stat("b/g").await.unwrap();
    assert_eq!((f, g, fa.nlink, ga.nlink), (ino, ino, 2, 2), "one inode, two names");
    // A write through one name is seen through the other, and on the server.
    let fh = d.open("b/g", true).await.unwrap();
    d.write(fh, 0, b"HELLO").await.unwrap();
    d.release(fh).await.unwrap();
    let mut want = data.clone();
    want[..5].copy_from_slice(b"HELLO");
    assert_eq!(on_server(&tc, "a/f").await.as_deref(), Some(&want[..]));
    assert_eq!(on_server(&tc, "b/g").await.as_deref(), Some(&want[..]));
    d.chmod("a/f", 0o600).await.unwrap();
    assert_eq!(
        alice(&tc).get_object_info("b/g").await.unwrap().meta.get("posix-mode").map(String::as_str),
        Some("600")
    );
    // Remount: both names are one node again; the group is found by one search.
    let e = pithos(&tc);
    let (f, fa) = e.stat("a/f").await.unwrap();
    let (g, _) = e.stat("b/g").await.unwrap();
    assert_eq!((f == g, fa.nlink, fa.mode), (true, 2, Some(0o600)));
    e.link("b/g", "a/h").await.unwrap();
    assert_eq!(e.store().calls(StoreOp::FindByMeta), 1, "the group's names, found by one search");
    assert_eq!(e.stat("a/f").await.unwrap().1.nlink, 3);
    // Unlinking a name leaves the others, with the new count.
    e.unlink("a/f").await.unwrap();
    assert_eq!(on_server(&tc, "a/f").await, None);
    assert_eq!(e.stat("b/g").await.unwrap().1.nlink, 2);
    assert_eq!(alice(&tc).get_object_info("a/h").await.unwrap().meta.get("posix-nlink").map(String::as_str), Some("2"));
    e.unlink("a/h").await.unwrap();
    let last = alice(&tc).get_object_info("b/g").await.unwrap();
    assert!(!last.meta.contains_key("posix-link"), "a last name is an ordinary file again");
    assert_eq!(e.get("b/g").await.unwrap(), want);
}

/// Over a real Swift, a hard link is a server-side copy too (Swift copies
/// the data), and the group is found again after a remount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_hard_links_and_special_files() {
    let Some(sw) = SwiftBox::new("links").await else { return };
    let d = sw.driver(|_| {});
    d.put("f", b"one").await.unwrap();
    d.mknod("p", libc::S_IFIFO | 0o644, 0).await.unwrap();
    let ino = d.link("f", "g").await.unwrap();
    assert_eq!((d.stat("g").await.unwrap().0, d.stat("f").await.unwrap().0), (ino, ino));
    d.put("g", b"two!").await.unwrap();
    assert_eq!(sw.get("f").await.as_deref(), Some(&b"two!"[..]));
    let e = sw.driver(|_| {});
    let (f, fa) = e.stat("f").await.unwrap();
    let (g, _) = e.stat("g").await.unwrap();
    assert_eq!((f == g, fa.nlink), (true, 2));
    assert_eq!(e.stat("p").await.unwrap().1.kind, pithosfs::fs::attr::Kind::Fifo);
    e.unlink("g").await.unwrap();
    assert_eq!(e.stat("f").await.unwrap().1.nlink, 1);
    assert_eq!(sw.get("g").await, None);
    sw.remove().await;
}

/// A file open while renamed, with a new file made at its old name, still
/// reads its own content (the model test's shrunk case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_file_renamed_reads_on_after_a_new_file_takes_its_old_name() {
    let tc = cloud().await;
    let d = pithos(&tc);
    let fh = d.create("a").await.unwrap();
    d.truncate("a", 50, Some(fh)).await.unwrap();
    d.flush(fh).await.unwrap();
    d.rename("a", "b").await.unwrap();
    let fresh = d.create("a").await.unwrap();
    assert_eq!(d.read(fh, 1, 1).await, Ok(vec![0u8]));
    assert_eq!(d.read(fresh, 0, 10).await, Ok(vec![]));
}

/// Every entry `ls -l` gave the kernel is a node until the kernel forgets
/// it; then it goes (its folder's too, once nothing names itself through
/// it), and the folder lists and looks up as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_entries_free_their_nodes() {
    let tc = cloud().await;
    let d = pithos(&tc);
    const N: usize = 300;
    let client = alice(&tc);
    for i in 0..N {
        client.put_object(&format!("many/f{i:04}"), vec![b'x'; i % 7].into(), &PutOptions::default()).await.unwrap();
    }
    let before = d.fs.nodes_held();
    let names = d.ls("many").await.unwrap();
    assert_eq!(names.len(), N);
    assert_eq!(d.fs.nodes_held(), before + N + 1, "one node per entry given, and the folder's");
    d.drop_caches();
    assert_eq!(d.fs.nodes_held(), 1, "only the root stays once the kernel forgot everything");
    assert_eq!(d.ls("many").await.unwrap(), names);
    assert_eq!(d.stat("many/f0123").await.unwrap().1.size, 123 % 7);
    d.drop_caches();
    assert_eq!(d.fs.nodes_held(), 1);
}

/// A folder with more objects than the server moves in one request is not
/// renamed, and says so with EXDEV (as between filesystems: `mv` copies the
/// tree instead), never EIO; nothing moved. A smaller one moves whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_a_folder_past_the_servers_tree_cap_is_exdev() {
    let tc = TestCloud::start_with(|c| {
        c.block_size = BS as u64;
        c.max_tree_objects = 50;
    })
    .await;
    let d = pithos(&tc);
    let client = alice(&tc);
    for i in 0..60 {
        client.put_object(&format!("big/f{i:02}"), b"x".to_vec().into(), &PutOptions::default()).await.unwrap();
    }
    for i in 0..40 {
        client.put_object(&format!("small/f{i:02}"), b"y".to_vec().into(), &PutOptions::default()).await.unwrap();
    }
    assert_eq!(d.ls("big").await.unwrap().len(), 60);
    assert_eq!(d.rename("big", "moved").await, Err(Errno::XDEV));
    assert_eq!(d.ls("big").await.unwrap().len(), 60, "nothing moved");
    assert_eq!(d.lookup("moved").await, Err(Errno::NOENT));
    assert_eq!(on_server(&tc, "big/f59").await.as_deref(), Some(&b"x"[..]));
    d.rename("small", "moved").await.unwrap();
    assert_eq!(d.ls("moved").await.unwrap().len(), 40);
    assert_eq!(on_server(&tc, "moved/f39").await.as_deref(), Some(&b"y"[..]));
}
