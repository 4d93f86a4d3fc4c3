//! Per-thread GIL state, grounded in the kernel rather than guessed: a thread that is blocked
//! in `futex` on an address inside the interpreter's GIL state is waiting for the GIL (`CPython`
//! waits on the GIL's condition variable and mutex, both inside that struct); a thread blocked
//! on any other futex waits for something else (a `threading.Lock`, a queue).
//!
//! Where the GIL state is: on 3.12+ the interpreter points at it (`interp->ceval.gil`, which
//! py-spy reads). On 3.7–3.11 it lives inside `_PyRuntime` at a version-specific offset that
//! hptop does not locate yet: there GIL waiting is not measured (reported as 0, documented).

use super::tick::{GilState, Syscall};

/// Bytes of `CPython`'s `struct _gil_runtime_state` on 64-bit Linux (3.12–3.14): `interval`,
/// `last_holder`, `locked`, `switch_number` (8 each), `cond` (48), `mutex` (40), `switch_cond`
/// (48), `switch_mutex` (40).
pub const GIL_STATE_BYTES: u64 = 4 * 8 + 48 + 40 + 48 + 40;

/// `futex` on `x86_64`.
#[cfg(target_arch = "x86_64")]
const SYS_FUTEX: u64 = 202;
/// `futex` on aarch64.
#[cfg(target_arch = "aarch64")]
const SYS_FUTEX: u64 = 98;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_FUTEX: u64 = u64::MAX;

/// Where the interpreter's GIL state is in the target's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GilLocation {
    /// Address of `struct _gil_runtime_state`.
    pub start: u64,
}

impl GilLocation {
    fn contains(self, address: u64) -> bool {
        address >= self.start && address < self.start + GIL_STATE_BYTES
    }
}

/// The GIL state of a Python thread from what the interpreter says (`owns_gil`) and the
/// system call the kernel says it is blocked in.
pub fn classify(owns_gil: bool, blocked_in: Option<Syscall>, gil: Option<GilLocation>) -> GilState {
    match (owns_gil, blocked_in, gil) {
        (true, _, _) => GilState::Held,
        (false, Some(call), Some(gil)) if call.number == SYS_FUTEX && gil.contains(call.arg0) => {
            GilState::Waiting
        }
        _ => GilState::NotHeld,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_futex_inside_the_gil_state_is_a_gil_wait_and_others_are_not() {
        let gil = Some(GilLocation { start: 0x1000 });
        let futex = |arg0| {
            Some(Syscall {
                number: SYS_FUTEX,
                arg0,
            })
        };
        assert_eq!(classify(true, None, gil), GilState::Held);
        assert_eq!(
            classify(false, futex(0x1000 + 0x40), gil),
            GilState::Waiting
        );
        assert_eq!(
            classify(false, futex(0x1000 + GIL_STATE_BYTES), gil),
            GilState::NotHeld
        );
        assert_eq!(
            classify(false, futex(0x9000), gil),
            GilState::NotHeld,
            "another lock"
        );
        let sleep = Some(Syscall {
            number: 230,
            arg0: 0x1040,
        });
        assert_eq!(
            classify(false, sleep, gil),
            GilState::NotHeld,
            "not a futex"
        );
        assert_eq!(
            classify(false, futex(0x1040), None),
            GilState::NotHeld,
            "GIL not located"
        );
    }
}
