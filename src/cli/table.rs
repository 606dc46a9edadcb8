//! Text output for people: tables with aligned columns, and `key  value`
//! listings of nested JSON objects. Columns are measured in terminal cells
//! (`unicode-width`: CJK and emoji take two, combining marks none), and
//! every text is cleaned of what could drive or fool the terminal.

use serde_json::Value;

/// Text from a server, made safe for a terminal: control characters (which
/// could move the cursor, recolour the screen or start an escape sequence),
/// bidirectional overrides and isolates (U+202E shows `exe.txt` as
/// `txt.exe`), invisible format characters (zero-width space, soft hyphen,
/// BOM, tags…: two names that look the same must not be different) and line
/// or paragraph separators each become `?`. The joiners U+200C/U+200D stay:
/// scripts and emoji sequences need them, and they hide nothing.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() || is_hidden_format(c) { '?' } else { c }).collect()
}

/// Unicode's format characters (general category Cf, Unicode 15.1) but the
/// joiners, and the line and paragraph separators.
fn is_hidden_format(c: char) -> bool {
    matches!(c,
        '\u{AD}'
        | '\u{600}'..='\u{605}'
        | '\u{61C}'
        | '\u{6DD}'
        | '\u{70F}'
        | '\u{890}'..='\u{891}'
        | '\u{8E2}'
        | '\u{180E}'
        | '\u{200B}'
        | '\u{200E}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

/// Columns `s` takes on a terminal: East Asian wide characters and emoji
/// take two, combining marks none. `s` is clean (no control characters).
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
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
            headers: headers.iter().map(|h| clean(h)).collect(),
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
                let pad = " ".repeat(widths[i].saturating_sub(width(c)));
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

/// `key  value` lines, values aligned (keys and values cleaned).
pub fn key_values(pairs: &[(String, String)]) -> String {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (clean(k), clean(v))).collect();
    let column = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &pairs {
        let line = format!("{k}{}  {v}", " ".repeat(column.saturating_sub(width(k))));
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
    fn wide_and_zero_width_characters_align() {
        let mut t = Table::new(&["NAME", "SIZE", "OWNER"]).right(1);
        t.row(vec!["名前.txt".into(), "7".into(), "田中".into()]);
        t.row(vec!["cafe\u{301}".into(), "1234".into(), "x".into()]);
        t.row(vec!["👍 ok".into(), "12".into(), "🇬🇷".into()]);
        let text = t.render();
        assert_eq!(text, "NAME      SIZE  OWNER\n名前.txt     7  田中\ncafe\u{301}      1234  x\n👍 ok       12  🇬🇷\n");
        // every SIZE ends in the same terminal column, whatever came before it
        let ends: Vec<usize> = text.lines().map(|l| width(&l[..l.rfind("  ").unwrap()])).collect();
        assert_eq!(ends, vec![14; 4], "{text}");
        assert_eq!(width("名前"), 4);
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(width("👍"), 2);
    }

    #[test]
    fn control_and_spoofing_characters_are_replaced() {
        assert_eq!(clean("a\x1b[31mred\x1b[0m"), "a?[31mred?[0m");
        assert_eq!(clean("bell\x07 cr\r nl\n tab\t del\x7f c1\u{9b}"), "bell? cr? nl? tab? del? c1?");
        assert_eq!(clean("evil\u{202E}txt.exe"), "evil?txt.exe");
        assert_eq!(clean("\u{2066}a\u{2069}\u{200F}"), "?a??");
        assert_eq!(clean("zero\u{200B}width\u{FEFF}\u{AD}"), "zero?width??");
        assert_eq!(clean("line\u{2028}para\u{2029}"), "line?para?");
        assert_eq!(clean("tag\u{E0041}"), "tag?");
        // joiners, combining marks and variation selectors stay
        let kept = "👨\u{200D}👩\u{200D}👧 می\u{200C}خواهم e\u{301} ❤\u{FE0F}";
        assert_eq!(clean(kept), kept);
        // cells, headers and key-value listings are all cleaned
        let mut t = Table::new(&["N\u{202E}AME"]);
        t.row(vec!["x\ny".into()]);
        assert_eq!(t.render(), "N?AME\nx?y\n");
        let kv = key_values(&[("k\x1b".into(), "v\u{202E}".into()), ("名".into(), "1".into())]);
        // 名 takes two columns, as `k?` does
        assert_eq!(kv, "k?  v?\n名  1\n");
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
