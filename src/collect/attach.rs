//! What is checked before and told after attaching: the target exists, is not a zombie, is
//! readable, is Python; an attach failure classified into the error that says its fix.

use super::discover::ProcessInfo;
use crate::error::HptopError;

/// Checks from `/proc` what can be told before attaching: exists, not a zombie, readable.
pub(super) fn check_target(pid: u32) -> Result<ProcessInfo, HptopError> {
    let info = ProcessInfo::read(pid).ok_or(HptopError::ProcessGone { pid })?;
    if info.is_zombie() {
        return Err(HptopError::Zombie {
            pid,
            ppid: info.stat.ppid,
        });
    }
    // `maps` needs the same access as reading memory (PTRACE_MODE_READ): test it first.
    if let Err(e) = std::fs::read(format!("/proc/{pid}/maps")) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return Err(HptopError::PermissionDenied {
                pid,
                detail: format!("reading /proc/{pid}/maps: {e}"),
            });
        }
        if ProcessInfo::read(pid).is_none() {
            return Err(HptopError::ProcessGone { pid });
        }
    }
    if super::discover::python_guess(pid).is_none() {
        return Err(not_python(&info));
    }
    Ok(info)
}

pub(super) fn not_python(info: &ProcessInfo) -> HptopError {
    let children = super::discover::python_descendants(info.pid)
        .into_iter()
        .filter_map(|child| Some((child, ProcessInfo::read(child)?.command())))
        .collect();
    HptopError::NotPython {
        pid: info.pid,
        command: info.command(),
        children,
    }
}

pub(super) fn classify_attach_error(info: &ProcessInfo, detail: &str) -> HptopError {
    let pid = info.pid;
    let lower = detail.to_lowercase();
    match ProcessInfo::read(pid) {
        None => HptopError::ProcessGone { pid },
        Some(now) if now.is_zombie() => HptopError::Zombie {
            pid,
            ppid: now.stat.ppid,
        },
        Some(_)
            if lower.contains("permission denied") || lower.contains("operation not permitted") =>
        {
            HptopError::PermissionDenied {
                pid,
                detail: detail.to_owned(),
            }
        }
        Some(_) if super::discover::python_guess(pid).is_none() => not_python(info),
        Some(_) => HptopError::Unsupported {
            pid,
            version: super::discover::python_guess(pid)
                .and_then(|g| g.version)
                .map_or_else(|| "version unknown".into(), |v| format!("Python {v}")),
            detail: detail.to_owned(),
        },
    }
}
