//! The system images a fresh local cloud offers, as a Synnefo deployment
//! offers its own: public images owned by a system account, each a Pithos
//! object of that account (`pithos://<uuid>/images/<name>.diskdump`) with the
//! properties Synnefo's system images carry (`os`, `users`, `osfamily`,
//! `root_partition`, `description`). They are registered once, on the first
//! start of a data directory, so that a newcomer can create a server (and run
//! the seed's example 1.3) without registering an image first.
//!
//! The image files are small placeholders: the local cloud boots nothing, but
//! their size and checksum are those of real objects.

use crate::cloud::blockstore::BlockStore;
use crate::cloud::db::Db;
use crate::cloud::fault::Fault;
use crate::cloud::images::{self, pithos_url, Image, Properties, AVAILABLE};
use crate::cloud::pithos::{model, new_container};
use crate::cloud::sql::params;
use crate::cloud::sql::{OptionalExt, Tx};
use crate::cloud::users::validate_name;
use crate::cloud::wire::now;
use std::sync::Arc;

/// The account that owns the system images. It is a user of the catalog
/// (kamaki's `image list -l` resolves every owner's name) but has no token:
/// its token digest is no SHA-256, so no token ever matches it.
pub const SYSTEM_ACCOUNT: &str = "system-images";

/// The container of the image files, as on Synnefo deployments.
const CONTAINER: &str = "images";

struct SystemImage {
    name: &'static str,
    object: &'static str,
    /// The `os` property: kamaki copies it into a new server's metadata,
    /// and the seed's example prints it ("with OS Debian Base").
    os: &'static str,
    users: &'static str,
    description: &'static str,
}

const SYSTEM_IMAGES: [SystemImage; 3] = [
    SystemImage {
        name: "Debian Base",
        object: "debian_base.diskdump",
        os: "Debian Base",
        users: "root",
        description: "Debian 12 (Bookworm) Base System",
    },
    SystemImage {
        name: "Debian Desktop",
        object: "debian_desktop.diskdump",
        os: "Debian Desktop",
        users: "root user",
        description: "Debian 12 (Bookworm) with the GNOME desktop",
    },
    SystemImage {
        name: "Ubuntu Server",
        object: "ubuntu_server.diskdump",
        os: "Ubuntu Server",
        users: "user",
        description: "Ubuntu 24.04 LTS (Noble Numbat) Server",
    },
];

impl SystemImage {
    fn properties(&self) -> Properties {
        [
            ("os", self.os),
            ("users", self.users),
            ("osfamily", "linux"),
            ("root_partition", "1"),
            ("description", self.description),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// What the image's object holds: a few bytes that say what it stands for.
    fn contents(&self) -> String {
        format!(
            "pithosfs local cloud: placeholder disk of the system image {:?} ({}).\n\
             The local cloud runs no virtual machines; this object gives the image a real size and checksum.\n",
            self.name, self.description
        )
    }
}

/// Registers the system images unless this data directory has had them
/// (the system account exists). True when it registered them now: the
/// catalog of users has then changed.
pub fn register_system_images(db: &Db, blocks: &Arc<BlockStore>) -> Result<bool, Fault> {
    validate_name(SYSTEM_ACCOUNT).map_err(Fault::internal)?;
    let known = db.read_blocking(|c| {
        Ok(c.query_row("SELECT uuid FROM users WHERE name = ?1", params![SYSTEM_ACCOUNT], |r| r.get::<String>(0))
            .optional()?)
    })?;
    if known.is_some() {
        return Ok(false);
    }
    // The blocks first, durably, then the metadata that refers to them.
    let pinned = blocks.pinned();
    let block_size = usize::try_from(blocks.block_size.max(1)).unwrap_or(usize::MAX);
    let mut files = Vec::with_capacity(SYSTEM_IMAGES.len());
    for image in &SYSTEM_IMAGES {
        let contents = image.contents();
        let hashmap =
            contents.as_bytes().chunks(block_size).map(|b| pinned.put(b)).collect::<std::io::Result<Vec<_>>>()?;
        files.push((image, contents.len() as u64, hashmap));
    }
    db.write_blocking(move |tx| {
        let t = now();
        let uuid = uuid::Uuid::new_v4().to_string();
        tx.execute(
            "INSERT INTO users (uuid, name, token_sha256, created) VALUES (?1, ?2, ?3, ?4)",
            params![&uuid, SYSTEM_ACCOUNT, format!("no-token:{uuid}"), t],
        )?;
        let container = container_of(tx, &uuid, t)?;
        // A millisecond apart, in the order above: listings by creation time
        // (kamaki's default) show "Debian Base" first.
        let count = files.len();
        for (i, (image, bytes, hashmap)) in files.into_iter().enumerate() {
            let created = t - (count - i) as f64 * 0.001;
            register(tx, &container, &uuid, image, bytes, hashmap, created)?;
        }
        Ok(())
    })?;
    pinned.keep();
    Ok(true)
}

fn container_of(tx: &Tx, account: &str, t: f64) -> Result<model::Container, Fault> {
    match model::container(tx, account, CONTAINER)? {
        Some(c) => Ok(c),
        None => model::create_container(tx, &new_container(account, CONTAINER, t)),
    }
}

fn register(
    tx: &Tx,
    container: &model::Container,
    owner: &str,
    image: &SystemImage,
    bytes: u64,
    hashmap: Vec<crate::blocks::BlockHash>,
    t: f64,
) -> Result<(), Fault> {
    let new = model::NewVersion {
        uuid: uuid::Uuid::new_v4().to_string(),
        bytes,
        hashmap,
        content_type: "application/octet-stream".into(),
        checksum: String::new(),
        meta: Default::default(),
        modified_by: owner.to_string(),
    };
    let version = model::put_version(tx, container, image.object, new, 0, t)?;
    let registered = Image {
        id: version.uuid.clone(),
        owner: owner.to_string(),
        name: image.name.to_string(),
        location: pithos_url(&container.account, &container.name, &version.name),
        size: version.bytes,
        checksum: version.etag.clone(),
        disk_format: "diskdump".into(),
        container_format: "bare".into(),
        status: AVAILABLE.into(),
        is_public: true,
        is_snapshot: false,
        description: image.description.to_string(),
        properties: image.properties(),
        created: t,
        updated: t,
    };
    images::save_image(tx, &registered, container.id, &version.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_images_carry_synnefo_properties() {
        let debian = &SYSTEM_IMAGES[0];
        assert_eq!(debian.name, "Debian Base");
        let p = debian.properties();
        for key in ["os", "users", "osfamily", "root_partition", "description"] {
            assert!(p.get(key).is_some_and(|v| !v.is_empty()), "{key}");
        }
        for image in &SYSTEM_IMAGES {
            for (k, v) in image.properties() {
                images::check_property(&k, &v).unwrap();
            }
        }
    }
}
