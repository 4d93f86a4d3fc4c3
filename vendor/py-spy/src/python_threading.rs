use std::collections::HashMap;

use anyhow::{Context, Error};

use crate::python_bindings::{
    v3_10_0, v3_11_0, v3_12_0, v3_13_0, v3_14_0, v3_15_0, v3_6_6, v3_7_0, v3_8_0, v3_9_5,
};
use crate::python_data_access::{copy_long, copy_string, DictIterator, PY_TPFLAGS_MANAGED_DICT};
use crate::python_interpreters::{InterpreterState, Object, TypeObject};
use crate::python_process_info::PythonProcessLayout;
use crate::python_spy::PythonSpy;
use remoteprocess::Process;

use crate::version::Version;

use remoteprocess::ProcessMemory;

/// Returns a hashmap of threadid: threadname, by inspecting the '_active' variable in the
/// 'threading' module.
#[cfg_attr(not(all(target_os = "linux", feature = "cli")), allow(dead_code))]
pub fn thread_names_from_interpreter<I: InterpreterState, P: ProcessMemory>(
    addresses: &PythonProcessLayout,
    process: &P,
    version: &Version,
) -> Result<HashMap<u64, String>, Error> {
    Ok(
        named_threads_from_interpreter::<I, P>(addresses, process, version)?
            .into_iter()
            .map(|(id, named)| (id, named.name))
            .collect(),
    )
}

/// A thread's name as `threading` holds it, with the OS thread id its `Thread` object
/// recorded (`_native_id`, 3.8+), so a reader can tell a stale entry from the thread
/// that now has the same thread id (hptop patch).
#[derive(Debug, Clone)]
pub struct NamedThread {
    pub name: String,
    pub native_id: Option<u64>,
}

/// An `int` object's value, or None for any other object (a `None` `_native_id`).
fn read_int<I: InterpreterState, P: ProcessMemory>(
    process: &P,
    version: &Version,
    addr: usize,
) -> Option<u64> {
    const PY_TPFLAGS_LONG_SUBCLASS: usize = 1 << 24;
    let object: I::Object = process.copy_struct(addr).ok()?;
    let object_type = process.copy_pointer(object.ob_type()).ok()?;
    if object_type.flags() & PY_TPFLAGS_LONG_SUBCLASS == 0 {
        return None;
    }
    let (value, _) = copy_long(process, version, addr).ok()?;
    u64::try_from(value).ok()
}

/// Returns a hashmap of threadid: (name, native id), from `threading._active`.
pub fn named_threads_from_interpreter<I: InterpreterState, P: ProcessMemory>(
    addresses: &PythonProcessLayout,
    process: &P,
    version: &Version,
) -> Result<HashMap<u64, NamedThread>, Error> {
    let modules_ptr_ptr = addresses.imports_modules_address as *const *const I::Object;

    let modules: *const I::Object = process
        .copy_pointer(modules_ptr_ptr)
        .context("Failed to copy modules PyObject")?;

    let mut ret = HashMap::new();
    for entry in DictIterator::from(process, version, modules as usize)? {
        let (key, value) = entry?;
        let module_name = copy_string(key as *const I::StringObject, process)?;
        if module_name == "threading" {
            let module: I::Object = process.copy_struct(value)?;
            let module_type = process.copy_pointer(module.ob_type())?;
            let dictptr: usize = process.copy_struct(value + module_type.dictoffset() as usize)?;
            for i in DictIterator::from(process, version, dictptr)? {
                let (key, value) = i?;
                let name = copy_string(key as *const I::StringObject, process)?;
                if name == "_active" {
                    for i in DictIterator::from(process, version, value)? {
                        let (key, value) = i?;
                        let (threadid, _) = copy_long(process, version, key)?;

                        let thread: I::Object = process.copy_struct(value)?;
                        let thread_type = process.copy_pointer(thread.ob_type())?;
                        let flags = thread_type.flags();

                        let dict_iter = if flags & PY_TPFLAGS_MANAGED_DICT != 0 {
                            DictIterator::from_managed_dict(
                                process,
                                version,
                                value,
                                thread.ob_type() as usize,
                                flags,
                            )?
                        } else {
                            let dict_offset = thread_type.dictoffset();
                            let dict_addr = (value as isize + dict_offset) as usize;
                            let thread_dict_addr: usize = process.copy_struct(dict_addr)?;
                            DictIterator::from(process, version, thread_dict_addr)?
                        };

                        let mut name = None;
                        let mut native_id = None;
                        for i in dict_iter {
                            let (key, value) = i?;
                            let varname = copy_string(key as *const I::StringObject, process)?;
                            if varname == "_name" {
                                name = Some(copy_string(value as *const I::StringObject, process)?);
                            } else if varname == "_native_id" {
                                // None (not an int) until the thread has started
                                native_id = read_int::<I, P>(process, version, value);
                            }
                            if name.is_some() && native_id.is_some() {
                                break;
                            }
                        }
                        // hptop patch 38: from 3.8 every thread in `_active` has its native
                        // id set before it is entered there; a name without one was read from
                        // an entry torn while the dict changed or from a Thread object being
                        // freed, and may be another OS thread's (3.15, churn_names.py: a
                        // recycled thread id named as the exited thread once in a CI run).
                        // Left unnamed until the next lookup, never named unverified.
                        let verifiable = (version.major, version.minor) >= (3, 8);
                        if let (Some(name), true) = (name, native_id.is_some() || !verifiable) {
                            ret.insert(threadid as u64, NamedThread { name, native_id });
                        }
                    }
                    break;
                }
            }
            break;
        }
    }
    Ok(ret)
}

/// Returns a hashmap of threadid: threadname, by inspecting the '_active' variable in the
/// 'threading' module.
fn _thread_name_lookup<I: InterpreterState>(
    spy: &PythonSpy,
) -> Result<HashMap<u64, NamedThread>, Error> {
    named_threads_from_interpreter::<I, Process>(&spy.addresses, &spy.process, &spy.version)
}

// try getting the threadnames, but don't sweat it if we can't. Since this relies on dictionary
// processing we only handle py3.6+ right now, and this doesn't work at all if the
// threading module isn't imported in the target program
pub fn thread_name_lookup(process: &PythonSpy) -> Option<HashMap<u64, NamedThread>> {
    let err = match process.version {
        Version {
            major: 3, minor: 6, ..
        } => _thread_name_lookup::<v3_6_6::_is>(process),
        Version {
            major: 3, minor: 7, ..
        } => _thread_name_lookup::<v3_7_0::_is>(process),
        Version {
            major: 3, minor: 8, ..
        } => _thread_name_lookup::<v3_8_0::_is>(process),
        Version {
            major: 3, minor: 9, ..
        } => _thread_name_lookup::<v3_9_5::_is>(process),
        Version {
            major: 3,
            minor: 10,
            ..
        } => _thread_name_lookup::<v3_10_0::_is>(process),
        Version {
            major: 3,
            minor: 11,
            ..
        } => _thread_name_lookup::<v3_11_0::_is>(process),
        Version {
            major: 3,
            minor: 12,
            ..
        } => _thread_name_lookup::<v3_12_0::_is>(process),
        Version {
            major: 3,
            minor: 13,
            ..
        } => _thread_name_lookup::<v3_13_0::_is>(process),
        Version {
            major: 3,
            minor: 14,
            ..
        } => _thread_name_lookup::<v3_14_0::_is>(process),
        Version {
            major: 3,
            minor: 15,
            ..
        } => _thread_name_lookup::<v3_15_0::_is>(process),
        _ => return None,
    };
    err.ok()
}
