//! Files a tenant file references (action code, database scripts), read with the keywords
//! replaced. Below both the entry types (`model`) that resolve their values through
//! it and the readers (`file`, `directory`) that set it up.
//!
//! A value is read as a file when it names an existing file; a value that looks like a path
//! (`./…`, `../…`, `/…`, or ending in `.js`) but names no file is an error; anything else is
//! inline code.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::keywords::{Keywords, Syntax, Unresolved};

/// Where referenced files are read from, and with which keywords. Markers left without a
/// value are collected in `unresolved`.
pub struct Sources<'a> {
    /// The file holding the references, for messages.
    pub file: &'a str,
    /// The folder relative paths resolve against.
    pub base_dir: &'a Path,
    pub keywords: &'a Keywords,
    pub unresolved: &'a RefCell<Vec<Unresolved>>,
}

impl Sources<'_> {
    /// Resolve a code-or-path value: `(text, Some(path))` when read from a file.
    pub fn load(&self, value: &str, ctx: &Ctx<'_>, key: &str) -> Result<(String, Option<PathBuf>)> {
        if value.contains('\n') {
            return Ok((value.to_string(), None));
        }
        let candidate = value.trim();
        let path = self.base_dir.join(candidate.replace('\\', "/"));
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
            let replaced = self.keywords.replace_all(&text, &path.display().to_string(), Syntax::Plain)?;
            self.unresolved.borrow_mut().extend(replaced.unresolved);
            return Ok((replaced.text, Some(path)));
        }
        let looks_like_path =
            ["./", "../", "/", ".\\"].iter().any(|p| candidate.starts_with(p)) || candidate.ends_with(".js");
        if looks_like_path {
            return Err(ctx.field(
                key,
                format!("file {} not found (paths are relative to the folder of {})", path.display(), self.file),
            ));
        }
        Ok((value.to_string(), None))
    }
}
