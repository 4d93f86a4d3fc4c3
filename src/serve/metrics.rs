//! Prometheus text exposition (and `OpenMetrics`) of what the serve workers publish: plain data
//! in, text out.

use std::fmt::Write as _;

/// One watched process's figures, as a scrape shows them.
#[derive(Debug, Clone, Default)]
pub struct ProcessMetrics {
    /// Process id.
    pub pid: u32,
    /// The script (or module, or program) name: the `comm` label.
    pub comm: String,
    /// utime + stime of the whole process since it started (the kernel's counter).
    pub cpu_seconds: f64,
    /// Resident set size at the last read.
    pub resident_bytes: u64,
    /// Minor page faults since the process started.
    pub minor_faults: u64,
    /// Major page faults since the process started.
    pub major_faults: u64,
    /// Voluntary context switches since hptop attached, summed over threads (exited too).
    pub voluntary_ctxsw: u64,
    /// Involuntary context switches, as `voluntary_ctxsw`.
    pub involuntary_ctxsw: u64,
    /// Bytes read from storage since the process started (`None`: unreadable).
    pub read_bytes: Option<u64>,
    /// Bytes written to storage since the process started.
    pub write_bytes: Option<u64>,
    /// GIL hand-offs since hptop attached (`None`: the GIL state is not located).
    pub gil_handoffs: Option<u64>,
    /// Ticks whose stacks were read, since hptop attached.
    pub samples: u64,
    /// Ticks whose stack read failed, since hptop attached.
    pub sample_errors: u64,
    /// On-CPU seconds in garbage collection since hptop attached (the `<GC>` frame's).
    pub gc_seconds: f64,
    /// Threads with series (see [`MAX_THREAD_SERIES`]).
    pub threads: Vec<ThreadMetrics>,
    /// Threads alive, all of them.
    pub thread_count: usize,
    /// Functions with series, then `(other)`.
    pub functions: Vec<FunctionMetrics>,
}

/// One thread's figures.
#[derive(Debug, Clone, Default)]
pub struct ThreadMetrics {
    /// OS thread id.
    pub tid: u32,
    /// Python thread name, or "".
    pub name: String,
    /// CPU time since the thread started (schedstat, else stat ticks).
    pub cpu_seconds: f64,
    /// Time runnable but waiting for a CPU since the thread started (`None`: no schedstat).
    pub runqueue_wait_seconds: Option<f64>,
    /// Time holding the GIL since hptop attached: held share of its samples × sampled time.
    pub gil_held_seconds: f64,
    /// Time waiting for the GIL since hptop attached (`None`: the GIL state is not located).
    pub gil_wait_seconds: Option<f64>,
}

/// One function's CPU.
#[derive(Debug, Clone, Default)]
pub struct FunctionMetrics {
    /// Function name (`(other)` for the rest).
    pub function: String,
    /// Its file ("" for `(other)`).
    pub file: String,
    /// On-CPU seconds credited while it was the innermost frame, since hptop attached.
    pub cpu_seconds: f64,
}

/// Per process, at most this many thread series: the alive threads with the most CPU.
pub const MAX_THREAD_SERIES: usize = 64;

/// Everything one scrape shows.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Watched processes.
    pub processes: Vec<ProcessMetrics>,
    /// hptop's own CPU time (user + system).
    pub self_cpu_seconds: f64,
    /// hptop's own resident set size.
    pub self_resident_bytes: u64,
}

/// The content type of the text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of `OpenMetrics`.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value as the exposition formats take it: `\`, `"` and line breaks escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Builds the exposition one metric family at a time.
struct Writer {
    out: String,
    openmetrics: bool,
}

/// A metric family: name (with `_total` for counters), help, counter or gauge, unit.
struct Family {
    name: &'static str,
    help: &'static str,
    counter: bool,
    unit: &'static str,
}

impl Writer {
    fn family(&mut self, f: &Family) {
        // `OpenMetrics` names a counter family without `_total`; its samples keep it.
        let base = if self.openmetrics && f.counter {
            f.name.trim_end_matches("_total")
        } else {
            f.name
        };
        let kind = if f.counter { "counter" } else { "gauge" };
        let _ = writeln!(self.out, "# HELP {base} {}", f.help);
        let _ = writeln!(self.out, "# TYPE {base} {kind}");
        if self.openmetrics && !f.unit.is_empty() {
            let _ = writeln!(self.out, "# UNIT {base} {}", f.unit);
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

const PROCESS_CPU: Family = Family {
    name: "hptop_process_cpu_seconds_total",
    help: "CPU time (user + system) of the process since it started.",
    counter: true,
    unit: "seconds",
};
const PROCESS_RSS: Family = Family {
    name: "hptop_process_resident_memory_bytes",
    help: "Resident set size of the process.",
    counter: false,
    unit: "bytes",
};
const PROCESS_MINFLT: Family = Family {
    name: "hptop_process_minor_faults_total",
    help: "Minor page faults of the process since it started.",
    counter: true,
    unit: "",
};
const PROCESS_MAJFLT: Family = Family {
    name: "hptop_process_major_faults_total",
    help: "Major page faults of the process since it started.",
    counter: true,
    unit: "",
};
const PROCESS_CTXSW: Family = Family {
    name: "hptop_process_context_switches_total",
    help: "Context switches of the process's threads since hptop attached (kind: voluntary, involuntary).",
    counter: true,
    unit: "",
};
const PROCESS_IO: Family = Family {
    name: "hptop_process_io_bytes_total",
    help: "Bytes the process caused to be read from or written to storage since it started.",
    counter: true,
    unit: "bytes",
};
const PROCESS_THREADS: Family = Family {
    name: "hptop_process_threads",
    help: "Threads of the process.",
    counter: false,
    unit: "",
};
const THREAD_CPU: Family = Family {
    name: "hptop_thread_cpu_seconds_total",
    help: "CPU time of the thread since it started (the busiest threads of each process).",
    counter: true,
    unit: "seconds",
};
const THREAD_GIL_HELD: Family = Family {
    name: "hptop_thread_gil_held_seconds_total",
    help:
        "Time the thread held the GIL since hptop attached (share of its samples x sampled time).",
    counter: true,
    unit: "seconds",
};
const THREAD_GIL_WAIT: Family = Family {
    name: "hptop_thread_gil_wait_seconds_total",
    help: "Time the thread waited for the GIL since hptop attached (share of its samples x sampled time).",
    counter: true,
    unit: "seconds",
};
const THREAD_RUNQUEUE: Family = Family {
    name: "hptop_thread_runqueue_wait_seconds_total",
    help: "Time the thread was runnable but waited for a CPU since it started (schedstat).",
    counter: true,
    unit: "seconds",
};
const GIL_HANDOFFS: Family = Family {
    name: "hptop_gil_handoffs_total",
    help: "GIL hand-offs between threads since hptop attached.",
    counter: true,
    unit: "",
};
const FUNCTION_CPU: Family = Family {
    name: "hptop_function_cpu_seconds_total",
    help: "On-CPU time credited to the function as the innermost frame since hptop attached (top functions by CPU; the rest in function=\"(other)\").",
    counter: true,
    unit: "seconds",
};
const SAMPLES: Family = Family {
    name: "hptop_samples_total",
    help: "Ticks whose stacks were read since hptop attached.",
    counter: true,
    unit: "",
};
const SAMPLE_ERRORS: Family = Family {
    name: "hptop_sample_errors_total",
    help: "Ticks whose stack read failed since hptop attached.",
    counter: true,
    unit: "",
};
const GC_SECONDS: Family = Family {
    name: "hptop_gc_seconds_total",
    help: "On-CPU time inside the cyclic garbage collector since hptop attached (samples of the collecting thread, credited as functions are).",
    counter: true,
    unit: "seconds",
};
const SELF_CPU: Family = Family {
    name: "hptop_self_cpu_seconds_total",
    help: "CPU time (user + system) of hptop itself.",
    counter: true,
    unit: "seconds",
};
const SELF_RSS: Family = Family {
    name: "hptop_self_resident_memory_bytes",
    help: "Resident set size of hptop itself.",
    counter: false,
    unit: "bytes",
};
const TARGETS: Family = Family {
    name: "hptop_targets",
    help: "Processes hptop watches.",
    counter: false,
    unit: "",
};

/// The exposition of `scrape`: Prometheus text format 0.0.4, or `OpenMetrics` 1.0.
pub fn exposition(scrape: &Scrape, openmetrics: bool) -> String {
    let mut w = Writer {
        out: String::with_capacity(4096),
        openmetrics,
    };
    let processes = &scrape.processes;
    let pid_labels: Vec<(String, &str)> = processes
        .iter()
        .map(|p| (p.pid.to_string(), p.comm.as_str()))
        .collect();
    // One family at a time, every process's samples under it (the formats group by family).
    let per_process =
        |w: &mut Writer, f: &Family, value: &dyn Fn(&ProcessMetrics) -> Option<f64>| {
            w.family(f);
            for (p, (pid, comm)) in processes.iter().zip(&pid_labels) {
                if let Some(v) = value(p) {
                    w.sample(f.name, &[("pid", pid), ("comm", comm)], v);
                }
            }
        };
    per_process(&mut w, &PROCESS_CPU, &|p| Some(p.cpu_seconds));
    per_process(&mut w, &PROCESS_RSS, &|p| Some(p.resident_bytes as f64));
    per_process(&mut w, &PROCESS_MINFLT, &|p| Some(p.minor_faults as f64));
    per_process(&mut w, &PROCESS_MAJFLT, &|p| Some(p.major_faults as f64));
    per_process(&mut w, &PROCESS_THREADS, &|p| Some(p.thread_count as f64));
    per_process(&mut w, &GIL_HANDOFFS, &|p| p.gil_handoffs.map(|n| n as f64));
    per_process(&mut w, &SAMPLES, &|p| Some(p.samples as f64));
    per_process(&mut w, &SAMPLE_ERRORS, &|p| Some(p.sample_errors as f64));
    per_process(&mut w, &GC_SECONDS, &|p| Some(p.gc_seconds));
    w.family(&PROCESS_CTXSW);
    for (p, (pid, comm)) in processes.iter().zip(&pid_labels) {
        for (kind, n) in [
            ("voluntary", p.voluntary_ctxsw),
            ("involuntary", p.involuntary_ctxsw),
        ] {
            let labels = [("pid", pid.as_str()), ("comm", comm), ("kind", kind)];
            w.sample(PROCESS_CTXSW.name, &labels, n as f64);
        }
    }
    w.family(&PROCESS_IO);
    for (p, (pid, comm)) in processes.iter().zip(&pid_labels) {
        for (direction, n) in [("read", p.read_bytes), ("write", p.write_bytes)] {
            if let Some(n) = n {
                let labels = [
                    ("pid", pid.as_str()),
                    ("comm", comm),
                    ("direction", direction),
                ];
                w.sample(PROCESS_IO.name, &labels, n as f64);
            }
        }
    }
    let per_thread = |w: &mut Writer, f: &Family, value: &dyn Fn(&ThreadMetrics) -> Option<f64>| {
        w.family(f);
        for (p, (pid, comm)) in processes.iter().zip(&pid_labels) {
            for t in &p.threads {
                if let Some(v) = value(t) {
                    let tid = t.tid.to_string();
                    let labels = [
                        ("pid", pid.as_str()),
                        ("comm", comm),
                        ("thread", &t.name),
                        ("tid", &tid),
                    ];
                    w.sample(f.name, &labels, v);
                }
            }
        }
    };
    per_thread(&mut w, &THREAD_CPU, &|t| Some(t.cpu_seconds));
    per_thread(&mut w, &THREAD_GIL_HELD, &|t| Some(t.gil_held_seconds));
    per_thread(&mut w, &THREAD_GIL_WAIT, &|t| t.gil_wait_seconds);
    per_thread(&mut w, &THREAD_RUNQUEUE, &|t| t.runqueue_wait_seconds);
    w.family(&FUNCTION_CPU);
    for (p, (pid, comm)) in processes.iter().zip(&pid_labels) {
        for f in &p.functions {
            let labels = [
                ("pid", pid.as_str()),
                ("comm", comm),
                ("function", &f.function),
                ("file", &f.file),
            ];
            w.sample(FUNCTION_CPU.name, &labels, f.cpu_seconds);
        }
    }
    w.family(&TARGETS);
    w.sample(TARGETS.name, &[], processes.len() as f64);
    w.family(&SELF_CPU);
    w.sample(SELF_CPU.name, &[], scrape.self_cpu_seconds);
    w.family(&SELF_RSS);
    w.sample(SELF_RSS.name, &[], scrape.self_resident_bytes as f64);
    if openmetrics {
        w.out.push_str("# EOF\n");
    }
    w.out
}

/// Whether the scraper asked for `OpenMetrics` (its `Accept` header).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.contains("application/openmetrics-text")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape() -> Scrape {
        Scrape {
            processes: vec![ProcessMetrics {
                pid: 42,
                comm: "job.py".into(),
                cpu_seconds: 12.5,
                read_bytes: Some(10),
                write_bytes: None,
                threads: vec![ThreadMetrics {
                    tid: 43,
                    name: "evil\"\\\nname".into(),
                    cpu_seconds: 1.0,
                    gil_wait_seconds: Some(0.5),
                    ..ThreadMetrics::default()
                }],
                thread_count: 1,
                functions: vec![FunctionMetrics {
                    function: "(other)".into(),
                    file: String::new(),
                    cpu_seconds: 2.0,
                }],
                ..ProcessMetrics::default()
            }],
            self_cpu_seconds: 0.25,
            self_resident_bytes: 1 << 20,
        }
    }

    #[test]
    fn text_format_types_families_once_and_escapes_labels() {
        let text = exposition(&scrape(), false);
        assert_eq!(
            text.matches("# TYPE hptop_process_cpu_seconds_total counter")
                .count(),
            1
        );
        assert!(text.contains("hptop_process_cpu_seconds_total{pid=\"42\",comm=\"job.py\"} 12.5\n"));
        assert!(text.contains("# TYPE hptop_process_resident_memory_bytes gauge"));
        assert!(
            text.contains("thread=\"evil\\\"\\\\\\nname\",tid=\"43\""),
            "{text}"
        );
        assert!(text.contains("direction=\"read\"} 10\n"));
        assert!(!text.contains("direction=\"write\""));
        // No runqueue figure: the family is typed but has no sample.
        assert!(!text.contains("hptop_thread_runqueue_wait_seconds_total{"));
        assert!(!text.contains("# EOF"));
        // Every sample line is `name{labels} value` with one space before the value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let text = exposition(&scrape(), true);
        assert!(text.contains("# TYPE hptop_process_cpu_seconds counter"));
        assert!(text.contains("# UNIT hptop_process_cpu_seconds seconds"));
        assert!(text.contains("hptop_process_cpu_seconds_total{"));
        assert!(text.ends_with("# EOF\n"));
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        ));
        assert!(!wants_openmetrics("text/plain"));
    }
}
