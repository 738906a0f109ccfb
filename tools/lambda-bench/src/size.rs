//! Deployment size: the release binary as built (the workspace profile strips it) and the zip
//! Lambda would get (the binary renamed `bootstrap`, deflated by the `zip` CLI at its default level).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub struct Size {
    pub arch: &'static str,
    pub binary: u64,
    pub zip: u64,
}

/// The ELF machine of a binary.
pub fn arch(bin: &Path) -> anyhow::Result<&'static str> {
    let bytes = std::fs::read(bin).with_context(|| format!("read {}", bin.display()))?;
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        bail!("{} is not an ELF file", bin.display());
    }
    Ok(match u16::from_le_bytes([bytes[18], bytes[19]]) {
        0x3e => "x86_64",
        0xb7 => "arm64",
        _ => "other",
    })
}

/// Whether the ELF file still has a symbol table (i.e. was not stripped).
pub fn has_symtab(bin: &Path) -> anyhow::Result<bool> {
    let out = Command::new("readelf").arg("-S").arg(bin).output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).contains(".symtab")),
        _ => bail!("readelf is not available"),
    }
}

pub fn measure(bin: &Path, scratch: &Path) -> anyhow::Result<Size> {
    let binary = std::fs::metadata(bin)
        .with_context(|| format!("stat {}", bin.display()))?
        .len();
    let dir = tempfile::tempdir_in(scratch)?;
    std::fs::copy(bin, dir.path().join("bootstrap"))?;
    let status = Command::new("zip")
        .args(["-q", "-X", "function.zip", "bootstrap"])
        .current_dir(dir.path())
        .status()
        .context("run the zip CLI (is it installed?)")?;
    if !status.success() {
        bail!("zip failed: {status}");
    }
    let zip = std::fs::metadata(dir.path().join("function.zip"))?.len();
    Ok(Size {
        arch: arch(bin)?,
        binary,
        zip,
    })
}
