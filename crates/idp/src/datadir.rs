//! The data directory holds credentials (the secrets key, the local CA's key, mails with live
//! reset links, `up`'s auth0-client configuration with client secrets), so it is private by
//! construction: directories are created 0700 and files 0600 at the moment they are created,
//! never loosened and then tightened, so no other local user can ever open them. What an
//! earlier version or an operator left readable to others is reported at start, not changed:
//! the operator may have meant it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
/// The group and other permission bits.
const SHARED_BITS: u32 = 0o077;
/// Start-up warnings name at most this many files (an old outbox may hold thousands).
const MAX_WARNINGS: usize = 20;

/// Creates `dir` and its missing parents 0700 (existing ones are left as they are).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Options that open a file for writing and, when they create it, create it 0600. The caller
/// adds `create`, `create_new` or `truncate`.
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Writes `data` to `path`, created 0600 when missing (an existing file keeps its mode; the
/// start-up check reports it if others can read it).
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    private_file_options().create(true).truncate(true).open(path)?.write_all(data)
}

/// Creates the data directory (0700) and warns about anything in it that others can read.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    create_private_dir(dir)?;
    warn_if_shared(dir);
    Ok(())
}

/// One log line per file or directory under `dir` (itself included) that its group or other
/// users can access, with its mode and the command that fixes it.
pub fn warn_if_shared(dir: &Path) {
    let shared = shared_entries(dir);
    for (path, mode, is_dir) in shared.iter().take(MAX_WARNINGS) {
        let fix = format!("chmod {:o} {}", if *is_dir { DIR_MODE } else { FILE_MODE }, path.display());
        tracing::warn!(
            path = %path.display(),
            mode = %format!("{mode:04o}"),
            "{} has mode {mode:04o}: other users of this machine can read it, and it may hold credentials; \
             fix: {fix}",
            path.display()
        );
    }
    if shared.len() > MAX_WARNINGS {
        tracing::warn!(
            more = shared.len() - MAX_WARNINGS,
            dir = %dir.display(),
            "more files in the data directory are readable by other users"
        );
    }
}

/// Everything under `dir` (itself included, symbolic links not followed) whose mode grants its
/// group or others any access: `(path, mode, is_dir)`.
pub fn shared_entries(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut found = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.file_type().is_symlink() {
                continue;
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode & SHARED_BITS != 0 {
                found.push((path.clone(), mode, meta.is_dir()));
            }
            if meta.is_dir()
                && let Ok(entries) = std::fs::read_dir(&path)
            {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        }
        found.sort();
    }
    #[cfg(not(unix))]
    let _ = dir;
    found
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_and_finds_what_others_can_read() {
        let root = std::env::temp_dir().join(format!("gatehouse-datadir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!((mode(&root.join("a")), mode(&dir)), (0o700, 0o700), "every directory created is private");
        write_private(&dir.join("f"), b"x").unwrap();
        assert_eq!(mode(&dir.join("f")), 0o600);
        assert!(shared_entries(&root.join("a")).is_empty());

        std::fs::set_permissions(dir.join("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let found = shared_entries(&root.join("a"));
        assert_eq!(found, vec![(dir.clone(), 0o755, true), (dir.join("f"), 0o640, false)], "links are not followed");
        let _ = std::fs::remove_dir_all(&root);
    }
}
