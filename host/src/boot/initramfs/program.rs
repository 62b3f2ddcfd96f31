//! What a run puts in its archive: the program, `--file`s, `--env`, argv
//! ([`ArchiveSpec`]), checked on the host.

use mobius_shared::initramfs::{ARGS_MAX, ARGV_FILE, ENV_FILE, PROGRAM_DIR, ROOT_DISK_FILE};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::*;

/// The contents of [`ARGV_FILE`]: the program's guest path, then `argv`,
/// each NUL-terminated.
pub fn encode_argv(guest_path: &str, argv: &[OsString]) -> Result<Vec<u8>, InitramfsError> {
    if guest_path.contains('\0') {
        return Err(InitramfsError::BadPath {
            path: guest_path.to_string(),
            why: "it contains a NUL byte",
        });
    }
    let mut out = Vec::new();
    out.extend_from_slice(guest_path.as_bytes());
    out.push(0);
    for (index, arg) in argv.iter().enumerate() {
        let bytes = arg.as_bytes();
        if bytes.contains(&0) {
            return Err(InitramfsError::ArgNul { index });
        }
        out.extend_from_slice(bytes);
        out.push(0);
    }
    Ok(out)
}

/// Check one `--env` entry: `KEY=VALUE`, a non-empty KEY, no NUL byte.
pub fn check_env(entry: &str) -> Result<(), InitramfsError> {
    if entry.contains('\0') {
        return Err(InitramfsError::EnvNul);
    }
    match entry.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(()),
        _ => Err(InitramfsError::BadEnv(entry.to_string())),
    }
}

/// The contents of [`ENV_FILE`]: each `KEY=VALUE` NUL-terminated.
pub fn encode_env(env: &[String]) -> Result<Vec<u8>, InitramfsError> {
    let mut out = Vec::new();
    for entry in env {
        check_env(entry)?;
        out.extend_from_slice(entry.as_bytes());
        out.push(0);
    }
    Ok(out)
}

/// Whether a word after `--` names a host program rather than a built-in
/// workload: it contains a '/' or names an existing file.
pub fn is_program_word(word: &OsStr) -> bool {
    word.as_bytes().contains(&b'/') || Path::new(word).is_file()
}

/// Check that `bytes` is a 64-bit little-endian x86-64 ELF file.
fn check_elf(path: &Path, bytes: &[u8]) -> Result<(), InitramfsError> {
    let why = if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        "no ELF magic"
    } else if bytes.get(4) != Some(&2) {
        "not a 64-bit ELF"
    } else if bytes.get(5) != Some(&1) {
        "not little-endian"
    } else if bytes.get(18..20) != Some([62u8, 0].as_slice()) {
        "machine is not x86-64"
    } else {
        return Ok(());
    };
    Err(InitramfsError::NotElf {
        path: path.to_path_buf(),
        why,
    })
}

/// Read a regular host file: its bytes and permission bits.
fn read_host_file(what: &'static str, path: &Path) -> Result<(Vec<u8>, u32), InitramfsError> {
    let read_err = |source| InitramfsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(InitramfsError::NotAFile {
            what,
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    Ok((bytes, meta.permissions().mode() & 0o777))
}

/// `--file HOST[:GUEST]`: a host file and where it goes in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub host: PathBuf,
    /// Absolute guest path.
    pub guest: String,
}

impl FromStr for FileSpec {
    type Err = InitramfsError;

    /// `HOST` goes to `/<file name of HOST>`; `HOST:/dir/` to
    /// `/dir/<file name of HOST>`; `HOST:/path` to `/path`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InitramfsError::BadFileSpec {
            spec: spec.to_string(),
            why: why.to_string(),
        };
        let (host, guest) = match spec.split_once(':') {
            Some((h, g)) => (h, Some(g)),
            None => (spec, None),
        };
        if host.is_empty() {
            return Err(bad("HOST is empty"));
        }
        let file_name = || {
            Path::new(host)
                .file_name()
                .and_then(OsStr::to_str)
                .ok_or_else(|| bad("HOST does not end in a file name"))
        };
        let guest = match guest {
            None => format!("/{}", file_name()?),
            Some(g) if !g.starts_with('/') => {
                return Err(bad(
                    "GUEST must be an absolute guest path, e.g. data.txt:/data/data.txt",
                ))
            }
            Some(g) if g.ends_with('/') => format!("{g}{}", file_name()?),
            Some(g) => g.to_string(),
        };
        archive_name(&guest).map_err(|e| bad(&e.to_string()))?;
        Ok(FileSpec {
            host: PathBuf::from(host),
            guest,
        })
    }
}

/// What a run packs for the guest.
#[derive(Debug, Clone, Default)]
pub struct ArchiveSpec {
    /// PROGRAM and its arguments: `program[0]` is the host path exactly as
    /// the user typed it, and becomes `argv[0]`. Empty: no program.
    pub program: Vec<OsString>,
    pub files: Vec<FileSpec>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// The user's own newc archive; the host's entries go after its entries.
    pub initrd: Option<PathBuf>,
    /// PROGRAM is a path on the first disk, which the guest mounts at `/`
    /// ([`program_on_disk`]): nothing of it is read on the host.
    pub program_on_disk: bool,
    /// A `--disk` marked `,root` that is not the first one (its path).
    pub misplaced_root: Option<PathBuf>,
}

/// Whether PROGRAM (`word`, the first word after `--`) is on the first of
/// `disks` rather than on the host: that disk is marked `,root`, or there
/// is a disk and `word` is an absolute path that names nothing on the
/// host (`mobius run --disk rootfs.ext4 -- /bin/prog`).
pub fn program_on_disk(
    word: Option<&OsStr>,
    disks: &[crate::devices::virtio::disk::DiskConfig],
) -> bool {
    let Some(word) = word else { return false };
    match disks.first() {
        Some(d) if d.root => true,
        Some(_) => word.as_bytes().starts_with(b"/") && !Path::new(word).exists(),
        None => false,
    }
}

impl ArchiveSpec {
    /// Whether there is nothing to pack (then the guest gets no module).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
            && self.files.is_empty()
            && self.env.is_empty()
            && self.initrd.is_none()
    }

    /// The control files (argv, environment) of a program on the root
    /// disk: its guest path is the word as given.
    fn disk_program_control(&self) -> Result<(Vec<u8>, Vec<u8>), InitramfsError> {
        let word = self
            .program
            .first()
            .ok_or_else(|| InitramfsError::NoSuchProgram(String::new()))?;
        let guest = word
            .to_str()
            .filter(|w| w.starts_with('/'))
            .ok_or_else(|| InitramfsError::DiskProgramNotAbsolute(word.to_string_lossy().into()))?
            .to_string();
        let argv = encode_argv(&guest, &self.program)?;
        let env = encode_env(&self.env)?;
        let size = argv.len().saturating_add(env.len());
        if size > ARGS_MAX {
            return Err(InitramfsError::ArgsTooLarge { size });
        }
        Ok((argv, env))
    }

    /// The archive, or `None` when there is nothing to pack.
    pub fn build(&self) -> Result<Option<Vec<u8>>, InitramfsError> {
        if self.is_empty() {
            return Ok(None);
        }
        self.build_archive().map(Some)
    }

    /// The archive (just a trailer when there is nothing to pack): the
    /// `--initrd` entries, the program at `/bin/<file name>`, the `--file`s,
    /// then [`ARGV_FILE`] and [`ENV_FILE`] (this one only if there is an
    /// environment). Reads every file named on the host.
    pub fn build_archive(&self) -> Result<Vec<u8>, InitramfsError> {
        if self.program.is_empty() && !self.env.is_empty() {
            return Err(InitramfsError::EnvWithoutProgram);
        }
        let mut fs = match &self.initrd {
            Some(path) => {
                let (bytes, _) = read_host_file("--initrd", path)?;
                Initramfs::from_archive(&bytes).map_err(|e| InitramfsError::Initrd {
                    path: path.clone(),
                    source: Box::new(e),
                })?
            }
            None => Initramfs::new(),
        };
        if let Some(path) = &self.misplaced_root {
            return Err(InitramfsError::RootDiskNotFirst(path.display().to_string()));
        }
        let mut control = None;
        if self.program_on_disk {
            control = Some(self.disk_program_control()?);
            fs.add_file(ROOT_DISK_FILE, &[], CONTROL_MODE)?;
        } else if let Some(word) = self.program.first() {
            if !is_program_word(word) {
                return Err(InitramfsError::NoSuchProgram(
                    word.to_string_lossy().into_owned(),
                ));
            }
            let path = Path::new(word);
            let (bytes, _) = read_host_file("program", path)?;
            check_elf(path, &bytes)?;
            let name = path.file_name().and_then(OsStr::to_str).ok_or_else(|| {
                InitramfsError::BadPath {
                    path: path.display().to_string(),
                    why: "the program's file name is not UTF-8",
                }
            })?;
            let guest = format!("/{PROGRAM_DIR}/{name}");
            let argv = encode_argv(&guest, &self.program)?;
            let env = encode_env(&self.env)?;
            let size = argv.len().saturating_add(env.len());
            if size > ARGS_MAX {
                return Err(InitramfsError::ArgsTooLarge { size });
            }
            fs.add_file(&guest, &bytes, PROGRAM_MODE)?;
            control = Some((argv, env));
        }
        for file in &self.files {
            let (bytes, perm) = read_host_file("--file", &file.host)?;
            fs.add_file(&file.guest, &bytes, S_IFREG | perm)?;
        }
        if let Some((argv, env)) = control {
            fs.add_file(ARGV_FILE, &argv, CONTROL_MODE)?;
            if !env.is_empty() {
                fs.add_file(ENV_FILE, &env, CONTROL_MODE)?;
            }
        }
        Ok(fs.finish())
    }
}
