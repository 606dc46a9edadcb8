//! Object listings: prefix, delimiter roll-ups, `path`, marker, limit, meta
//! filters, shared/public flags and `until`, walked in name order straight from
//! the index so a listing of any size costs one pass.

use super::access::{Perm, ShareMap};
use super::model::{self, prefix_upper_bound, Container, Sharing, Version, VERSION_COLUMNS};
use crate::cloud::fault::Fault;
use crate::cloud::sql::{params, Tx};
use crate::cloud::wire::canonical_meta_key;

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// `path=`: direct children only, no virtual directory entries.
    pub path_mode: bool,
    pub marker: String,
    pub limit: usize,
    pub meta: Vec<MetaFilter>,
    pub shared: bool,
    pub public: bool,
    pub until: Option<f64>,
}

#[derive(Debug, Clone)]
pub enum MetaFilter {
    Present(String),
    Absent(String),
    Compare(String, &'static str, String),
}

impl MetaFilter {
    /// Parses `key,!key,key=value,key<=value…`.
    pub fn parse_list(s: &str) -> Vec<MetaFilter> {
        let key = |k: &str| format!("X-Object-Meta-{}", canonical_meta_key(k.trim()));
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                if let Some(k) = t.strip_prefix('!') {
                    if !k.contains(['=', '<', '>']) {
                        return MetaFilter::Absent(key(k));
                    }
                }
                for op in ["!=", "<=", ">=", "=", "<", ">"] {
                    if let Some((k, v)) = t.split_once(op) {
                        return MetaFilter::Compare(key(k), op, v.trim().to_string());
                    }
                }
                MetaFilter::Present(key(t))
            })
            .collect()
    }

    fn matches(&self, v: &Version) -> bool {
        match self {
            MetaFilter::Present(k) => v.meta.contains_key(k),
            MetaFilter::Absent(k) => !v.meta.contains_key(k),
            MetaFilter::Compare(k, op, want) => v.meta.get(k).is_some_and(|have| match *op {
                "!=" => have != want,
                "<=" => have <= want,
                ">=" => have >= want,
                "=" => have == want,
                "<" => have < want,
                _ => have > want,
            }),
        }
    }
}

pub enum Entry {
    Object { version: Box<Version>, sharing: Option<Sharing>, public: Option<String>, allowed: Option<Perm> },
    Subdir(String),
}

impl Entry {
    pub fn name(&self) -> &str {
        match self {
            Entry::Object { version, .. } => &version.name,
            Entry::Subdir(s) => s,
        }
    }
}

const BATCH: usize = 1000;

/// Lists `c`. `visible` restricts a non-owner to the objects they may read,
/// entry by entry, by the same rule as a GET.
pub fn list(conn: &Tx, c: &Container, p: &ListParams, visible: Option<&ShareMap>) -> Result<Vec<Entry>, Fault> {
    let mut prefix = p.prefix.clone();
    if let Some(d) = &p.delimiter {
        if !prefix.is_empty() && !prefix.ends_with(d.as_str()) {
            prefix.push_str(d);
        }
    }
    let prefix = prefix.trim_start_matches('/').to_string();
    let upper: Option<String> = (!prefix.is_empty()).then(|| prefix_upper_bound(&prefix));
    let live_sql = format!(
        "SELECT {VERSION_COLUMNS}, s.readers, s.writers, p.token FROM current c JOIN versions v ON v.serial = c.serial
         LEFT JOIN sharing s ON s.container = c.container AND s.name = c.name
         LEFT JOIN public p ON p.container = c.container AND p.name = c.name
         WHERE c.container = ?1 AND c.name >= ?2 AND c.name < ?3
         ORDER BY c.name LIMIT ?4"
    );
    // One lower and one upper bound on the index, as SQLite seeks by one of
    // each: with `name > marker AND name >= from` it sought by the marker
    // only and scanned from there to the prefix (every name before it, per
    // page), and `?4 IS NULL OR` kept it from stopping at the prefix's end.
    // Every parameter is used (PostgreSQL must tell each one's type).
    let open_sql = live_sql.replace("c.name >= ?2 AND c.name < ?3", "c.name >= ?2").replace("LIMIT ?4", "LIMIT ?3");
    let until_sql = format!(
        "SELECT {VERSION_COLUMNS}, NULL, NULL, NULL FROM versions v WHERE v.serial IN (
            SELECT MAX(serial) FROM versions WHERE container = ?1 AND name > ?2 AND name >= ?3
            AND (name < ?4 OR ?4 IS NULL) AND mtime <= ?6 GROUP BY name)
         AND v.deleted = 0 ORDER BY v.name LIMIT ?5"
    );
    let sql = match (p.until.is_some(), upper.is_some()) {
        (true, _) => &until_sql,
        (false, true) => &live_sql,
        (false, false) => &open_sql,
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut out = Vec::new();
    let mut objects = 0usize;
    let mut after = p.marker.clone();
    let mut from = prefix.clone();
    let limit = p.limit.max(1);
    'outer: loop {
        let mut rows = if p.until.is_some() {
            stmt.query(params![c.id, after, from, upper, BATCH as i64, p.until.unwrap_or(0.0)])?
        } else {
            // Past the marker: from the least name after it (no name holds
            // NUL, so none lies between `after` and `after` + U+0001), or
            // from `from`, whichever is later.
            let past_marker = format!("{after}\u{1}");
            let lower = if after.is_empty() || from > past_marker { &from } else { &past_marker };
            match &upper {
                Some(upper) => stmt.query(params![c.id, lower, upper, BATCH as i64])?,
                None => stmt.query(params![c.id, lower, BATCH as i64])?,
            }
        };
        let mut seen = 0;
        while let Some(row) = rows.next()? {
            seen += 1;
            let version = model::version_from_row(row)?;
            after = version.name.clone();
            let readers: Option<String> = row.get(12)?;
            let writers: Option<String> = row.get(13)?;
            let public: Option<String> = row.get(14)?;
            let sharing = match (readers, writers) {
                (None, None) => None,
                (r, w) => Some(Sharing {
                    read: r.unwrap_or_default().split(',').filter(|e| !e.is_empty()).map(str::to_string).collect(),
                    write: w.unwrap_or_default().split(',').filter(|e| !e.is_empty()).map(str::to_string).collect(),
                }),
            };
            let allowed = match visible {
                Some(map) => match map.grant(c, &version.name) {
                    Some(g) => Some(g.perm),
                    None => continue,
                },
                None => None,
            };
            if (p.shared && sharing.is_none())
                || (p.public && public.is_none())
                || !p.meta.iter().all(|f| f.matches(&version))
            {
                continue;
            }
            if let Some(d) = p.delimiter.as_deref().filter(|d| !d.is_empty()) {
                if let Some(i) = version.name[prefix.len()..].find(d) {
                    let end = prefix.len() + i + d.len();
                    if end < version.name.len() {
                        let sub = version.name[..end].to_string();
                        from = prefix_upper_bound(&sub);
                        if !p.path_mode && sub != p.marker {
                            out.push(Entry::Subdir(sub));
                        }
                        drop(rows);
                        continue 'outer;
                    }
                }
            }
            out.push(Entry::Object { version: Box::new(version), sharing, public, allowed });
            objects += 1;
            if objects >= limit {
                break 'outer;
            }
        }
        if seen < BATCH {
            break;
        }
    }
    Ok(out)
}

/// The user metadata keys (the part after `X-Object-Meta-`) of the live
/// objects of `c`; for a non-owner, of the objects they may read only.
pub fn object_meta_keys(conn: &Tx, c: &Container, visible: Option<&ShareMap>) -> Result<Vec<String>, Fault> {
    let Some(map) = visible else { return model::container_object_meta_keys(conn, c.id) };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT c.name, j.key FROM current c JOIN versions v ON v.serial = c.serial, {} j
             WHERE c.container = ?1 AND j.key LIKE 'X-Object-Meta-%'",
        model::meta_entries(conn)
    ))?;
    let mut rows = stmt.query(params![c.id])?;
    let mut keys = std::collections::BTreeSet::new();
    while let Some(row) = rows.next()? {
        let (name, key): (String, String) = (row.get(0)?, row.get(1)?);
        if map.grant(c, &name).is_some() {
            if let Some(k) = key.strip_prefix("X-Object-Meta-") {
                keys.insert(k.to_string());
            }
        }
    }
    Ok(keys.into_iter().collect())
}
