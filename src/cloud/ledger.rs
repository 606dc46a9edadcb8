//! The block ledger of a shared block store (blocks in Swift, which many
//! servers write): `shared_blocks` says which blocks are stored, and
//! `block_leases` which requests in flight (on any server) rely on each. See
//! [`BlockLedger`](super::blockstore::BlockLedger) and the collector, which
//! keeps leased blocks for the upload grace and forgets a block's row in
//! the transaction that dooms it.

use super::blockstore::BlockLedger;
use super::db::Db;
use super::sql::{params, OptionalExt};
use super::wire::now;
use crate::blocks::BlockHash;
use std::io;

pub struct DbLedger {
    db: Db,
}

impl DbLedger {
    pub fn new(db: Db) -> DbLedger {
        DbLedger { db }
    }
}

fn io_error(f: super::fault::Fault) -> io::Error {
    io::Error::other(format!("the block ledger: {}", f.message))
}

impl BlockLedger for DbLedger {
    fn lease(&self, lease: u64, hash: &BlockHash) -> io::Result<bool> {
        let h = hash.0;
        self.db
            .write_blocking(move |tx| {
                tx.execute(
                    "INSERT INTO block_leases (hash, lease, at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (hash, lease) DO UPDATE SET at = excluded.at",
                    params![&h[..], lease, now()],
                )?;
                let stored = tx
                    .query_row("SELECT stored FROM shared_blocks WHERE hash = ?1", params![&h[..]], |r| r.get::<i64>(0))
                    .optional()?;
                Ok(stored.unwrap_or(0) != 0)
            })
            .map_err(io_error)
    }

    fn stored(&self, hash: &BlockHash) -> io::Result<()> {
        let h = hash.0;
        self.db
            .write_blocking(move |tx| {
                tx.execute(
                    "INSERT INTO shared_blocks (hash, stored) VALUES (?1, 1) ON CONFLICT (hash) DO NOTHING",
                    params![&h[..]],
                )?;
                Ok(())
            })
            .map_err(io_error)
    }

    fn release(&self, lease: u64) -> io::Result<()> {
        self.db
            .write_blocking(move |tx| {
                tx.execute("DELETE FROM block_leases WHERE lease = ?1", params![lease])?;
                Ok(())
            })
            .map_err(io_error)
    }
}
