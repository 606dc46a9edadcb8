//! Text output for people: tables with aligned columns, and `key  value`
//! listings of nested JSON objects.

use serde_json::Value;

/// Text from a server, made safe for a terminal: control characters (which
/// could move the cursor or recolour the screen) become `?`.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A JSON value as one cell: strings as they are, null as empty, lists of
/// scalars joined by `, `, anything else as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => clean(s),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        other => clean(&other.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Rows under a header, each column as wide as its widest cell.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            align: vec![Align::Left; headers.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns a column (numbers).
    pub fn right(mut self, column: usize) -> Table {
        if let Some(a) = self.align.get_mut(column) {
            *a = Align::Right;
        }
        self
    }

    /// Adds a row; missing cells are empty, extra ones dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.into_iter().map(|c| clean(&c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(c));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(c));
                match self.align[i] {
                    Align::Left => {
                        line.push_str(c);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(c);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// A JSON object as `(dotted.key, value)` pairs: nested objects flattened,
/// lists of objects indexed (`attachments.0.ipv4`), keys in `skip` left out
/// at any depth.
pub fn flatten(v: &Value, skip: &[&str]) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, skip: &[&str], out: &mut Vec<(String, String)>) {
        let join = |k: &str| if prefix.is_empty() { clean(k) } else { format!("{prefix}.{}", clean(k)) };
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, item) in map {
                    if !skip.contains(&k.as_str()) {
                        walk(&join(k), item, skip, out);
                    }
                }
            }
            Value::Array(items) if items.iter().any(|i| i.is_array() || i.is_object()) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&join(&i.to_string()), item, skip, out);
                }
            }
            Value::Object(_) => out.push((prefix.to_string(), String::new())),
            other => out.push((prefix.to_string(), cell(other))),
        }
    }
    let mut out = Vec::new();
    walk("", v, skip, &mut out);
    out
}

/// `key  value` lines, values aligned.
pub fn key_values(pairs: &[(String, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let line = format!("{k}{}  {v}", " ".repeat(width - k.chars().count()));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align() {
        let mut t = Table::new(&["ID", "NAME", "RAM"]).right(2);
        t.row(vec!["1".into(), "small".into(), "1024".into()]);
        t.row(vec!["12".into(), "a\x1b[31mb".into(), "512".into()]);
        assert_eq!(t.render(), "ID  NAME      RAM\n1   small    1024\n12  a?[31mb   512\n");
    }

    #[test]
    fn nested_values_flatten() {
        let v = json!({"id": 7, "links": [1], "metadata": {"os": "debian"}, "tags": ["a", "b"],
                       "ports": [{"ip": "10.0.0.1"}], "empty": {}, "none": null});
        let pairs = flatten(&v, &["links"]);
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["empty", "id", "metadata.os", "none", "ports.0.ip", "tags"]);
        assert_eq!(pairs[5].1, "a, b");
        assert_eq!(key_values(&pairs[1..3]), "id           7\nmetadata.os  debian\n");
    }
}
