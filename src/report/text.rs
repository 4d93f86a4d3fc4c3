//! The text report: a header of process figures, a thread table, then a py-spy-top-like
//! function table.

use crate::model::snapshot::Mode;
use std::fmt::Write as _;

use super::ReportHeader;
use crate::fmt;
use crate::model::family;
use crate::model::functions::{Counter, Credited};
use crate::model::snapshot::{FunctionRow, ProcessSnapshot, Snapshot, Straggler};

/// Function rows shown per process in the text report (JSON has them all).
pub const TEXT_FUNCTION_ROWS: usize = 40;

/// Renders the whole report.
pub fn render(snapshot: &Snapshot, header: &ReportHeader) -> String {
    let mut out = String::new();
    if snapshot.processes.len() > 1 {
        render_workers(&mut out, snapshot);
    }
    for (i, p) in snapshot.processes.iter().enumerate() {
        if i > 0 {
            out.push_str("\n────────\n");
        }
        render_process(&mut out, p, header);
    }
    let _ = writeln!(
        out,
        "\nhptop used {} of CPU ({:.1}% of one core over the window).",
        fmt::seconds(header.hptop_cpu_s),
        snapshot
            .processes
            .first()
            .filter(|p| p.duration_s > 0.0)
            .map_or(0.0, |p| header.hptop_cpu_s * 100.0 / p.duration_s)
    );
    out
}

/// What went wrong or was cut back while sampling: partial stacks, a lowered rate, the first
/// failed read.
fn render_sampling_notes(out: &mut String, p: &ProcessSnapshot) {
    if p.partial_stacks > 0 {
        let _ = writeln!(
            out,
            "Partial stacks: {} of the thread-samples ({}) were cut short while read (the stack \
             changed under the reader); outer functions' total % reads low by up to that. \
             --blocking reads whole stacks.",
            fmt::percent(p.partial_stacks_percent),
            fmt::count(p.partial_stacks),
        );
    }
    if p.stacks_reread > 0 || p.stacks_dropped > 0 {
        let _ = writeln!(
            out,
            "Stacks read again: {} of the thread-samples raced with their thread (frames not all \
             live at one instant) and were read again; {} raced at every read and {} credited \
             to no function.",
            fmt::count(p.stacks_reread),
            fmt::count(p.stacks_dropped),
            if p.stacks_dropped == 1 { "is" } else { "are" },
        );
        if p.many_dropped() {
            let _ = writeln!(
                out,
                "Dropped: {} of the Python thread-samples. The code calls and returns faster than \
                 a stack can be read without pausing it (e.g. small methods, properties and \
                 classes called in a loop); --blocking reads every stack whole.",
                fmt::percent(p.stacks_dropped_percent),
            );
        }
    }
    if p.skipped_ticks * 10 > p.samples + p.sample_errors {
        let _ = writeln!(
            out,
            "Rate lowered to {:.1} Hz: reading {} threads takes longer than the interval, and hptop \
             keeps its sampler under three quarters of a core (or the machine kept it from running on time).",
            p.rate_hz,
            p.threads.iter().filter(|t| t.alive).count()
        );
    }
    if p.exit_cut_reads > 0 {
        let _ = writeln!(
            out,
            "{} cut short by the process's exit (not counted as errors).",
            fmt::counted(p.exit_cut_reads, "read")
        );
    }
    if let Some(cause) = p
        .first_sample_error
        .as_ref()
        .filter(|_| p.sample_errors > 0)
    {
        let _ = writeln!(out, "First failed read: {cause}");
    }
}

fn render_process(out: &mut String, p: &ProcessSnapshot, header: &ReportHeader) {
    let _ = writeln!(out, "PID {}  {}", p.pid, p.cmdline.join(" "));
    let _ = writeln!(
        out,
        "Python {} · window {} · {} at {:.1} Hz ({} requested, {} skipped, {})",
        p.python_version,
        fmt::seconds(p.duration_s),
        fmt::counted(p.samples, "sample"),
        p.rate_hz,
        header.rate_hz,
        fmt::count(p.skipped_ticks),
        fmt::counted(p.sample_errors, "error"),
    );
    render_sampling_notes(out, p);
    let _ = writeln!(
        out,
        "CPU {} · RSS {} (peak {}) · swap {} · GIL held {} / wanted {}{}",
        fmt::percent(p.cpu_percent),
        fmt::bytes(p.rss_bytes),
        fmt::bytes(p.rss_peak_bytes),
        fmt::bytes(p.swap_bytes),
        fmt::percent(p.gil_held_percent),
        fmt::percent(p.gil_wanted_percent),
        p.gil_handoffs_per_s
            .map_or_else(String::new, |h| format!(", {h:.0} hand-offs/s")),
    );
    if let Some(verdict) = &p.verdict {
        let _ = writeln!(out, "GIL: {verdict}.");
    }
    if p.gc.samples > 0 {
        let _ = writeln!(
            out,
            "Garbage collection: {} of the CPU credited to functions ({} on CPU, {} in collections).",
            fmt::percent(p.gc.percent),
            fmt::seconds(p.gc.cpu_s),
            fmt::counted(p.gc.samples, "sample"),
        );
    }
    if let Some(verdict) = crate::model::verdict::gc(p) {
        let _ = writeln!(out, "GC: {verdict}.");
    }
    let _ = writeln!(
        out,
        "Run queue: threads waited for a CPU {} of the time they wanted one{}",
        fmt::percent(p.runqueue_wait_percent),
        crate::model::verdict::runqueue(p).map_or_else(
            || ".".to_owned(),
            |_| ": the machine is overloaded; CPU figures count only time on a CPU.".to_owned()
        ),
    );
    if !p.gil_located && p.samples > 0 {
        let _ = writeln!(
            out,
            "GIL waits and hand-offs not measured: the interpreter's GIL state was not located."
        );
    }
    let mut starvers: Vec<&FunctionRow> = p
        .functions
        .iter()
        .filter(|f| f.gil_held_while_waited > 0)
        .collect();
    starvers.sort_by_key(|f| std::cmp::Reverse(f.gil_held_while_waited));
    if !starvers.is_empty() {
        let names: Vec<String> = starvers
            .iter()
            .take(3)
            .map(|f| format!("{} ({} samples)", f.name, f.gil_held_while_waited))
            .collect();
        let _ = writeln!(
            out,
            "GIL held while others waited, by: {}",
            names.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "faults {} minor, {} major · ctxsw {} voluntary, {} involuntary · I/O {} read, {} written",
        fmt::count(p.minor_faults),
        fmt::count(p.major_faults),
        fmt::count(p.voluntary_ctxsw),
        fmt::count(p.involuntary_ctxsw),
        fmt::bytes(p.read_bytes),
        fmt::bytes(p.write_bytes),
    );
    if p.exited {
        let _ = writeln!(
            out,
            "The process exited during the report; figures cover it up to its exit."
        );
    }
    render_memory(out, p);
    render_threads(out, p);
    render_functions(out, p, header);
    super::tasks::render_text(out, p);
    render_counters(out, p);
}

/// One line per process: the target (parent) first, then its followed descendants.
fn render_workers(out: &mut String, snapshot: &Snapshot) {
    let root = snapshot.processes.first().map_or(0, |p| p.pid);
    let rows = family::workers(snapshot, root);
    let _ = writeln!(
        out,
        "Processes: {} (the target and its Python descendants)",
        rows.len()
    );
    let _ = writeln!(
        out,
        "{:>8} {:>8} {:<7} {:<3} {:>6} {:>10} {:>6} {:>8} {:>8} {:<5} HOTTEST",
        "PID", "PPID", "ROLE", "ST", "CPU%", "RSS", "GIL%", "FLT/s", "CSW/s", "!"
    );
    for w in &rows {
        let _ = writeln!(
            out,
            "{:>8} {:>8} {:<7} {:<3} {:>6.1} {:>10} {:>6.1} {:>8.0} {:>8.0} {:<5} {}",
            w.pid,
            w.ppid,
            if w.is_root { "parent" } else { "worker" },
            w.state,
            w.cpu_percent,
            fmt::bytes(w.rss_bytes),
            w.gil_held_percent,
            w.faults_per_s,
            w.ctxsw_per_s,
            match w.straggler {
                Some(Straggler::Slow) => "slow",
                Some(Straggler::Busy) => "busy",
                None => "",
            },
            w.hottest.as_deref().unwrap_or("")
        );
    }
    out.push('\n');
}

fn render_memory(out: &mut String, p: &ProcessSnapshot) {
    let m = &p.memory;
    let _ = write!(
        out,
        "Memory: RSS {} (anon {}, file {}, shmem {}) · peak {} in the window, {} in its life · swap {}",
        fmt::bytes(p.rss_bytes),
        fmt::bytes(m.split.anon_bytes),
        fmt::bytes(m.split.file_bytes),
        fmt::bytes(m.split.shmem_bytes),
        fmt::bytes(p.rss_peak_bytes),
        fmt::bytes(m.hwm_bytes),
        fmt::bytes(m.split.swap_bytes),
    );
    if let Some(r) = m.rollup {
        let _ = write!(
            out,
            " · PSS {} USS {}",
            fmt::bytes(r.pss_bytes),
            fmt::bytes(r.uss_bytes)
        );
    }
    out.push('\n');
    if let Some(g) = m.growth {
        let _ = writeln!(
            out,
            "RSS trend {} over the last {}",
            fmt::rate_bytes(g.bytes_per_s),
            fmt::seconds(g.window_s)
        );
    }
    if !m.leak_suspects.is_empty() {
        let names: Vec<String> = m
            .leak_suspects
            .iter()
            .take(3)
            .map(|s| format!("{} ({:.0}% of faults)", s.name, s.share_percent))
            .collect();
        let _ = writeln!(
            out,
            "RSS grows steadily (a leak, or a cache filling up). New pages were first touched by: {} \
             -- the code that faults pages in, not necessarily the code that keeps them",
            names.join(", ")
        );
    }
}

/// The functions each kernel counter was credited to (innermost frame), largest first.
fn render_counters(out: &mut String, p: &ProcessSnapshot) {
    let mut lines = Vec::new();
    for counter in Counter::ALL {
        let pick = |c: &Credited| counter.of(c);
        let (label, show): (&str, fn(f64) -> String) = match counter {
            Counter::Cpu => ("CPU", fmt::seconds),
            Counter::MinorFaults => ("minor faults", count_f),
            Counter::MajorFaults => ("major faults", count_f),
            Counter::VoluntaryCtxsw => ("voluntary ctxsw", count_f),
            Counter::InvoluntaryCtxsw => ("involuntary ctxsw", count_f),
            Counter::Io => ("I/O", |b| fmt::bytes(b.round() as u64)),
        };
        let total: f64 = p.functions.iter().map(|f| pick(&f.credited)).sum();
        if total <= 0.0 {
            continue;
        }
        let mut ranked: Vec<&FunctionRow> = p
            .functions
            .iter()
            .filter(|f| pick(&f.credited) > 0.0)
            .collect();
        ranked.sort_by(|a, b| pick(&b.credited).total_cmp(&pick(&a.credited)));
        let top: Vec<String> = ranked
            .iter()
            .take(3)
            .map(|f| {
                let v = pick(&f.credited);
                format!("{} {} ({:.0}%)", f.name, show(v), v * 100.0 / total)
            })
            .collect();
        lines.push(format!("  {label:<18} {}", top.join(", ")));
    }
    if !lines.is_empty() {
        let _ = writeln!(
            out,
            "\nKernel counters by function (credited while innermost; --format json adds inclusive and per line)"
        );
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
}

fn count_f(n: f64) -> String {
    fmt::count(n.round() as u64)
}

fn render_threads(out: &mut String, p: &ProcessSnapshot) {
    let _ = writeln!(
        out,
        "\n{:>8}  {:<20} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6}  {:<5} FUNCTION NOW",
        "TID", "THREAD", "SAMPLES", "CPU%", "RUNQ%", "GIL%", "WAIT%", "IDLE%", "STATE"
    );
    for t in p.threads.iter().filter(|t| t.is_python) {
        let now = t
            .stack
            .first()
            .map_or_else(String::new, |f| f.name.to_string());
        let _ = writeln!(
            out,
            "{:>8}  {:<20} {:>7} {:>7.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1}  {:<5} {}",
            t.tid,
            fmt::truncate(t.name.as_deref().unwrap_or("-"), 20),
            t.samples,
            t.cpu_percent,
            t.runqueue_wait_percent,
            t.gil_held_percent,
            t.gil_wait_percent,
            t.idle_percent,
            if t.alive {
                t.state.letter().to_string()
            } else {
                "gone".into()
            },
            now
        );
    }
    let native = p.threads.iter().filter(|t| !t.is_python).count();
    if native > 0 {
        let _ = writeln!(
            out,
            "{:>8}  ({native} native threads without Python frames)",
            ""
        );
    }
}

/// The share whose sampling error the cpu-mode header states: a function's typical size
/// where the error matters.
const CPU_SHARE_SD_AT: f64 = 25.0;

/// Past this many points (one standard deviation), the header names the remedy.
const CPU_SHARE_SD_NOTED: f64 = 2.0;

fn render_functions(out: &mut String, p: &ProcessSnapshot, header: &ReportHeader) {
    let what = match header.mode {
        Mode::Cpu => {
            let mut what = "share of on-CPU time (schedstat), credited where threads were seen running; OWNTIME/TOTALTIME are CPU seconds".to_owned();
            if let Some(sd) = p.cpu_share_sd_points(CPU_SHARE_SD_AT) {
                let _ = write!(
                    what,
                    ".\nShares are a sample of {} stacks seen on a CPU: a {CPU_SHARE_SD_AT:.0} % share is ±{sd:.1} points (one standard deviation)",
                    fmt::count(p.on_cpu_stacks),
                );
                if sd > CPU_SHARE_SD_NOTED {
                    what.push_str("; a longer --duration or a higher --rate narrows it");
                }
            }
            what
        }
        Mode::Samples => format!(
            "share of {} thread-samples of threads in state R, as py-spy top; one sample ≈ {}",
            fmt::count(p.counted_samples),
            fmt::seconds(p.seconds_per_sample)
        ),
        Mode::Gil => format!(
            "share of the samples of the thread holding the GIL, as py-spy --gil; one sample ≈ {}",
            fmt::seconds(p.seconds_per_sample)
        ),
        Mode::Wall => format!(
            "share of {} thread-samples of all threads, idle too; one sample ≈ {}",
            fmt::count(p.counted_samples),
            fmt::seconds(p.seconds_per_sample)
        ),
    };
    let _ = writeln!(out, "\nFunctions, --mode {}: {what}", header.mode.name());
    let _ = writeln!(
        out,
        "{:>7} {:>7} {:>9} {:>9}  FUNCTION (FILE:LINE)",
        "%OWN", "%TOTAL", "OWNTIME", "TOTALTIME"
    );
    for f in p.functions.iter().take(TEXT_FUNCTION_ROWS) {
        let _ = writeln!(out, "{}", function_line(f));
    }
    if p.functions.len() > TEXT_FUNCTION_ROWS {
        let _ = writeln!(
            out,
            "  … {} more functions (--format json lists them all)",
            p.functions.len() - TEXT_FUNCTION_ROWS
        );
    }
    if p.functions.is_empty() {
        let _ = writeln!(
            out,
            "  (no Python frames sampled{})",
            if header.include_idle {
                ""
            } else {
                " on CPU; --mode wall counts idle threads too"
            }
        );
    }
}

fn function_line(f: &FunctionRow) -> String {
    format!(
        "{:>6.1}% {:>6.1}% {:>9} {:>9}  {}",
        f.own_percent,
        f.total_percent,
        fmt::seconds(f.own_s),
        fmt::seconds(f.total_s),
        f.label(f.hottest_line),
    )
}
