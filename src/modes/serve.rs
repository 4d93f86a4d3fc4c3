//! `hptop serve`: the HTTP server and its watcher wired over the fleet of sampling workers
//! (see [`crate::serve`]).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::error::HptopError;
use crate::serve::{http, watch_matching, Fleet, ServeOptions, Watch};

/// Runs the server until SIGINT or SIGTERM.
///
/// # Errors
/// The address cannot be bound, or a `--pid` cannot be attached.
pub fn run(options: &ServeOptions) -> Result<(), HptopError> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HptopError::Usage(format!("cannot start the server's runtime: {e}")))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.listen))
        .map_err(|e| {
            HptopError::Usage(format!(
                "cannot listen on \"{}\": {e}; pick another with --listen ADDR:PORT",
                options.listen
            ))
        })?;
    let fleet = Arc::new(Fleet::default());
    if let Watch::Pids(pids) = &options.watch {
        for &pid in pids {
            // A launcher (a shell, a pyenv shim, `uv run`) stands for its Python child.
            let resolved = crate::session::resolve_pid(pid, None).and_then(|r| {
                if let Some(notice) = &r.notice {
                    eprintln!("hptop: {notice}");
                }
                fleet.watch(r.pid, options)
            });
            if let Err(e) = resolved {
                fleet.stop_all();
                return Err(e);
            }
        }
    }
    let bound = listener.local_addr().unwrap_or(options.listen);
    eprintln!(
        "hptop: serving http://{bound}/metrics (also /debug/pprof/profile?seconds=N and /report?seconds=N); {} watched{}",
        crate::fmt::counted(fleet.watched() as u64, "process"),
        match &options.watch {
            Watch::Match(re) => format!(", and every Python process matching \"{re}\" as it appears"),
            Watch::Pids(_) => String::new(),
        }
    );
    if !bound.ip().is_loopback() {
        eprintln!(
            "hptop: warning: {bound} is reachable from other machines: the metrics and profiles show function names, file paths and command lines"
        );
    }
    let watcher = match &options.watch {
        Watch::Match(re) => {
            let fleet = Arc::clone(&fleet);
            let re = re.clone();
            let options = options.clone();
            Some(std::thread::spawn(move || {
                watch_matching(&fleet, &re, &options);
            }))
        }
        Watch::Pids(_) => None,
    };
    let served = runtime.block_on(http::serve(
        listener,
        Arc::clone(&fleet),
        interrupted,
        options.sampling.rate_hz,
    ));
    fleet.stop_all();
    if let Some(w) = watcher {
        let _ = w.join();
    }
    served
}
