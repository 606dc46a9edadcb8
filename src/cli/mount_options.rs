//! `pithosfs mount`'s options: the flags, and the same options in the form
//! mount(8) and fstab write them (`-o cache_size=1G,attr_ttl=5m,allow_other,ro`),
//! parsed here by the binary itself, so that a misspelled option is refused
//! rather than dropped. Sizes and durations take units (`crate::cli::units`).

use super::mount::MountRequest;
use super::units::{parse_duration, parse_size};
use crate::config::{Flags, StorageTarget};
use crate::fs::owners::{Owners, Policy};
use crate::fs::FsOptions;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone)]
pub struct MountArgs {
    /// Where to mount.
    pub mountpoint: PathBuf,
    /// Options as mount(8) and fstab write them, comma-separated: the long options
    /// below with `_` for `-` (`cache_size=1G,attr_ttl=5m,allow_other,ro`), and
    /// mount's generic ones (`defaults`, `_netdev`, `noauto`, `x-systemd.*`…), which
    /// are accepted and left to mount(8). An unknown option is refused.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Mount this container as the root instead of the whole account.
    #[arg(long)]
    pub container: Option<String>,
    /// Refuse every change.
    #[arg(long)]
    pub read_only: bool,
    /// Memory for cached blocks: 512M, 1G, 1.5G (a bare number is MiB).
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = parse_size)]
    pub cache_size: u64,
    /// How long the kernel and pithosfs trust attributes: 30s, 5m, 1.5 (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub attr_ttl: Duration,
    /// How long a directory listing is trusted: 30s, 5m (a bare number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub dir_ttl: Duration,
    /// The account owner's local uid: owner of files that carry no owner of this
    /// machine [default: the mounting user].
    #[arg(long)]
    pub uid: Option<u32>,
    /// The account owner's local gid [default: the mounting user's].
    #[arg(long)]
    pub gid: Option<u32>,
    /// Which recorded owners to believe: those recorded on this machine (local), every
    /// recorded number (all: machines sharing one uid space), or none (mine: every file
    /// is the account owner's). See SEMANTICS.md, "Who may do what".
    #[arg(long, value_enum, default_value_t = OwnersArg::Local)]
    pub owners: OwnersArg,
    /// Mode of files that carry none (octal).
    #[arg(long, default_value = "644")]
    pub file_mode: String,
    /// Mode of folders that carry none (octal).
    #[arg(long, default_value = "755")]
    pub dir_mode: String,
    /// Let other local users reach the mount, within what modes, owners and groups allow
    /// (needs user_allow_other in /etc/fuse.conf unless root).
    #[arg(long)]
    pub allow_other: bool,
    /// Show setuid/setgid bits the server records, and mount without `nosuid`
    /// (only for a cloud you trust: by default they are masked).
    #[arg(long)]
    pub suid: bool,
    /// Mount without `nodev`: device nodes on the mount open their devices
    /// (only for a cloud you trust; by default they cannot be opened).
    #[arg(long)]
    pub dev: bool,
    /// Mount `noexec` (fstab's `noexec`): programs on the mount cannot be run.
    #[arg(long)]
    pub noexec: bool,
    /// Answer a random read of a Pithos file with a ranged GET of just the bytes
    /// asked for, which no block hash can check, instead of its whole checked
    /// block: lower latency on slow links, at the cost of integrity.
    #[arg(long)]
    pub unverified_range_reads: bool,
    /// Stay in the foreground (Ctrl-C unmounts); for systemd, a `Type=notify` service.
    #[arg(short, long)]
    pub foreground: bool,
    /// Astakos identity URL (…/identity/v2.0) [env: PITHOSFS_URL].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// File holding the token [env: PITHOSFS_TOKEN_FILE, or the token itself in PITHOSFS_TOKEN].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// A cloud of the kamaki config file.
    #[arg(long, value_name = "NAME")]
    pub cloud: Option<String>,
    /// Disk tier of the block cache (kept across mounts); also where large writes spill
    /// [default for spills: ~/.cache/pithosfs/spill].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Size bound of --cache-dir: 4G, 500M (a bare number is MiB).
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_size)]
    pub cache_dir_size: u64,
    /// A plain OpenStack object store (Swift) by storage URL (…/v1/AUTH_x), token as for --token-file.
    #[arg(long, value_name = "URL", conflicts_with_all = ["url", "cloud", "swift_auth"])]
    pub storage_url: Option<String>,
    /// A plain OpenStack Swift by v1 (tempauth) auth URL; needs --swift-user.
    #[arg(long, value_name = "URL", requires = "swift_user", conflicts_with_all = ["url", "cloud"])]
    pub swift_auth: Option<String>,
    /// The Swift user (account:user) for --swift-auth.
    #[arg(long, value_name = "USER")]
    pub swift_user: Option<String>,
    /// File holding the Swift key [env: PITHOSFS_SWIFT_KEY].
    #[arg(long, value_name = "FILE")]
    pub swift_key_file: Option<PathBuf>,
    /// The background mount process's readiness pipe (set by the launcher).
    #[arg(long, hide = true, value_name = "FD")]
    pub ready_fd: Option<i32>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OwnersArg {
    Local,
    All,
    Mine,
}

/// mount(8)'s generic options: accepted, and left to mount(8) as it does
/// (`nosuid` and `nodev` are pithosfs's defaults anyway).
const GENERIC: &[&str] = &[
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "nosuid",
    "nodev",
    "exec",
    "async",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "nodiratime",
    "lazytime",
    "rw",
];

/// pithosfs's own options, for the message that refuses an unknown one.
const KNOWN: &str =
    "ro, rw, allow_other, suid, dev, noexec, unverified_range_reads, container=, cache_size=, cache_dir=, \
    cache_dir_size=, attr_ttl=, dir_ttl=, uid=, gid=, owners=, file_mode=, dir_mode=, url=, token_file=, \
    cloud=, storage_url=, swift_auth=, swift_user=, swift_key_file=";

impl MountArgs {
    /// Applies the `-o` options (after the flags: an option given both ways is the `-o` one).
    pub fn apply_options(&mut self) -> Result<(), String> {
        let options: Vec<String> = std::mem::take(&mut self.options);
        for opt in options.iter().flat_map(|o| o.split(',')).map(str::trim).filter(|o| !o.is_empty()) {
            self.apply_option(opt)?;
        }
        Ok(())
    }

    fn apply_option(&mut self, opt: &str) -> Result<(), String> {
        let (key, given) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let value = || given.ok_or_else(|| format!("mount option {key} needs a value ({key}=…)"));
        let text = || value().map(str::to_string);
        let path = || value().map(PathBuf::from);
        let bad = |e: String| format!("mount option {key}: {e}");
        let number = || value()?.parse::<u32>().map_err(|_| format!("mount option {key} must be a number"));
        let flag = |on: &mut bool, to: bool| match given {
            None => {
                *on = to;
                Ok(())
            }
            Some(_) => Err(format!("mount option {key} takes no value")),
        };
        match key {
            "ro" => flag(&mut self.read_only, true)?,
            "rw" => flag(&mut self.read_only, false)?,
            "allow_other" => flag(&mut self.allow_other, true)?,
            "suid" => flag(&mut self.suid, true)?,
            "dev" => flag(&mut self.dev, true)?,
            "noexec" => flag(&mut self.noexec, true)?,
            "exec" => flag(&mut self.noexec, false)?,
            "unverified_range_reads" => flag(&mut self.unverified_range_reads, true)?,
            "nosuid" => flag(&mut self.suid, false)?,
            "nodev" => flag(&mut self.dev, false)?,
            "container" => self.container = Some(text()?),
            "cache_size" => self.cache_size = parse_size(value()?).map_err(bad)?,
            "cache_dir" => self.cache_dir = Some(path()?),
            "cache_dir_size" => self.cache_dir_size = parse_size(value()?).map_err(bad)?,
            "attr_ttl" => self.attr_ttl = parse_duration(value()?).map_err(bad)?,
            "dir_ttl" => self.dir_ttl = parse_duration(value()?).map_err(bad)?,
            "uid" => self.uid = Some(number()?),
            "gid" => self.gid = Some(number()?),
            "owners" => {
                self.owners = <OwnersArg as clap::ValueEnum>::from_str(value()?, false)
                    .map_err(|_| "mount option owners must be local, all or mine".to_string())?
            }
            "file_mode" => self.file_mode = text()?,
            "dir_mode" => self.dir_mode = text()?,
            "url" => self.url = Some(text()?),
            "token_file" => self.token_file = Some(path()?),
            "cloud" => self.cloud = Some(text()?),
            "storage_url" => self.storage_url = Some(text()?),
            "swift_auth" => self.swift_auth = Some(text()?),
            "swift_user" => self.swift_user = Some(text()?),
            "swift_key_file" => self.swift_key_file = Some(path()?),
            k if GENERIC.contains(&k) && given.is_none() => {}
            k if k.starts_with("x-") || k == "comment" => {}
            _ => return Err(format!("unknown mount option {opt:?} (pithosfs knows: {KNOWN})")),
        }
        Ok(())
    }

    /// What to mount, from the flags and `-o` options.
    pub fn into_request(mut self, log_file: Option<PathBuf>) -> Result<MountRequest, String> {
        self.apply_options()?;
        let octal =
            |s: &str, what: &str| u32::from_str_radix(s, 8).map_err(|_| format!("--{what} must be octal, like 644"));
        let policy = match self.owners {
            OwnersArg::Local => Policy::Local,
            OwnersArg::All => Policy::All,
            OwnersArg::Mine => Policy::Mine,
        };
        let me = Owners::current(policy);
        let owners = Owners { uid: self.uid.unwrap_or(me.uid), gid: self.gid.unwrap_or(me.gid), ..me };
        let mut fs = FsOptions { owners, ..Default::default() };
        fs.read_only = self.read_only;
        fs.suid = self.suid;
        fs.dev = self.dev;
        fs.unverified_range_reads = self.unverified_range_reads;
        fs.container = self.container;
        fs.cache_size = self.cache_size.max(16 << 20);
        fs.attr_ttl = self.attr_ttl.min(Duration::from_secs(3600));
        fs.dir_ttl = self.dir_ttl.min(Duration::from_secs(3600));
        fs.file_mode = octal(&self.file_mode, "file-mode")?;
        fs.dir_mode = octal(&self.dir_mode, "dir-mode")?;
        if let Some(dir) = &self.cache_dir {
            fs.spill_dir = dir.join("spill");
        }
        // clap checks these for the flags; `-o` options are checked here.
        let cloud_given = self.url.is_some() || self.cloud.is_some();
        let storage = match (self.storage_url, self.swift_auth, self.swift_user) {
            (Some(_), Some(_), _) => return Err("give either storage_url or swift_auth, not both".into()),
            (Some(_), None, _) | (None, Some(_), _) if cloud_given => {
                return Err("a plain Swift (storage_url, swift_auth) takes no url or cloud".into())
            }
            (Some(url), None, _) => Some(StorageTarget::StorageUrl(url)),
            (None, Some(url), Some(user)) => {
                Some(StorageTarget::SwiftAuth { url, user, key_file: self.swift_key_file })
            }
            (None, Some(_), None) => return Err("swift_auth needs swift_user".into()),
            (None, None, _) => None,
        };
        let cache_dir = self.cache_dir.map(|d| (d.join("blocks"), self.cache_dir_size.max(16 << 20)));
        Ok(MountRequest {
            mountpoint: self.mountpoint,
            flags: Flags { url: self.url, token_file: self.token_file, cloud: self.cloud, local: false },
            fs,
            foreground: self.foreground,
            allow_other: self.allow_other,
            noexec: self.noexec,
            storage,
            cache_dir,
            ready_fd: self.ready_fd,
            log_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MountArgs,
    }

    fn parse(args: &[&str]) -> MountArgs {
        Cli::try_parse_from(std::iter::once("mount").chain(args.iter().copied())).unwrap().args
    }

    #[test]
    fn fstab_options_set_what_the_flags_set() {
        let mut a = parse(&["/mnt", "-o", "cache_size=1G,attr_ttl=5m,allow_other,ro", "-o", "uid=7,owners=mine"]);
        a.apply_options().unwrap();
        assert_eq!(a.cache_size, 1 << 30);
        assert_eq!(a.attr_ttl, Duration::from_secs(300));
        assert!(a.allow_other && a.read_only);
        assert_eq!(a.uid, Some(7));
        assert!(matches!(a.owners, OwnersArg::Mine));
    }

    #[test]
    fn flags_take_units_and_bare_numbers_keep_their_meaning() {
        let a = parse(&["/mnt", "--cache-size", "256", "--attr-ttl", "1.5", "--dir-ttl", "30s"]);
        assert_eq!(a.cache_size, 256 << 20);
        assert_eq!(a.attr_ttl, Duration::from_millis(1500));
        assert_eq!(a.dir_ttl, Duration::from_secs(30));
        let d = parse(&["/mnt"]);
        assert_eq!((d.cache_size, d.cache_dir_size, d.attr_ttl), (512 << 20, 4 << 30, Duration::from_secs(1)));
        assert!(Cli::try_parse_from(["mount", "/mnt", "--cache-size", "lots"]).is_err());
    }

    #[test]
    fn generic_mount_options_are_accepted() {
        let mut a = parse(&["/mnt", "-o", "defaults,_netdev,noauto,nofail,user,x-systemd.automount,rw,nosuid,nodev"]);
        a.apply_options().unwrap();
        assert!(!a.read_only);
    }

    #[test]
    fn unknown_and_malformed_options_are_refused() {
        for (opts, says) in [
            ("cache_sise=1G", "unknown mount option \"cache_sise=1G\""),
            ("cache_size=lots", "mount option cache_size"),
            ("cache_size", "needs a value"),
            ("ro=yes", "takes no value"),
            ("uid=me", "must be a number"),
            ("owners=everyone", "local, all or mine"),
            ("defaults=1", "unknown mount option"),
        ] {
            let mut a = parse(&["/mnt", "-o", opts]);
            let e = a.apply_options().unwrap_err();
            assert!(e.contains(says), "{opts}: {e}");
        }
    }

    #[test]
    fn option_conflicts_are_checked_as_the_flags_are() {
        let a = parse(&["/mnt", "-o", "storage_url=http://x/v1/AUTH_a,url=http://y"]);
        assert!(a.into_request(None).unwrap_err().contains("no url"));
        let a = parse(&["/mnt", "-o", "swift_auth=http://x/auth/v1.0"]);
        assert!(a.into_request(None).unwrap_err().contains("swift_user"));
    }
}
