//! Copy, move and delete of an object and, with `?delimiter=`, of every
//! object under it. Every object is checked before anything changes (read on
//! each source, ownership of each source for a move, write on each
//! destination); a tree has at most `max_tree_objects` objects; and the work
//! is committed [`BATCH`] objects per transaction, so that one user's tree
//! does not hold the single database writer for seconds. A failure between
//! batches leaves the batches before it done: each object is copied, moved or
//! deleted whole, the tree may be half done (the README says so).

use super::access::{check_history, check_type_change, require, Perm, Resolver};
use super::container::{not_found as container_not_found, visible_container};
use super::model::{self, Container, NewVersion, Sharing, Version};
use super::{apply_meta, check_object_name, check_object_preconditions, EtagMode};
use crate::cloud::fault::Fault;
use crate::cloud::sql::Tx;
use crate::cloud::wire::{now, Headers};
use crate::cloud::Cloud;
use std::sync::Arc;

/// Default cap on the objects of one tree copy, move or delete: a folder of
/// a million objects moves in one request (its plan, two names per object,
/// is the memory it costs the server).
pub const MAX_TREE_OBJECTS: usize = 1_000_000;
/// Objects per write transaction in a tree operation.
pub const BATCH: usize = 1000;

fn object_not_found() -> Fault {
    Fault::not_found("Object does not exist")
}

fn too_many(cap: usize, prefix: &str) -> Fault {
    Fault::bad_request(format!(
        "Too many objects under {prefix:?}: a copy, move or delete with a delimiter takes at most {cap} objects \
         in one request; work on a part of the folder at a time"
    ))
}

/// The live objects under `prefix`, refused when there are more than `room`.
fn tree(conn: &Tx, c: &Container, prefix: &str, room: usize, cap: usize) -> Result<Vec<Version>, Fault> {
    let found = model::live_under(conn, c.id, prefix, room.saturating_add(1))?;
    if found.len() > room {
        return Err(too_many(cap, prefix));
    }
    Ok(found)
}

/// A server-side copy or move, as PUT (`X-Copy-From`/`X-Move-From`) and the
/// COPY and MOVE methods ask for it.
pub struct CopySpec {
    pub user: String,
    pub src_account: String,
    pub src_container: String,
    pub src_name: String,
    pub src_version: Option<i64>,
    pub dst_account: String,
    pub dst_container: String,
    pub dst_name: String,
    pub is_move: bool,
    pub delimiter: Option<String>,
    /// For the named object only; the others keep their own.
    pub content_type: Option<String>,
    pub meta: Vec<(String, String)>,
    pub sharing: Option<Sharing>,
    pub public: Option<bool>,
    /// PUT checks If-Match/If-None-Match on the destination, COPY/MOVE on the source.
    pub check_destination: bool,
    /// What the preconditions compare with.
    pub etags: EtagMode,
}

/// One object of a copy or move.
struct Pair {
    src: String,
    dst: String,
}

/// What a copy or move will do, decided on a snapshot before any change.
struct CopyPlan {
    /// Whether the first pair is the named object (it may not exist: a folder
    /// without a directory object is copied all the same).
    named: bool,
    pairs: Vec<Pair>,
}

/// Copies or moves; returns the first version written (the named object's
/// when it exists). Data are not touched: destinations share the sources'
/// hashmaps.
pub async fn copy(cloud: &Cloud, spec: CopySpec, headers: Headers) -> Result<Version, Fault> {
    let (quota, cap) = (cloud.quota, cloud.max_tree_objects);
    let spec = Arc::new(spec);
    let (s, h) = (spec.clone(), headers.clone());
    let plan = cloud.db.read(move |conn| plan_copy(conn, &s, &h, cap, quota)).await?;
    let named = plan.named;
    let mut pairs = plan.pairs.into_iter();
    let mut first: Option<Version> = None;
    let mut batch_no = 0usize;
    loop {
        let batch: Vec<Pair> = pairs.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let (s, h, opening) = (spec.clone(), headers.clone(), batch_no == 0);
        let done = cloud.db.write(move |tx| copy_batch(tx, &s, &batch, opening.then_some(&h), named, quota)).await?;
        first = first.or(done);
        batch_no += 1;
    }
    first.ok_or_else(object_not_found)
}

fn plan_copy(conn: &Tx, spec: &CopySpec, headers: &Headers, cap: usize, quota: u64) -> Result<CopyPlan, Fault> {
    let sc = visible_container(conn, &spec.src_account, &spec.src_container, &spec.user)?;
    let dc = visible_container(conn, &spec.dst_account, &spec.dst_container, &spec.user)?;
    let mut resolver = Resolver::new(conn, &spec.user);
    let (src_map, dst_map) = (resolver.container(&sc)?, resolver.container(&dc)?);
    let need = if spec.is_move { Perm::Owner } else { Perm::Read };
    // The named paths first: a caller with no access learns nothing of what exists.
    let src_grant = require(src_map.grant(&sc, &spec.src_name), need)?;
    require(dst_map.grant(&dc, &spec.dst_name), Perm::Write)?;
    let current = model::current(conn, sc.id, &spec.src_name)?;
    let main = match spec.src_version {
        Some(serial) => {
            let v = model::version(conn, sc.id, &spec.src_name, serial)?
                .ok_or_else(|| Fault::not_found("Version does not exist"))?;
            check_history(src_grant.perm, current.as_ref(), &v)?;
            Some(v)
        }
        None => current,
    };
    if spec.check_destination {
        check_object_preconditions(headers, model::current(conn, dc.id, &spec.dst_name)?.as_ref(), false, spec.etags)?;
    } else {
        check_object_preconditions(headers, main.as_ref(), false, spec.etags)?;
    }
    let named = main.is_some();
    let mut sources: Vec<(Version, String)> = main.into_iter().map(|v| (v, spec.dst_name.clone())).collect();
    if let Some(d) = &spec.delimiter {
        let prefix = format!("{}{d}", spec.src_name);
        if spec.is_move && sc.id == dc.id && spec.dst_name.starts_with(&prefix) {
            return Err(Fault::bad_request("A folder cannot be moved into itself"));
        }
        for v in tree(conn, &sc, &prefix, cap.saturating_sub(sources.len()), cap)? {
            let dst = format!("{}{}", spec.dst_name, &v.name[spec.src_name.len()..]);
            check_object_name(&dst)?;
            sources.push((v, dst));
        }
    }
    if sources.is_empty() {
        return Err(object_not_found());
    }
    let mut delta: i64 = 0;
    for (i, (src, dst)) in sources.iter().enumerate() {
        require(src_map.grant(&sc, &src.name), need)?;
        let dst_grant = require(dst_map.grant(&dc, dst), Perm::Write)?;
        let existing = model::current(conn, dc.id, dst)?;
        let new_type = match (&spec.content_type, named && i == 0) {
            (Some(ct), true) => ct.as_str(),
            _ => src.content_type.as_str(),
        };
        check_type_change(dst_grant.perm, existing.as_ref(), new_type)?;
        delta = delta
            .saturating_add(i64::try_from(src.bytes).unwrap_or(i64::MAX))
            .saturating_sub(existing.map_or(0, |v| i64::try_from(v.bytes).unwrap_or(0)));
    }
    // Most quota refusals come before anything changes. A move within one
    // account does not change its usage; each object is checked again anyway.
    if !spec.is_move || sc.account != dc.account {
        model::check_quota(conn, &dc, delta, quota)?;
    }
    let pairs = sources.into_iter().map(|(v, dst)| Pair { src: v.name, dst }).collect();
    Ok(CopyPlan { named, pairs })
}

/// One transaction of a copy or move. `opening` (the request's headers) marks
/// the first batch, where the named object, its preconditions and the
/// request's metadata, sharing and publishing are applied.
fn copy_batch(
    tx: &Tx,
    spec: &CopySpec,
    pairs: &[Pair],
    opening: Option<&Headers>,
    named: bool,
    quota: u64,
) -> Result<Option<Version>, Fault> {
    let t = now();
    let sc = model::container(tx, &spec.src_account, &spec.src_container)?.ok_or_else(container_not_found)?;
    let dc = model::container(tx, &spec.dst_account, &spec.dst_container)?.ok_or_else(container_not_found)?;
    let dst_perm = if dc.account == spec.user { Perm::Owner } else { Perm::Write };
    let mut first: Option<Version> = None;
    for (i, p) in pairs.iter().enumerate() {
        let headers = opening.filter(|_| i == 0 && named);
        let src = match headers {
            Some(h) => {
                let v = match spec.src_version {
                    Some(serial) => model::version(tx, sc.id, &p.src, serial)?,
                    None => model::current(tx, sc.id, &p.src)?,
                }
                .ok_or_else(object_not_found)?;
                let target = if spec.check_destination { model::current(tx, dc.id, &p.dst)? } else { Some(v.clone()) };
                check_object_preconditions(h, target.as_ref(), false, spec.etags)?;
                v
            }
            // Gone since the plan was made: nothing left to copy or move.
            None => match model::current(tx, sc.id, &p.src)? {
                Some(v) => v,
                None => continue,
            },
        };
        let same = sc.id == dc.id && src.name == p.dst;
        let mut meta = src.meta.clone();
        let mut content_type = src.content_type.clone();
        if headers.is_some() {
            meta = apply_meta(&meta, spec.meta.clone(), true, |_| true)?;
            if let Some(ct) = &spec.content_type {
                content_type = ct.clone();
            }
        }
        let uuid = if spec.is_move { src.uuid.clone() } else { uuid::Uuid::new_v4().to_string() };
        if spec.is_move && !same {
            // Delete first so a move within one account never trips the quota.
            model::delete_object(tx, &sc, &src.name, &spec.user, t)?;
        }
        let new = NewVersion {
            uuid,
            bytes: src.bytes,
            hashmap: model::hashmap(tx, src.serial)?,
            content_type,
            checksum: src.checksum.clone(),
            meta,
            modified_by: spec.user.clone(),
        };
        let v = model::put_version(tx, &dc, &p.dst, new, quota, t)?;
        if headers.is_some() {
            apply_sharing_public(tx, &dc, &p.dst, dst_perm, &spec.sharing, spec.public)?;
        }
        first = first.or(Some(v));
    }
    Ok(first)
}

/// Sharing and publishing are changed by the owner only. A grantee's header
/// that would change nothing passes: kamaki's `copy_object` and
/// `move_object` always send `X-Object-Public: False`.
pub fn check_sharing_public(
    conn: &Tx,
    c: &Container,
    name: &str,
    perm: Perm,
    sharing: &Option<Sharing>,
    public: Option<bool>,
) -> Result<(), Fault> {
    if perm == Perm::Owner || (sharing.is_none() && public.is_none()) {
        return Ok(());
    }
    let sharing_changes = match sharing {
        Some(s) => model::sharing(conn, c.id, name)?.unwrap_or_default() != *s,
        None => false,
    };
    let public_changes = match public {
        Some(p) => model::public_token(conn, c.id, name)?.is_some() != p,
        None => false,
    };
    if sharing_changes || public_changes {
        return Err(Fault::forbidden("Only the owner may change sharing or publish"));
    }
    Ok(())
}

/// Applies sharing and publishing headers (see [`check_sharing_public`]).
pub fn apply_sharing_public(
    tx: &Tx,
    c: &Container,
    name: &str,
    perm: Perm,
    sharing: &Option<Sharing>,
    public: Option<bool>,
) -> Result<(), Fault> {
    check_sharing_public(tx, c, name, perm, sharing, public)?;
    if perm != Perm::Owner {
        return Ok(());
    }
    if let Some(s) = sharing {
        model::set_sharing(tx, c.id, name, s)?;
    }
    if let Some(p) = public {
        model::set_public(tx, c.id, name, p)?;
    }
    Ok(())
}

/// Deletes, as the owner, the named object (which must exist) and the objects
/// under `prefix`; with no named object, every object under `prefix` (a
/// container emptied with `?delimiter`).
pub async fn delete(
    cloud: &Cloud,
    account: &str,
    container: &str,
    by: &str,
    named: Option<String>,
    prefix: String,
) -> Result<(), Fault> {
    let cap = cloud.max_tree_objects;
    let (acct, cont) = (account.to_string(), container.to_string());
    let names = cloud
        .db
        .read(move |conn| {
            let c = model::container(conn, &acct, &cont)?.ok_or_else(container_not_found)?;
            let mut names = Vec::new();
            if let Some(n) = named {
                model::current(conn, c.id, &n)?.ok_or_else(object_not_found)?;
                names.push(n);
            }
            for v in tree(conn, &c, &prefix, cap.saturating_sub(names.len()), cap)? {
                names.push(v.name);
            }
            Ok(names)
        })
        .await?;
    let mut names = names.into_iter();
    loop {
        let batch: Vec<String> = names.by_ref().take(BATCH).collect();
        if batch.is_empty() {
            return Ok(());
        }
        let (acct, cont, by) = (account.to_string(), container.to_string(), by.to_string());
        cloud
            .db
            .write(move |tx| {
                let c = model::container(tx, &acct, &cont)?.ok_or_else(container_not_found)?;
                let t = now();
                for name in &batch {
                    model::delete_object(tx, &c, name, &by, t)?;
                }
                Ok(())
            })
            .await?;
    }
}
