//! `file list`: one level or everything below, folders merged from their
//! directory objects and the prefixes other objects live under.

use super::*;

// ---------- listing ----------

/// One line of a listing: a file, or a folder (a directory object, a
/// prefix others live under, or both).
pub(super) struct Entry {
    name: String,
    folder: bool,
    bytes: u64,
    modified: Option<f64>,
    content_type: String,
    hash: Option<String>,
    version: Option<u64>,
}

impl Entry {
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "type": if self.folder { "folder" } else { "file" },
            "bytes": self.bytes,
            "modified": self.modified.map(rfc3339),
            "content_type": self.content_type,
            "hash": self.hash,
            "version": self.version,
        })
    }
}

/// Folder listings name a folder twice: as its directory object (`a`) and as
/// the roll-up of what is under it (`a/`). Both become one folder entry.
pub(super) fn entries(listed: Vec<Listed>) -> Vec<Entry> {
    // Keyed by (name, is folder): a file and a folder of one name are both shown.
    let mut by_name: BTreeMap<(String, bool), Entry> = BTreeMap::new();
    for item in listed {
        match item {
            Listed::Subdir(s) => {
                let name = s.trim_end_matches('/').to_string();
                by_name.entry((name.clone(), true)).or_insert(Entry {
                    name,
                    folder: true,
                    bytes: 0,
                    modified: None,
                    content_type: String::new(),
                    hash: None,
                    version: None,
                });
            }
            Listed::Object(o) => {
                let e = Entry {
                    folder: o.is_directory(),
                    bytes: o.bytes,
                    modified: o.last_modified,
                    content_type: o.content_type,
                    hash: o.hash,
                    version: o.version,
                    name: o.name,
                };
                by_name.insert((e.name.clone(), e.folder), e);
            }
        }
    }
    by_name.into_values().collect()
}

pub(super) async fn list(
    ctx: &Context<'_>,
    out: &mut impl Write,
    path: &str,
    account: Option<&str>,
    recursive: bool,
    details: bool,
) -> Result<(), Failure> {
    let (container, prefix) = parse_remote(path)?;
    let p = pithos_of(ctx, &container, account).await?;
    // `/c/photos` is the folder photos, as for `ls`.
    let folder = if prefix.is_empty() || prefix.ends_with('/') { prefix.clone() } else { format!("{prefix}/") };
    let o = ListOptions {
        prefix: (!folder.is_empty()).then(|| folder.clone()),
        delimiter: (!recursive).then(|| "/".to_string()),
        ..Default::default()
    };
    let listed = match p.list_objects(&o).await {
        Ok(l) => l,
        Err(e) => return Err(not_found(&p, &container, &prefix, e).await),
    };
    let mut rows = entries(listed);
    if rows.is_empty() && !prefix.is_empty() {
        // Not a folder with something in it: an empty folder, a file, or nothing.
        let name = prefix.trim_end_matches('/');
        match p.get_object_info(name).await {
            Ok(i) if i.is_directory() => {}
            Ok(i) => rows.push(Entry {
                name: name.to_string(),
                folder: false,
                bytes: i.bytes,
                modified: i.last_modified,
                content_type: i.content_type,
                hash: i.hash,
                version: i.version.and_then(|v| v.parse().ok()),
            }),
            Err(e) => return Err(not_found(&p, &container, name, e).await),
        }
    }
    if ctx.json {
        return print_json(out, &Value::Array(rows.iter().map(Entry::json).collect()));
    }
    let mut headers = vec!["NAME", "SIZE", "MODIFIED", "TYPE"];
    if details {
        headers.extend(["VERSION", "HASH"]);
    }
    let mut t = Table::new(&headers).right(1);
    for e in &rows {
        let mut row = vec![
            if e.folder { format!("{}/", e.name) } else { e.name.clone() },
            if e.folder { String::new() } else { human_bytes(e.bytes) },
            e.modified.map(local_time).unwrap_or_default(),
            if e.folder { "folder".to_string() } else { e.content_type.clone() },
        ];
        if details {
            row.push(e.version.map(|v| v.to_string()).unwrap_or_default());
            row.push(e.hash.clone().unwrap_or_default());
        }
        t.row(row);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_listed_twice_is_one_entry() {
        use crate::clients::storage::ObjectEntry;
        let obj = |name: &str, ct: &str| {
            Listed::Object(ObjectEntry { name: name.into(), content_type: ct.into(), ..Default::default() })
        };
        let rows = entries(vec![
            obj("a", "application/directory"),
            Listed::Subdir("a/".into()),
            obj("b", "text/plain"),
            Listed::Subdir("b/".into()),
            obj("c", "text/plain"),
        ]);
        let shown: Vec<(&str, bool)> = rows.iter().map(|e| (e.name.as_str(), e.folder)).collect();
        assert_eq!(shown, vec![("a", true), ("b", false), ("b", true), ("c", false)]);
    }
}
