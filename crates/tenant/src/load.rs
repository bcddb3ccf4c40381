//! Reading a tenant from a path, in the format the path says, as deploy-cli decides: a folder
//! is its directory format ([`crate::directory`]), a file is YAML ([`crate::file`]).

use std::path::Path;

use crate::TenantFile;
use crate::error::Result;
use crate::keywords::Keywords;

/// Read a tenant: a folder in deploy-cli's directory format, else a tenant.yaml whose relative
/// paths resolve against its folder.
pub fn load_tenant(path: impl AsRef<Path>, keywords: &Keywords) -> Result<TenantFile> {
    let path = path.as_ref();
    if path.is_dir() { crate::directory::load_dir(path, keywords) } else { crate::file::load_yaml(path, keywords) }
}
