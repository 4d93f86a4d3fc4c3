//! Per-thread GIL state, grounded in the kernel rather than guessed: a thread that is blocked
//! in `futex` on an address inside the interpreter's GIL state is waiting for the GIL (`CPython`
//! waits on the GIL's condition variable and mutex, both inside that struct); a thread blocked
//! on any other futex waits for something else (a `threading.Lock`, a queue).
//!
//! Where the GIL state is: on 3.12+ the interpreter points at it (`interp->ceval.gil`, which
//! py-spy reads). On 3.7–3.11 it lives inside `_PyRuntime` at a version-specific offset; hptop
//! finds it by its contents ([`find_gil_state`]): while a thread holds the GIL, the GIL's
//! `last_holder` equals `_PyRuntime.gilstate.tstate_current` (whose address py-spy knows),
//! `locked` is 1, and `interval` before them is the switch interval in microseconds.

use super::tick::{Activity, GilState, OsState, Syscall};

/// Bytes of `CPython`'s `struct _gil_runtime_state` on 64-bit Linux (3.12–3.14): `interval`,
/// `last_holder`, `locked`, `switch_number` (8 each), `cond` (48), `mutex` (40), `switch_cond`
/// (48), `switch_mutex` (40).
pub const GIL_STATE_BYTES: u64 = 4 * 8 + 48 + 40 + 48 + 40;

/// `futex` on `x86_64`.
#[cfg(target_arch = "x86_64")]
pub const SYS_FUTEX: u64 = 202;
/// `futex` on aarch64.
#[cfg(target_arch = "aarch64")]
pub const SYS_FUTEX: u64 = 98;
/// No `futex` number known on this architecture.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const SYS_FUTEX: u64 = u64::MAX;

/// System calls that mean sleeping or polling (`x86_64` numbers): `nanosleep`,
/// `clock_nanosleep`, `select`, `pselect6`, `poll`, `ppoll`, `epoll_wait`, `epoll_pwait`,
/// `epoll_pwait2`, `pause`.
#[cfg(target_arch = "x86_64")]
const SLEEPING_CALLS: &[u64] = &[35, 230, 23, 270, 7, 271, 232, 281, 441, 34];
#[cfg(not(target_arch = "x86_64"))]
const SLEEPING_CALLS: &[u64] = &[];

/// What a Python thread is doing, from its kernel state, the system call it is blocked in,
/// and its GIL state.
pub fn activity(state: OsState, blocked_in: Option<Syscall>, gil: GilState) -> Activity {
    match (gil, state) {
        (GilState::Held, _) => Activity::HoldsGil,
        (GilState::Waiting, _) => Activity::WaitsGil,
        (_, OsState::Running) => Activity::Native,
        (_, OsState::DiskSleep) => Activity::Blocked,
        (_, OsState::Sleeping) => match blocked_in {
            Some(call) if SLEEPING_CALLS.contains(&call.number) => Activity::Sleeping,
            Some(_) => Activity::Blocked,
            None => Activity::Unknown,
        },
        _ => Activity::Unknown,
    }
}

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

/// Offset of `switch_number` in `struct _gil_runtime_state` (after `interval`, `last_holder`,
/// `locked` with its padding).
pub const SWITCH_NUMBER_OFFSET: u64 = 24;

/// Largest switch interval accepted when searching (`sys.setswitchinterval`, in µs: 10 s).
const MAX_INTERVAL_US: u64 = 10_000_000;

/// Offset in `window` (memory of `_PyRuntime` around `gilstate.tstate_current`) of a
/// `struct _gil_runtime_state` whose `last_holder` is `holder` (the current thread state) and
/// which is locked; `None` when no such struct is there (e.g. nobody holds the GIL now).
pub fn find_gil_state(window: &[u8], holder: u64) -> Option<u64> {
    if holder == 0 {
        return None;
    }
    let word = |offset: usize| -> Option<u64> {
        let bytes: [u8; 8] = window.get(offset..offset + 8)?.try_into().ok()?;
        Some(u64::from_ne_bytes(bytes))
    };
    (0..window.len().saturating_sub(32))
        .step_by(8)
        .find_map(|offset| {
            let interval = word(offset)?;
            let last_holder = word(offset + 8)?;
            let locked = word(offset + 16)? & 0xffff_ffff;
            // `tstate_current` holds the same pointer, but is not between an interval and a
            // `locked` of 1 (except by chance): all three fields must match.
            let found =
                last_holder == holder && locked == 1 && (1..=MAX_INTERVAL_US).contains(&interval);
            found.then_some(offset as u64)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activities_from_state_syscall_and_gil() {
        let call = |number| Some(Syscall { number, arg0: 0 });
        assert_eq!(
            activity(OsState::Running, None, GilState::Held),
            Activity::HoldsGil
        );
        assert_eq!(
            activity(OsState::Sleeping, call(SYS_FUTEX), GilState::Waiting),
            Activity::WaitsGil
        );
        assert_eq!(
            activity(OsState::Running, None, GilState::NotHeld),
            Activity::Native
        );
        assert_eq!(
            activity(OsState::Sleeping, call(SYS_FUTEX), GilState::NotHeld),
            Activity::Blocked
        );
        assert_eq!(
            activity(OsState::DiskSleep, None, GilState::NotHeld),
            Activity::Blocked
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            activity(OsState::Sleeping, call(230), GilState::NotHeld),
            Activity::Sleeping
        );
        assert_eq!(
            activity(OsState::Sleeping, None, GilState::NotHeld),
            Activity::Unknown
        );
    }

    #[test]
    fn finds_the_gil_state_by_its_fields() {
        let holder: u64 = 0x5555_0000_1234;
        let mut window = vec![0u8; 256];
        // A decoy: the holder pointer alone (like gilstate.tstate_current) at offset 32.
        window[32..40].copy_from_slice(&holder.to_ne_bytes());
        // The GIL at offset 96: interval 5000 us, last_holder, locked = 1, switch_number.
        window[96..104].copy_from_slice(&5000u64.to_ne_bytes());
        window[104..112].copy_from_slice(&holder.to_ne_bytes());
        window[112..116].copy_from_slice(&1u32.to_ne_bytes());
        window[120..128].copy_from_slice(&77u64.to_ne_bytes());
        assert_eq!(find_gil_state(&window, holder), Some(96));
        assert_eq!(find_gil_state(&window, 0), None, "nobody holds the GIL");
        window[112..116].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(
            find_gil_state(&window, holder),
            None,
            "an unlocked GIL proves nothing"
        );
    }

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
