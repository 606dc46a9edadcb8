//! The list query of Plankton: Glance's filters and sort order.

use crate::cloud::fault::Fault;
use crate::cloud::images::Image;
use crate::cloud::wire::Query;
use std::cmp::Ordering;

const SORT_KEYS: [&str; 8] =
    ["id", "name", "status", "size", "disk_format", "container_format", "created_at", "updated_at"];

/// The Glance list filters.
pub(super) struct ImageFilters {
    name: Option<String>,
    container_format: Option<String>,
    disk_format: Option<String>,
    status: Option<String>,
    size_min: Option<u64>,
    size_max: Option<u64>,
}

impl ImageFilters {
    pub(super) fn from_query(query: &Query) -> Result<ImageFilters, Fault> {
        let text = |k: &str| query.get(k).map(str::to_string);
        let size = |k: &str| -> Result<Option<u64>, Fault> {
            query
                .get(k)
                .map(|v| v.trim().parse::<u64>().map_err(|_| Fault::bad_request("Malformed request.")))
                .transpose()
        };
        Ok(ImageFilters {
            name: text("name"),
            container_format: text("container_format"),
            disk_format: text("disk_format"),
            status: text("status"),
            size_min: size("size_min")?,
            size_max: size("size_max")?,
        })
    }

    pub(super) fn admit(&self, i: &Image) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        same(&self.name, &i.name)
            && same(&self.container_format, &i.container_format)
            && same(&self.disk_format, &i.disk_format)
            && self.status.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(&i.status))
            && self.size_min.is_none_or(|m| i.size >= m)
            && self.size_max.is_none_or(|m| i.size <= m)
    }
}

pub(super) struct ImageOrder {
    key: String,
    descending: bool,
}

impl ImageOrder {
    pub(super) fn from_query(query: &Query) -> Result<ImageOrder, Fault> {
        let key = query.get("sort_key").unwrap_or("created_at");
        if !SORT_KEYS.contains(&key) {
            return Err(Fault::bad_request("Invalid 'sort_key'"));
        }
        let descending = match query.get("sort_dir").unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            _ => return Err(Fault::bad_request("Invalid 'sort_dir'")),
        };
        Ok(ImageOrder { key: key.to_string(), descending })
    }

    fn compare(&self, a: &Image, b: &Image) -> Ordering {
        match self.key.as_str() {
            "id" => a.id.cmp(&b.id),
            "name" => a.name.cmp(&b.name),
            "status" => a.status.cmp(&b.status),
            "size" => a.size.cmp(&b.size),
            "disk_format" => a.disk_format.cmp(&b.disk_format),
            "container_format" => a.container_format.cmp(&b.container_format),
            "updated_at" => a.updated.total_cmp(&b.updated),
            _ => a.created.total_cmp(&b.created),
        }
    }

    pub(super) fn sort(&self, images: &mut [Image]) {
        images.sort_by(|a, b| {
            let o = self.compare(a, b);
            if self.descending {
                o.reverse()
            } else {
                o
            }
        });
    }
}
