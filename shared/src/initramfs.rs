//! The initramfs: how programs reach the guest.
//!
//! The host packs the program to run (and any `--file`s) into a `newc` cpio
//! archive (the format of Linux's initramfs, `cpio -H newc`) and hands it to
//! the guest as the first PVH boot module (`hvm_start_info.modlist`), the
//! way QEMU's `-initrd` hands one to a PVH kernel. The guest reads it in
//! place, read-only.
//!
//! Which program to start, and with what arguments and environment, travels
//! inside the archive as two files, so the same archive boots under QEMU
//! with `-initrd` and nothing else:
//!
//! * [`ARGV_FILE`]: the path of the program inside the archive, then its
//!   argument vector, each NUL-terminated: `"/bin/hello\0hello\0world\0"`
//!   runs `/bin/hello` with `argv = ["hello", "world"]`.
//! * [`ENV_FILE`]: the environment, `KEY=VALUE` strings, each NUL-terminated
//!   (absent or empty: no environment).
//!
//! An archive without [`ARGV_FILE`] starts nothing: the guest runs its
//! command-line workload as before.

/// Guest-physical address of the one `hvm_modlist_entry` the host writes
/// (`{ paddr: u64, size: u64, cmdline_paddr: u64, reserved: u64 }`),
/// between the start info and the memory map.
pub const MODLIST_ADDR: u64 = 0x6080;
/// Size of one `hvm_modlist_entry`.
pub const MODLIST_ENTRY_SIZE: u64 = 32;

/// Program path and argument vector (see the module documentation).
pub const ARGV_FILE: &str = ".mobius/argv";
/// Environment of the program (see the module documentation).
pub const ENV_FILE: &str = ".mobius/env";
/// Present (empty) when the program is a path on the first disk, whose
/// file system the guest then mounts at `/` (the archive goes to
/// [`ARCHIVE_MOUNT_WITH_ROOT_DISK`]): `mobius run --disk IMG -- /bin/prog`.
pub const ROOT_DISK_FILE: &str = ".mobius/root-disk";
/// Where the archive is mounted when the first disk is the root.
pub const ARCHIVE_MOUNT_WITH_ROOT_DISK: &str = "/initrd";
/// Where the host puts the program named on its command line:
/// `PROGRAM_DIR/<file name>`.
pub const PROGRAM_DIR: &str = "bin";

/// Most bytes of arguments plus environment the host packs (Linux's
/// `ARG_MAX` is larger; a microVM's initial stack is kept small).
pub const ARGS_MAX: usize = 128 * 1024;

const _: () = assert!(
    MODLIST_ADDR + MODLIST_ENTRY_SIZE <= crate::layout::MEMMAP_ADDR
        && MODLIST_ADDR >= crate::layout::START_INFO_ADDR + 56
);
